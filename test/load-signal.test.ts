/**
 * A shutdown while the inference worker is inside ONNX Runtime's native session creation
 * (InferenceSession.create: one synchronous call of a second or more for a real network).
 * Ending the worker thread under that call (worker.terminate()) made the process abort
 * (SIGABRT, "terminate called after throwing an instance of 'Napi::Error'") instead of draining:
 * the runtime must let the creation finish (up to the load timeout), release the session in the
 * worker, and only then end the thread.
 *
 * The model (fixtures/models/slow-session.ts) takes ~1.7 s in that native call on the 2-core
 * development machine, twice; the signal is sent once the worker logs that the first creation
 * begins. Before the fix the worker took the close between the two creations and was ended
 * during the second: the sessions were never released (6 of 6 runs) and the process aborted in
 * 1 of 6.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, logLines } from './helpers/cli.ts';
import { childPool } from './helpers/child.ts';

const BIN = 'bin/framehost.mjs';
const SLOW_SESSION_MODEL = fileURLToPath(new URL('./fixtures/models/slow-session.ts', import.meta.url));
const TEST_TIMEOUT_MS = 120_000;
/** Waiting for one process's line or exit: an upper bound, never a pause. */
const WAIT_MS = 45_000;
const children = childPool();

afterEach(async () => {
  await children.killAll();
});

const CREATING = 'onnx runtime: creating the session';
const CREATED = /^onnx runtime: using the CPU execution provider/;
const RELEASED = 'model released: its ONNX sessions are freed';

describe('a signal while ONNX Runtime creates the model session', () => {
  it('serve: SIGTERM during the native session creation waits for it, releases the session, drains and exits 0', async () => {
    // Two sessions, one after the other (as a model of several networks makes them): the worker's
    // event loop turns between them, where a close sent at the signal would be taken mid-load.
    const args = [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--model', SLOW_SESSION_MODEL, '--model-option', 'sessions=2', '--provider', 'cpu', '--log-level', 'debug'];
    const child = children.start(args, { env: cleanEnv() });
    await child.waitFor('stdout', new RegExp(`"msg":"${CREATING}"`), WAIT_MS);
    child.signal('SIGTERM');
    const exit = await child.exitWithin(WAIT_MS);
    const lines = logLines(child.stdout);
    const msgs = lines.map((l) => String(l.msg));
    const tail = `${child.stdout.slice(-3000)}\nstderr: ${child.stderr.slice(-2000)}`;
    expect(exit, tail).toEqual({ code: 0, signal: null });
    expect(lines.filter((l) => Number(l.level) >= 50), tail).toEqual([]);
    expect(lines.find((l) => l.msg === 'shutting down during load: the model was not loaded'), tail).toMatchObject({ level: 30 });
    // The order that keeps the process alive: the signal came during the first creation, that
    // creation finished, the second never began (the load ended there, not as a failure), the
    // worker released the one session, and only then did the shutdown end.
    const signalled = msgs.findIndex((m) => m.startsWith('shutting down: '));
    const created = msgs.flatMap((m, i) => (CREATED.test(m) ? [i] : []));
    const released = msgs.indexOf(RELEASED);
    expect(msgs.filter((m) => m === CREATING), tail).toHaveLength(1);
    expect(signalled, tail).toBeGreaterThan(msgs.indexOf(CREATING));
    expect(created, tail).toHaveLength(1);
    expect(created[0], tail).toBeGreaterThan(signalled);
    expect(msgs.indexOf('model load ended by the close'), tail).toBeGreaterThan(created[0]!);
    expect(released, tail).toBeGreaterThan(created[0]!);
    expect(lines[released], tail).toMatchObject({ sessions: 1, loaded: false });
    expect(msgs.at(-1), tail).toBe('shutdown complete');
    // Shut down before it was ready: never announced as ready.
    expect(msgs.filter((m) => m.startsWith('ready: ')), tail).toEqual([]);
  }, TEST_TIMEOUT_MS);

  // The operator's escape hatch. process.exit(1) ends the worker thread too, which waits for the
  // native call and then aborts (before: 2.5-5 s, then SIGABRT, 5 of 5 runs); during a native
  // call the process ends by the signal instead, at once.
  it('serve: a second SIGTERM during the native session creation exits at once, by the signal, without an abort', async () => {
    const args = [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--model', SLOW_SESSION_MODEL, '--provider', 'cpu', '--log-level', 'debug'];
    const child = children.start(args, { env: cleanEnv() });
    await child.waitFor('stdout', new RegExp(`"msg":"${CREATING}"`), WAIT_MS);
    child.signal('SIGTERM');
    await child.waitFor('stdout', /"msg":"shutting down: /, WAIT_MS);
    child.signal('SIGTERM');
    const exit = await child.exitWithin(WAIT_MS);
    const lines = logLines(child.stdout);
    const tail = `${child.stdout.slice(-3000)}\nstderr: ${child.stderr.slice(-2000)}`;
    expect(exit, tail).toEqual({ code: null, signal: 'SIGTERM' });
    expect(lines.find((l) => l.msg === 'second signal: exiting now'), tail).toMatchObject({ level: 40, signal: 'SIGTERM', by: 'signal' });
    // At once: before ONNX Runtime finished creating the session.
    expect(lines.filter((l) => CREATED.test(String(l.msg))), tail).toEqual([]);
    expect(child.stderr, tail).not.toMatch(/terminate called|Napi::Error/);
  }, TEST_TIMEOUT_MS);
});
