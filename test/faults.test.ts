/**
 * The fault matrix over the wire: a real server on 127.0.0.1, the real worker and ONNX Runtime,
 * a scripted model that misbehaves on purpose (test/fixtures/models/scripted.ts), and the typed
 * client. For every fault: the client is told how its session ended (a reason and, for faults,
 * an error code), the chart goes back to `idle` (through `loading` when the worker had to be
 * replaced), /health answers during and after, and nothing of the faulted session (its `note`)
 * reaches the next one.
 *
 * test/runtime.test.ts covers the loop that throws, returns, emits a short frame or ignores stop
 * through the runtime API; these are the faults it does not cover, seen by a remote client.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FramehostClient } from '../src/client/client.ts';
import type { ErrorValue } from '../src/errors.ts';
import type { JsonValue } from '../src/model/api.ts';
import { SCRIPTED_MODEL, until } from './helpers/runtime.ts';
import { framesAtLeast, nextEvent, recordFrames, sleep, startServer, type Harness } from './helpers/server.ts';

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

const injected: string[] = [];
afterAll(() => {
  console.log(`[faults] ${injected.length} faults injected over the wire (${injected.join(', ')}); each ended with a coded reason, the chart went back to idle, /health answered throughout, and the next session started with empty notes`);
});

type Ended = { sessionId: string; reason: string; error?: ErrorValue };
type Health = { status: string; state: string; workerStarts: number; session: { frames: number } | null; lastEnd: { reason: string } | null };

async function server(modelOptions: Record<string, unknown>, limits: Record<string, number> = {}): Promise<Harness> {
  const h = await startServer({ model: SCRIPTED_MODEL, modelOptions, limits });
  harnesses.push(h);
  await h.rt.ready();
  return h;
}

/** GET /health, which must answer 200 within `ms` whatever the worker is doing. */
async function health(h: Harness, ms = 2000): Promise<Health> {
  const res = await fetch(`${h.url}/health`, { signal: AbortSignal.timeout(ms) });
  expect(res.status).toBe(200);
  return (await res.json()) as Health;
}

/** Every model message this client receives, in order. */
function messagesOf(client: FramehostClient): JsonValue[] {
  const out: JsonValue[] = [];
  client.on('message', (m) => out.push(m.data));
  return out;
}

/**
 * Start a session as `client`, wait for the model's hello (it carries the session's notes),
 * then leave a secret in the session's state and wait for its echo.
 */
async function startWithSecret(client: FramehostClient, secret: string): Promise<{ sessionId: string; hello: JsonValue }> {
  const messages = messagesOf(client);
  const { sessionId } = await client.start();
  await until('hello', () => messages.length >= 1);
  await client.command('note', { text: secret });
  await until('echo of the note', () => messages.length >= 2);
  expect(messages[1]).toEqual({ notes: [secret] });
  return { sessionId, hello: messages[0]! };
}

/** A fresh client starts the next session: its hello must show empty notes (nothing leaked). */
async function nextSessionIsClean(h: Harness): Promise<{ client: FramehostClient; sessionId: string }> {
  await until('idle', () => h.rt.phase() === 'idle', 20_000);
  expect((await health(h)).state).toBe('idle');
  const client = await h.client();
  const messages = messagesOf(client);
  const { sessionId } = await client.start();
  await until('hello of the next session', () => messages.length >= 1);
  expect(messages[0]).toEqual({ loads: 1, notes: [] });
  return { client, sessionId };
}

