/**
 * Execution providers on this machine, which has no GPU: the WebGPU provider ships with
 * onnxruntime-node and fails cleanly for want of an adapter; `auto` falls back to the CPU; an
 * explicit `webgpu` fails the load with `provider_failed`. A GPU whose output disagrees with the
 * CPU's cannot exist here, so that one case uses a stand-in: a real CPU session of a subtly wrong
 * graph, opened where the WebGPU session would be (the only mock in this file).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { pino, type Logger } from 'pino';
import { GraphBuilder } from '../src/models/graph-builder.ts';
import { createOnnxSession, createPlannedSession, openOrtSession, type OpenSession } from '../src/gpu/session.ts';
import { compareOutputs } from '../src/gpu/compare.ts';
import { CUDA_HINT, describeAdapter, gpuDevicePresent, planProviders } from '../src/gpu/providers.ts';
import { FramehostError } from '../src/errors.ts';
import { startServer, type Harness } from './helpers/server.ts';
import { BIN, ROOT } from './helpers/cli.ts';
import { collectMessages, startRuntime, until } from './helpers/runtime.ts';

const PROVIDER_MODEL = new URL('./fixtures/models/provider.ts', import.meta.url).pathname;

interface Line {
  readonly level: number;
  readonly msg: string;
  readonly provider?: string;
}

function sink(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

/** y = x·scale + bias over [1, 8]: `scale` 1.1 plays the GPU that computes a little wrong. */
function affine(scale: number): Uint8Array {
  const g = new GraphBuilder('affine');
  const x = g.input('x', 'float', [1, 8]);
  g.op1('Add', [g.op1('Mul', [x, g.constFloat('s', [], [scale])]), g.constFloat('b', [], [0.5])], {}, 'y');
  g.output('y', 'float', [1, 8]);
  return g.encode();
}

const warnings = (lines: Line[]) => lines.filter((l) => l.level === 40);
const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

describe('execution providers on a machine without a GPU', () => {
  it('onnxruntime-node bundles the WebGPU provider (and not CUDA)', () => {
    const backends = ort.listSupportedBackends();
    expect(backends).toContainEqual({ name: 'webgpu', bundled: true });
    expect(backends).toContainEqual({ name: 'cuda', bundled: false });
  });

  it('--provider webgpu fails cleanly with provider_failed: no adapter', async () => {
    expect(gpuDevicePresent()).toBe(false); // what this test is about: a machine with no GPU
    const { log, lines } = sink();
    const err = await createOnnxSession(affine(1), { provider: 'webgpu' }, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FramehostError);
    expect((err as FramehostError).code).toBe('provider_failed');
    expect((err as FramehostError).message).toMatch(/webgpu provider failed to start: .*adapter/i);
    expect(lines.filter((l) => l.msg.includes('using the'))).toEqual([]);
  });

  it('auto, where a GPU device exists, tries WebGPU for real and falls back to the CPU in one line', async () => {
    const { log, lines } = sink();
    const s = await createPlannedSession(affine(1), planProviders('auto', false, true), {}, log);
    expect(s.provider).toBe('cpu');
    expect(s.reason).toBe('fell back from webgpu: it failed to start');
    expect(warnings(lines)).toHaveLength(1);
    expect(warnings(lines)[0]!.msg).toMatch(/webgpu provider failed to start: .*; falling back to the CPU$/);
    const out = await s.session.run({ x: new ort.Tensor('float32', new Float32Array(8).fill(1), [1, 8]) });
    expect((out.y!.data as Float32Array)[0]).toBeCloseTo(1.5);
  });

  it('the CUDA hint in the log is the GPU guide\'s, command for command, and the README links that guide', () => {
    expect(planProviders('auto', false, false).reason).toContain(CUDA_HINT);
    const guide = readFileSync(join(ROOT, 'docs', 'gpu.md'), 'utf8');
    const [online, offline] = CUDA_HINT.replace(/^CUDA, online: /, '').split('; offline: ');
    expect(guide).toContain(online!);
    expect(guide).toContain(offline!.replace(/; README, GPU$/, ''));
    // The hint ends "README, GPU": the README's guide list leads there.
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('[GPU](docs/gpu.md)');
  });

  it('auto with no GPU device plans the CPU alone (no Dawn start, no stderr noise)', () => {
    expect(planProviders('auto', false, false).providers).toEqual(['cpu']);
    expect(planProviders('auto', true, true).providers).toEqual(['cuda', 'cpu']);
    expect(planProviders('webgpu', true, true)).toMatchObject({ providers: ['webgpu'], fallback: false });
    expect(() => planProviders('metal' as never)).toThrow(/auto, cpu, webgpu, cuda, tensorrt/);
  });
});

