/**
 * The runtime end to end, without a network: the real chart, the real inference worker and the
 * real ONNX Runtime, with the demo world and a scripted fixture model for the fault paths.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts';
import { SCRIPTED_MODEL, collectFrames, collectMessages, startRuntime, until, untilPhase } from './helpers/runtime.ts';

const SLOW_SESSION_MODEL = fileURLToPath(new URL('./fixtures/models/slow-session.ts', import.meta.url));

/** This process's threads (Linux): a worker thread is one of them while it lives. */
const threadCount = (): number => readdirSync('/proc/self/task').length;

const open: Runtime[] = [];
async function runtime(...args: Parameters<typeof startRuntime>): Promise<Runtime> {
  const rt = await startRuntime(...args);
  open.push(rt);
  return rt;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((rt) => rt.shutdown()));
});

async function endSession(rt: Runtime): Promise<void> {
  const id = rt.status().session?.id;
  expect(rt.stop()).toEqual({ ok: true });
  await rt.whenSessionOver(id);
  await untilPhase(rt, 'idle');
}

describe('demo world', () => {
  it('serves sessions back to back on one load, each starting from the same seed (isolation)', async () => {
    const rt = await runtime({ modelOptions: { size: 64, fps: 120 } });
    await rt.ready();

    // Session 0: the first after boot, no commands.
    const first = collectFrames(rt, 6);
    expect(rt.start().ok).toBe(true);
    const baseline = await first;
    await endSession(rt);

    // Session A: a user who changes the world.
    const a = collectFrames(rt, 40);
    expect(rt.start().ok).toBe(true);
    await until('running', () => rt.phase() === 'running');
    for (const cmd of [['preset', { name: 'worms' }], ['palette', { name: 'ember' }], ['stamp', { x: 32, y: 32, radius: 12 }]] as const) {
      expect(rt.command(cmd[0], cmd[1]).ok).toBe(true);
    }
    const aFrames = await a;
    await endSession(rt);
    const last = aFrames.at(-1)!;
    const sameSeqInBaseline = baseline.find((f) => f.seq === last.seq);
    // A's world visibly diverged (different palette alone changes every pixel's colour).
    expect(Buffer.compare(Buffer.from(last.data), Buffer.from(aFrames[0]!.data))).not.toBe(0);
    if (sameSeqInBaseline) expect(Buffer.from(last.data).equals(Buffer.from(sameSeqInBaseline.data))).toBe(false);

    // Session B: nothing of A remains; its first frames equal session 0's, byte for byte.
    const b = collectFrames(rt, 6);
    expect(rt.start().ok).toBe(true);
    const bFrames = await b;
    for (const f of bFrames) {
      const twin = baseline.find((x) => x.seq === f.seq);
      expect(twin, `frame ${f.seq} of the first session`).toBeDefined();
      expect(Buffer.from(f.data).equals(Buffer.from(twin!.data))).toBe(true);
    }
    expect(bFrames[0]!.width).toBe(64);
    expect(bFrames[0]!.format).toBe('rgba');
    expect(rt.status().workerStarts).toBe(1);
  });

  it('answers bad commands with specific codes and keeps the session running', async () => {
    const rt = await runtime({ modelOptions: { size: 32, fps: 100 } });
    await rt.ready();
    expect(rt.command('stamp', { x: 1, y: 1 })).toMatchObject({ ok: false, error: { code: 'no_session' } });
    expect(rt.start().ok).toBe(true);
    await untilPhase(rt, 'running');
    const cases: [unknown, unknown, string][] = [
      ['nope', {}, 'unknown_command'],
      ['stamp', { x: 'a', y: 1 }, 'invalid_args'],
      ['stamp', { x: -1, y: 1 }, 'invalid_args'],
      ['stamp', { x: 1.5, y: 1 }, 'invalid_args'],
      ['stamp', { x: 1 }, 'invalid_args'],
      ['stamp', { x: 1, y: 1, extra: true }, 'invalid_args'],
      ['stamp', JSON.parse('{"x":1,"y":1,"__proto__":{"polluted":true}}'), 'invalid_args'],
      ['palette', { name: 'x'.repeat(1_000_000) }, 'invalid_args'],
      ['rates', { feed: Number.NaN, kill: 0.05 }, 'invalid_args'],
      ['stamp', [1, 2], 'invalid_args'],
      [42, {}, 'bad_request'],
      ['toString', {}, 'unknown_command'],
    ];
    for (const [name, args, code] of cases) {
      const r = rt.command(name, args);
      expect(r, JSON.stringify(name).slice(0, 30)).toMatchObject({ ok: false, error: { code } });
      if (!r.ok) expect(r.error.message.length).toBeGreaterThan(10);
    }
    expect(rt.command('stamp', { x: 3, y: 3 }, { owner: 'mallory' })).toMatchObject({ ok: false, error: { code: 'not_owner' } });
    expect(rt.stop({ owner: 'mallory' })).toMatchObject({ ok: false, error: { code: 'not_owner' } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const before = rt.status().session!.frames;
    await until('more frames', () => rt.status().session!.frames > before + 5);
    expect(rt.phase()).toBe('running');
    expect(rt.start()).toMatchObject({ ok: false, error: { code: 'busy' } });
    expect(rt.phase()).toBe('running');
  });
});

describe('scripted model', () => {
  it('loads the model exactly once over many sessions', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL });
    await rt.ready();
    const messages = collectMessages(rt);
    for (let i = 0; i < 8; i++) {
      expect(rt.start().ok).toBe(true);
      await until('first frame', () => (rt.status().session?.frames ?? 0) > 0);
      await endSession(rt);
    }
    expect(messages).toHaveLength(8);
    expect(messages.every((m) => (m as { loads: number }).loads === 1)).toBe(true);
    expect(rt.status().sessionsStarted).toBe(8);
    expect(rt.status().workerStarts).toBe(1);
  });

  it('starts every session with empty session state, whatever the last one did', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL });
    await rt.ready();
    const messages = collectMessages(rt);
    rt.start();
    await untilPhase(rt, 'running');
    expect(rt.command('note', { text: 'secret of user A' }).ok).toBe(true);
    await until('echo', () => messages.length >= 2);
    expect(messages[1]).toEqual({ notes: ['secret of user A'] });
    await endSession(rt);
    rt.start({ owner: 'B' });
    await until('hello', () => messages.length >= 3);
    expect(messages[2]).toEqual({ loads: 1, notes: [] });
  });

  it('ends a session whose loop throws with reason error, and the next session works', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'throw-at', at: 3 } });
    await rt.ready();
    const ended: unknown[] = [];
    rt.on('session.finished', (e) => ended.push(e));
    rt.start();
    await until('end', () => ended.length === 1);
    expect(ended[0]).toMatchObject({ reason: 'error', error: { code: 'loop_failed' }, frames: 3 });
    expect(String((ended[0] as { error: { message: string } }).error.message)).toContain('scripted failure at frame 3');
    await untilPhase(rt, 'idle');
    expect(rt.start().ok).toBe(true);
    await until('second end', () => ended.length === 2);
    expect(rt.status().workerStarts).toBe(1);
  });

  it('ends a session whose loop returns with reason returned', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'return-at', at: 4 } });
    await rt.ready();
    rt.start();
    const end = await rt.whenSessionOver();
    expect(end).toMatchObject({ reason: 'returned' });
    await untilPhase(rt, 'idle');
  });

  it('ends a session that emits a malformed frame with bad_frame', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'bad-frame' } });
    await rt.ready();
    rt.start();
    const end = await rt.whenSessionOver();
    expect(end).toMatchObject({ reason: 'error', error: { code: 'bad_frame' } });
  });

  it('kills a loop that ignores stop at the deadline, reloads the model, and serves again', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'ignore-stop' }, limits: { stopDeadlineMs: 300 } });
    await rt.ready();
    const first = rt.start();
    expect(first.ok).toBe(true);
    await untilPhase(rt, 'running');
    const t0 = Date.now();
    expect(rt.stop()).toEqual({ ok: true });
    // While the loop is stuck, a new session is refused with a reason, not queued.
    expect(rt.start()).toMatchObject({ ok: false, error: { code: 'busy' } });
    const end = await rt.whenSessionOver();
    expect(end).toMatchObject({ reason: 'killed', error: { code: 'timeout' } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    await untilPhase(rt, 'idle');
    expect(rt.status().workerStarts).toBe(2);
    // The fresh worker serves the next session; shutdown also kills the stuck loop at the deadline.
    expect(rt.start().ok).toBe(true);
    await untilPhase(rt, 'running');
    await rt.shutdown();
    expect(rt.phase()).toBe('shutdown');
  });

  it('replaces a worker whose loop never yields once its heartbeat stops, and serves again', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'ignore-stop' }, limits: { heartbeatTimeoutMs: 800 } });
    await rt.ready();
    rt.start();
    const end = await rt.whenSessionOver();
    expect(end).toMatchObject({ reason: 'crashed', error: { code: 'worker_crashed' } });
    expect(end?.error?.message).toContain('no heartbeat');
    await untilPhase(rt, 'idle');
    expect(rt.status().workerStarts).toBe(2);
  });

  it('replaces a worker that passes its heap cap; the session ends crashed', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'leak' }, workerHeapMb: 48 });
    await rt.ready();
    rt.start();
    const end = await rt.whenSessionOver();
    expect(end).toMatchObject({ reason: 'crashed', error: { code: 'worker_crashed' } });
    await untilPhase(rt, 'idle', 20_000);
    expect(rt.status().workerStarts).toBe(2);
    expect(rt.start().ok).toBe(true);
  });

  it('reports a command handler that throws without ending the session', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL });
    await rt.ready();
    const failures: unknown[] = [];
    rt.on('command.failed', (e) => failures.push(e));
    rt.start();
    await untilPhase(rt, 'running');
    const r = rt.command('boom', {});
    expect(r.ok).toBe(true);
    await until('failure', () => failures.length === 1);
    expect(failures[0]).toMatchObject({ requestId: r.ok ? r.requestId : '', error: { code: 'command_failed' } });
    const frames = rt.status().session!.frames;
    await until('frames go on', () => rt.status().session!.frames > frames + 3);
  });

  it('fails the load with a coded error and refuses sessions', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'load-throws' } });
    await expect(rt.ready()).rejects.toMatchObject({ code: 'load_failed' });
    expect(rt.phase()).toBe('failed');
    expect(rt.status().loadError?.message).toContain('scripted load failure');
    // The refusal says why (issue 11: it said only load_failed; the cause was in /health alone).
    expect(rt.start()).toMatchObject({ ok: false, error: { code: 'load_failed', message: expect.stringContaining('scripted load failure') } });
  });

  it('reports the worker\'s own memory with its heartbeat (worker.memory)', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, limits: { heartbeatTimeoutMs: 1000 } });
    const seen: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number }[] = [];
    rt.on('worker.memory', (m) => seen.push(m));
    await rt.ready();
    await until('two heartbeats', () => seen.length >= 2, 5000);
    const m = seen.at(-1)!;
    expect(m.rss).toBeGreaterThan(m.heapTotal);
    expect(m.heapUsed).toBeGreaterThan(0);
    expect(m.heapTotal).toBeGreaterThanOrEqual(m.heapUsed);
    expect(m.external).toBeGreaterThanOrEqual(m.arrayBuffers);
  });

  it('keeps a failed load in `failed` for an embedder, and reload() loads again in a fresh worker', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'load-throws' } });
    await expect(rt.ready()).rejects.toMatchObject({ code: 'load_failed' });
    expect(rt.status()).toMatchObject({ phase: 'failed', workerStarts: 1 });
    // The same model fails again, but it was loaded again: a second worker.
    await expect(rt.reload()).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('scripted load failure') });
    expect(rt.status()).toMatchObject({ phase: 'failed', workerStarts: 2 });
  });

  it('tells an embedder that shutdown() came during the load, not that the load failed, and logs no error', async () => {
    const logs: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'load-hangs' }, logger: pino({ level: 'info' }, sink) });
    const ready = rt.ready();
    ready.catch(() => undefined); // it rejects during shutdown(): asserted below, not unhandled
    await until('the worker loading', () => rt.phase() === 'loading' && rt.status().workerStarts === 1);
    await rt.shutdown();
    await expect(ready).rejects.toMatchObject({ code: 'shutting_down', message: expect.stringContaining('the runtime shut down before the model loaded') });
    await expect(rt.ready()).rejects.toMatchObject({ code: 'shutting_down' });
    expect(rt.phase()).toBe('shutdown');
    expect(logs.filter((l) => l.level >= 50), JSON.stringify(logs)).toEqual([]);
  });

  it('rejects createRuntime with load_failed, naming the module, when the model cannot be imported or is not a model', async () => {
    const missing = join(tmpdir(), `framehost-missing-${process.pid}`, 'model.ts');
    await expect(createRuntime({ model: missing, logger: pino({ level: 'silent' }) })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('model.ts') });
    const dir = mkdtempSync(join(tmpdir(), 'framehost-notmodel-'));
    const notModel = join(dir, 'not-a-model.mjs');
    writeFileSync(notModel, 'export default { hello: 1 };\n');
    await expect(createRuntime({ model: notModel, logger: pino({ level: 'silent' }) })).rejects.toMatchObject({ code: 'load_failed', message: expect.stringContaining('not-a-model.mjs') });
  });

  // ONNX Runtime creates a session in one native call on the worker's thread; ending the thread
  // inside it aborts the process (here: the test run itself). shutdown() lets the call finish,
  // the worker release the session and the thread end by itself.
  it('shutdown() while ONNX Runtime creates the model\'s session resolves once the worker released it, and leaves no thread', async () => {
    const logs: { level: number; msg: string; sessions?: number }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    // A runtime loaded and shut down first: threads that the first one starts for good (the
    // main thread's import of ONNX Runtime's binding, libuv's pool) are in the count before.
    const warm = await startRuntime({ model: SCRIPTED_MODEL });
    await warm.ready();
    await warm.shutdown();
    await import(SLOW_SESSION_MODEL);
    const threadsBefore = threadCount();
    const rt = await runtime({ model: SLOW_SESSION_MODEL, modelOptions: { sessions: 2 }, ort: { provider: 'cpu' }, logger: pino({ level: 'debug' }, sink) });
    const ready = rt.ready();
    ready.catch(() => undefined); // it rejects during shutdown(): asserted below, not unhandled
    await until('the session being created', () => logs.some((l) => l.msg === 'onnx runtime: creating the session'), 30_000);
    await rt.shutdown();
    const msgs = logs.map((l) => l.msg);
    const created = msgs.findIndex((m) => m.startsWith('onnx runtime: using the CPU'));
    expect(created, JSON.stringify(msgs)).toBeGreaterThan(msgs.indexOf('onnx runtime: creating the session'));
    expect(msgs.filter((m) => m === 'onnx runtime: creating the session'), JSON.stringify(msgs)).toHaveLength(1);
    expect(logs.find((l) => l.msg === 'model released: its ONNX sessions are freed'), JSON.stringify(msgs)).toMatchObject({ sessions: 1 });
    expect(msgs.indexOf('model released: its ONNX sessions are freed')).toBeGreaterThan(created);
    await expect(ready).rejects.toMatchObject({ code: 'shutting_down' });
    expect(rt.phase()).toBe('shutdown');
    expect(logs.filter((l) => l.level >= 50), JSON.stringify(logs)).toEqual([]);
    // The worker's thread (and ONNX Runtime's threads with it) are gone.
    await until(`as many threads as before (${threadsBefore}; now ${threadCount()})`, () => threadCount() <= threadsBefore, 10_000);
  }, 60_000);

  it('fails a load that hangs past the load timeout', async () => {
    const rt = await runtime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'load-hangs' }, limits: { loadTimeoutMs: 500 } });
    expect(rt.start()).toMatchObject({ ok: false, error: { code: 'not_ready' } });
    await expect(rt.ready()).rejects.toMatchObject({ code: 'load_failed' });
    expect(rt.status().loadError?.message).toContain('timed out');
    expect(rt.start()).toMatchObject({ ok: false, error: { code: 'load_failed', message: expect.stringContaining('load timed out') } });
  });
});