describe('faults of the model, seen by a remote client', () => {
  it('never-emits: the session runs without frames, stop ends it normally, the next session works', async () => {
    const h = await server({ mode: 'never-emits' });
    const a = await h.client();
    const rec = recordFrames(a);
    const { sessionId, hello } = await startWithSecret(a, 'secret of never-emits');
    expect(hello).toEqual({ loads: 1, notes: [] });
    await sleep(400);
    const during = await health(h);
    expect(during).toMatchObject({ status: 'ok', state: 'running', session: { frames: 0 } });
    expect(rec.frames).toHaveLength(0);
    // Still responsive: a command is taken and applied while no frame ever comes.
    await expect(a.command('note', { text: 'second' })).resolves.toHaveProperty('requestId');
    const ended = nextEvent<Ended>(a, 'session:ended');
    await a.stop();
    expect(await ended).toEqual({ sessionId, reason: 'stopped' });
    injected.push('never-emits');
    const next = await nextSessionIsClean(h);
    await next.client.stop();
    await until('idle', () => h.rt.phase() === 'idle');
    expect(await health(h)).toMatchObject({ status: 'ok', state: 'idle', workerStarts: 1, lastEnd: { reason: 'stopped' } });
  });

  it('flood: a model emitting as fast as it can keeps the client fed, memory bounded, and drops counted', async () => {
    const h = await server({ mode: 'flood' });
    const a = await h.client();
    const rec = recordFrames(a);
    const rss0 = process.memoryUsage().rss;
    const { sessionId } = await startWithSecret(a, 'secret of flood');
    const generated0 = h.rt.status().session!.frames;
    const t0 = Date.now();
    // The client keeps receiving: frames arrive in each of four consecutive windows.
    let rssPeak = 0;
    for (let w = 0; w < 4; w++) {
      const before = rec.frames.length;
      await framesAtLeast(rec, before + 20, 5000);
      expect((await health(h, 1000)).state).toBe('running');
      await sleep(250);
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
    const seconds = (Date.now() - t0) / 1000;
    const generatedPerSecond = (h.rt.status().session!.frames - generated0) / seconds;
    // A flood indeed: far more frames than any 60 fps model, while the main thread stays free.
    expect(generatedPerSecond).toBeGreaterThan(500);
    expect(rec.frames.every((f) => f.meta.sessionId === sessionId && f.data.byteLength === 16)).toBe(true);
    // Tens of thousands of frames went by; holding them (or their callbacks) would show here.
    expect(rssPeak - rss0).toBeLessThan(150 * 1024 * 1024);
    const finished = new Promise<{ dropped: number; frames: number }>((resolve) => {
      const off = h.rt.on('session.finished', (e) => {
        off();
        resolve(e);
      });
    });
    const ended = nextEvent<Ended>(a, 'session:ended');
    await a.stop();
    expect(await ended).toEqual({ sessionId, reason: 'stopped' });
    const summary = await finished;
    // Frames the main thread had no room for were dropped in the worker and counted.
    expect(summary.dropped).toBeGreaterThan(0);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(Number(/framehost_frames_dropped_total\{where="worker"\} (\d+)/.exec(metrics)?.[1] ?? 0)).toBe(summary.dropped);
    injected.push('flood');
    const next = await nextSessionIsClean(h);
    await next.client.stop();
    await until('idle', () => h.rt.phase() === 'idle');
    expect(await health(h)).toMatchObject({ status: 'ok', state: 'idle', workerStarts: 1 });
  });

  for (const data of ['float32', 'string'] as const) {
    it(`wrong-type-frame (${data}): the session ends error with bad_frame; the worker survives; the next session is clean`, async () => {
      const h = await server({ mode: 'wrong-type-frame', data, at: 150 });
      const a = await h.client();
      const rec = recordFrames(a);
      const ended = nextEvent<Ended>(a, 'session:ended');
      const { sessionId } = await startWithSecret(a, `secret of ${data}`);
      expect((await health(h)).status).toBe('ok');
      const end = await ended;
      expect(end).toMatchObject({ sessionId, reason: 'error', error: { code: 'bad_frame' } });
      expect(end.error!.message).toContain('Uint8Array');
      // Every frame before the bad one was well formed: 8×8 RGBA, 256 bytes.
      expect(rec.frames.length).toBeGreaterThan(0);
      expect(rec.frames.every((f) => f.meta.width === 8 && f.data.byteLength === 256)).toBe(true);
      injected.push(`wrong-type-frame(${data})`);
      const next = await nextSessionIsClean(h);
      // Same model, same fault: the next session ends the same way, from a clean state.
      const again = await nextEvent<Ended>(next.client, 'session:ended');
      expect(again).toMatchObject({ sessionId: next.sessionId, reason: 'error', error: { code: 'bad_frame' } });
      await until('idle', () => h.rt.phase() === 'idle');
      expect(await health(h)).toMatchObject({ status: 'ok', state: 'idle', workerStarts: 1, lastEnd: { reason: 'error' } });
    });
  }

  it('slow-command: a command blocking the worker past the stop deadline ends the session killed; a fresh worker serves the next', async () => {
    const h = await server({}, { stopDeadlineMs: 400 });
    const a = await h.client();
    const states: string[] = [];
    a.on('state', ({ state }) => states.push(state));
    const { sessionId } = await startWithSecret(a, 'secret of slow-command');
    await a.command('slow', { ms: 4000 });
    await sleep(150); // the worker is now inside the handler
    const ended = nextEvent<Ended>(a, 'session:ended');
    const t0 = Date.now();
    await a.stop();
    const during = await health(h, 500); // the main thread answers while the worker is blocked
    expect(during).toMatchObject({ state: 'stopping' });
    const end = await ended;
    expect(end).toMatchObject({ sessionId, reason: 'killed', error: { code: 'timeout' } });
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(380);
    expect(waited).toBeLessThan(3000); // the deadline, not the handler's 4 s
    injected.push('slow-command');
    const next = await nextSessionIsClean(h);
    expect(states).toEqual(expect.arrayContaining(['stopping', 'loading', 'idle']));
    expect(states.indexOf('loading')).toBeGreaterThan(states.indexOf('stopping'));
    const stopped = nextEvent<Ended>(next.client, 'session:ended');
    await next.client.stop();
    expect(await stopped).toEqual({ sessionId: next.sessionId, reason: 'stopped' });
    await until('idle', () => h.rt.phase() === 'idle');
    expect(await health(h)).toMatchObject({ status: 'ok', state: 'idle', workerStarts: 2, lastEnd: { reason: 'stopped' } });
  });
});