describe("a GPU session's first output against the CPU's (stand-in GPU)", () => {
  const standIn = (scale: number): OpenSession => (source, provider, options) =>
    provider === 'webgpu' ? openOrtSession(affine(scale), 'cpu', options) : openOrtSession(source, provider, options);

  it('agreeing outputs keep the GPU, with the check in the session', async () => {
    const { log, lines } = sink();
    const s = await createPlannedSession(affine(1), planProviders('auto', false, true), {}, log, standIn(1));
    expect(s.provider).toBe('webgpu');
    expect(s.check).toMatchObject({ ok: true, output: 'y', outside: 0, values: 8 });
    expect(warnings(lines)).toEqual([]);
  });

  it('under auto a disagreement falls back to the CPU, said in one line', async () => {
    const { log, lines } = sink();
    const s = await createPlannedSession(affine(1), planProviders('auto', false, true), {}, log, standIn(1.1));
    expect(s.provider).toBe('cpu');
    expect(s.check?.ok).toBe(false);
    expect(warnings(lines)).toHaveLength(1);
    expect(warnings(lines)[0]!.msg).toMatch(/webgpu's first output differs from the CPU's on the same input \(output y: .*; falling back to the CPU$/);
  });

  it('under an explicit webgpu a disagreement is reported and the GPU kept', async () => {
    const { log, lines } = sink();
    const s = await createPlannedSession(affine(1), planProviders('webgpu'), {}, log, standIn(1.1));
    expect(s.provider).toBe('webgpu');
    expect(warnings(lines)[0]!.msg).toMatch(/keeping webgpu as requested$/);
  });

  it('the tolerance: floats 1e-3 + 1e-2·|cpu|; uint8 at most 1% of values more than 2 levels off', () => {
    const f = (v: number[]) => ({ y: new ort.Tensor('float32', Float32Array.from(v), [v.length]) });
    expect(compareOutputs(f([1.0105, 0]), f([1, 0])).ok).toBe(true);
    expect(compareOutputs(f([1.02, 0]), f([1, 0])).ok).toBe(false);
    const bytes = (n: number, off: number) => ({ p: new ort.Tensor('uint8', Uint8Array.from({ length: 200 }, (_, i) => (i < n ? 100 + off : 100)), [200]) });
    expect(compareOutputs(bytes(200, 2), bytes(0, 0)).ok).toBe(true);
    expect(compareOutputs(bytes(2, 9), bytes(0, 0)).ok).toBe(true);
    expect(compareOutputs(bytes(3, 9), bytes(0, 0)).ok).toBe(false);
  });
});

describe('what runs the model, in /health, /metrics and the adapter name', () => {
  it('/health and /metrics name the provider and the adapter', async () => {
    const h = await startServer();
    harnesses.push(h);
    await h.rt.ready();
    const health = (await (await fetch(`${h.url}/health`)).json()) as { model: { provider: string; adapter: string } };
    expect(health.model).toMatchObject({ provider: 'cpu', adapter: cpus()[0]!.model.trim() });
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toContain(`framehost_execution_provider{provider="cpu",adapter="${cpus()[0]!.model.trim()}"} 1`);
  });

  it("a model's load context carries the provider asked for; its session says what it got", async () => {
    const rt = await startRuntime({ model: PROVIDER_MODEL, ort: { provider: 'cpu' } });
    try {
      await rt.ready();
      const messages = collectMessages(rt);
      rt.start();
      await until('the report', () => messages.length > 0);
      expect(messages[0]).toEqual({ asked: 'cpu', got: 'cpu', adapter: cpus()[0]!.model.trim(), reason: 'CPU requested' });
    } finally {
      await rt.shutdown();
    }
  });

  it('an explicit webgpu with no adapter fails the load with the reason', async () => {
    const rt = await startRuntime({ ort: { provider: 'webgpu' } });
    try {
      const err = await rt.ready().catch((e: unknown) => e);
      expect((err as FramehostError).code).toBe('load_failed');
      expect((err as FramehostError).message).toMatch(/could not start.*webgpu provider failed to start: .*adapter/i);
    } finally {
      await rt.shutdown();
    }
  });

  it('the adapter of a GPU provider is the GPU as the driver names it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fh-gpu-'));
    try {
      mkdirSync(join(dir, 'proc', '0000:00:05.0'), { recursive: true });
      writeFileSync(join(dir, 'proc', '0000:00:05.0', 'information'), 'Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   42\n');
      expect(describeAdapter('webgpu', join(dir, 'proc'), join(dir, 'none'))).toBe('NVIDIA H100 80GB HBM3');
      mkdirSync(join(dir, 'sys', 'renderD128', 'device'), { recursive: true });
      writeFileSync(join(dir, 'sys', 'renderD128', 'device', 'vendor'), '0x1002\n');
      writeFileSync(join(dir, 'sys', 'renderD128', 'device', 'device'), '0x744c\n');
      expect(describeAdapter('webgpu', join(dir, 'none'), join(dir, 'sys'))).toBe('PCI 0x1002:0x744c');
      expect(describeAdapter('cuda', join(dir, 'none'), join(dir, 'none'))).toBe('unknown GPU');
      mkdirSync(join(dir, 'dev', 'dri'), { recursive: true });
      expect(gpuDevicePresent(join(dir, 'dev'))).toBe(false);
      writeFileSync(join(dir, 'dev', 'dri', 'renderD128'), '');
      expect(gpuDevicePresent(join(dir, 'dev'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('--provider on the command line', () => {
  const serve = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [BIN, 'serve', '--port', '0', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, FRAMEHOST_LOG_LEVEL: 'warn', ...env } });

  it('refuses an unknown provider, from the flag or FRAMEHOST_PROVIDER, naming the choices', () => {
    for (const run of [serve(['--provider', 'metal']), serve([], { FRAMEHOST_PROVIDER: 'metal' })]) {
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/--provider must be one of auto, cpu, webgpu, cuda, tensorrt/);
    }
  });
});
