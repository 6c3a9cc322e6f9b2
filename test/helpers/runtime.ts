/** Shared helpers for tests that run a real runtime (real worker, real ONNX Runtime). */
import { pino } from 'pino';
import { fileURLToPath } from 'node:url';
import { createRuntime, type Runtime, type RuntimeFrame, type RuntimeOptions } from '../../src/runtime/runtime.ts';
import type { Phase } from '../../src/machines/phase.ts';
import type { JsonValue } from '../../src/model/api.ts';

export const SCRIPTED_MODEL = fileURLToPath(new URL('../fixtures/models/scripted.ts', import.meta.url));

export const quietLogger = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  return createRuntime({ logger: quietLogger(), ...options });
}

/** Resolve after `predicate` holds, polling the runtime's events; reject after `ms`. */
export function until<T>(what: string, check: () => T | undefined | false, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      const v = check();
      if (v !== undefined && v !== false) return resolve(v);
      if (Date.now() - started > ms) return reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

export function untilPhase(rt: Runtime, phase: Phase, ms?: number): Promise<true> {
  return until(`phase ${phase} (now ${rt.phase()})`, () => rt.phase() === phase, ms);
}

/** The first `n` frames of the next session's stream, copied (seq → bytes). */
export function collectFrames(rt: Runtime, n: number, ms = 10_000): Promise<RuntimeFrame[]> {
  const frames: RuntimeFrame[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`only ${frames.length}/${n} frames in ${ms} ms`)); }, ms);
    const off = rt.on('frame', (f) => {
      frames.push({ ...f, data: f.data.slice() });
      if (frames.length === n) { clearTimeout(timer); off(); resolve(frames); }
    });
  });
}

export function collectMessages(rt: Runtime): JsonValue[] {
  const out: JsonValue[] = [];
  rt.on('message', (m) => out.push(m.data));
  return out;
}
