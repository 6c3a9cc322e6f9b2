/**
 * `--inspect`'s plumbing, offline: the runtime chart's inspection stream sent by
 * `startInspection(ws://…)` to a plain `ws` server of ours, read back as the JSON messages a
 * Stately inspector would get. A real runtime (demo model, real worker, real ONNX Runtime).
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import { WebSocketServer, type WebSocket } from 'ws';
import { startInspection, type Inspection } from '../src/transport/inspect.ts';
import type { Runtime } from '../src/runtime/runtime.ts';
import { startRuntime, until, untilPhase } from './helpers/runtime.ts';
import { sleep } from './helpers/server.ts';
import { childPool } from './helpers/child.ts';
import { Writable } from 'node:stream';
import { pino } from 'pino';

const children = childPool();

/** The parts of @statelyai/inspect's messages that the test reads. */
interface InspectMessage {
  readonly type: string;
  readonly name?: string;
  readonly sessionId?: string;
  readonly event?: { readonly type?: string };
  readonly snapshot?: { readonly value?: unknown; readonly status?: string };
}

let wss: WebSocketServer | undefined;
let inspection: Inspection | undefined;
let rt: Runtime | undefined;

afterEach(async () => {
  await children.killAll();
  await rt?.shutdown().catch(() => undefined);
  rt = undefined;
  await inspection?.stop();
  inspection = undefined;
  if (wss) {
    const server = wss;
    wss = undefined;
    for (const c of server.clients) c.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A receiver on 127.0.0.1:0 collecting every JSON message its clients send. */
async function receiver(): Promise<{ url: string; messages: InspectMessage[]; raw: string[]; connected: Promise<WebSocket> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss = server;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const messages: InspectMessage[] = [];
  const raw: string[] = [];
  const connected = new Promise<WebSocket>((resolve) => {
    server.on('connection', (ws) => {
      ws.on('message', (data) => {
        const text = String(data);
        raw.push(text);
        messages.push(JSON.parse(text) as InspectMessage);
      });
      resolve(ws);
    });
  });
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}`, messages, raw, connected };
}

const eventTypes = (messages: readonly InspectMessage[]): string[] =>
  messages.filter((m) => m.type === '@xstate.event').map((m) => m.event?.type ?? '');

const snapshotValues = (messages: readonly InspectMessage[]): string[] =>
  messages.filter((m) => m.type === '@xstate.snapshot' && m.snapshot?.value !== undefined).map((m) => JSON.stringify(m.snapshot?.value));

describe('Stately inspection over a WebSocket', () => {
  it('sends the chart, its events and its snapshots for a session, and no frames', async () => {
    const rx = await receiver();
    inspection = startInspection(rx.url);
    expect(inspection.describe).toContain(rx.url);
    // Wait for the inspector's socket: stopping it before it opens makes it retry in 5 s.
    await rx.connected;

    rt = await startRuntime({ modelOptions: { size: 32, fps: 30 }, inspect: inspection.inspect });
    await rt.ready();
    let frames = 0;
    rt.on('frame', () => frames++);

    const started = rt.start();
    expect(started.ok).toBe(true);
    await untilPhase(rt, 'running');
    expect(rt.command('stamp', { x: 16, y: 16, radius: 4 }).ok).toBe(true);
    // Let the command's messages arrive, then a second of running: frames flow, the chart is quiet.
    await until('the command reached the inspector', () => rx.messages.some((m) => m.type === '@xstate.snapshot' && m.event?.type === 'session.command'));
    await sleep(100);
    const beforeQuiet = { messages: rx.messages.length, frames };
    await sleep(1000);
    // Nothing goes through the chart while a session runs: not the frames, and not the worker's
    // heartbeats either (issue 11: each beat was an event and a snapshot, 2 messages a second).
    const quietMessages = rx.messages.slice(beforeQuiet.messages);
    const quiet = { messages: quietMessages.length, types: quietMessages.map((m) => m.event?.type ?? m.type), frames: frames - beforeQuiet.frames };
    expect(rt.stop().ok).toBe(true);
    await untilPhase(rt, 'idle');
    // Inspection events are sent from a timer after the fact: wait for the stop's snapshot to arrive.
    await until('a snapshot in idle after session.stop', () => {
      const stopAt = rx.messages.findIndex((m) => m.type === '@xstate.event' && m.event?.type === 'session.stop');
      return stopAt >= 0 && rx.messages.slice(stopAt).some((m) => m.type === '@xstate.snapshot' && String(JSON.stringify(m.snapshot?.value)).includes('"idle"'));
    });
    // Frames flowed while nothing about them went through the chart.
    expect(quiet.frames).toBeGreaterThan(5);
    expect(quiet.types).toEqual([]);

    const { messages } = rx;
    const types = new Set(messages.map((m) => m.type));
    expect([...types].sort()).toEqual(['@xstate.actor', '@xstate.event', '@xstate.snapshot']);

    // The chart itself (and its inference actor) announced, with the chart's definition.
    const actors = messages.filter((m) => m.type === '@xstate.actor');
    expect(actors.map((m) => m.name).sort()).toEqual(['framehost', 'inference']);
    const chartId = actors.find((m) => m.name === 'framehost')?.sessionId;
    expect(chartId).toBeTruthy();
    const toChart = messages.filter((m) => m.sessionId === chartId);

    const events = eventTypes(toChart);
    expect(events).toEqual(expect.arrayContaining(['session.start', 'worker.ready', 'session.command', 'session.stop']));
    // In the order the session went.
    expect(events.indexOf('worker.ready')).toBeLessThan(events.indexOf('session.start'));
    expect(events.indexOf('session.start')).toBeLessThan(events.indexOf('session.stop'));

    const values = snapshotValues(toChart);
    expect(values.some((v) => v.includes('"running"'))).toBe(true);
    expect(values.some((v) => v.includes('"idle"'))).toBe(true);
    expect(values.some((v) => v.includes('"loading"'))).toBe(true);

    // ~1 s at 30 fps is ~30 frames; the chart saw a few dozen events at most, none per frame.
    expect(messages.length).toBeLessThan(200);
    // No frame payload in any message: a 32×32 RGBA frame is 4096 bytes, many more as JSON.
    for (const text of rx.raw) expect(text).not.toMatch(/"seq"|"inferMs"/);
    const biggestNonActor = Math.max(...rx.raw.filter((_, i) => messages[i]!.type !== '@xstate.actor').map((t) => t.length));
    expect(biggestNonActor).toBeLessThan(4096);
  });

  // Issue 11: stop() terminated the socket at once, so the chart's final snapshot (sent from a
  // timer after the fact) never reached the receiver.
  it('delivers the final shutdown snapshot before it closes the socket', async () => {
    const rx = await receiver();
    inspection = startInspection(rx.url);
    await rx.connected;
    rt = await startRuntime({ modelOptions: { size: 32 }, inspect: inspection.inspect });
    await rt.ready();
    await rt.shutdown();
    await inspection.stop();
    inspection = undefined;
    const chartId = rx.messages.find((m) => m.type === '@xstate.actor' && m.name === 'framehost')?.sessionId;
    // The receiver has read everything once the close handshake completed; allow its socket a moment.
    await until('the final snapshot arrived', () => rx.messages.some((m) => m.sessionId === chartId && m.type === '@xstate.snapshot' && m.snapshot?.status === 'done'), 2000);
    const last = rx.messages.filter((m) => m.sessionId === chartId && m.type === '@xstate.snapshot').at(-1);
    expect(last?.snapshot).toMatchObject({ value: 'shutdown', status: 'done' });
  });

  it('delivers the final snapshot from `framehost serve --inspect-url` on SIGTERM, and exits 0', async () => {
    const rx = await receiver();
    const child = children.start(['bin/framehost.mjs', 'serve', '--port', '0', '--model-option', 'size=32', '--inspect-url', rx.url]);
    await child.waitFor('stdout', /"msg":"ready: /, 30_000);
    await child.waitFor('stdout', /inspector: connected to/, 10_000);
    child.signal('SIGTERM');
    const exit = await child.exitWithin(15_000);
    expect(exit, child.stderr).toEqual({ code: 0, signal: null });
    const chartId = rx.messages.find((m) => m.type === '@xstate.actor' && m.name === 'framehost')?.sessionId;
    await until('the final snapshot arrived', () => rx.messages.some((m) => m.sessionId === chartId && m.snapshot?.status === 'done'), 2000);
    expect(rx.messages.filter((m) => m.sessionId === chartId && m.type === '@xstate.snapshot').at(-1)?.snapshot).toMatchObject({ value: 'shutdown', status: 'done' });
  });

  // Issue 11: an unreachable --inspect-url was logged as "inspection events sent to …", as if it worked.
  it('logs an unreachable receiver as a failure, with the reason, once per outage', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve())); // a port nobody listens on now
    const lines: { level: number; msg: string; err?: string; url?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    });
    const url = `ws://127.0.0.1:${port}`;
    inspection = startInspection(url, { log: pino({ level: 'debug' }, sink) });
    expect(inspection.describe).not.toMatch(/sent to/);
    await until('a warning', () => lines.some((l) => l.level === 40));
    const warning = lines.find((l) => l.level === 40)!;
    expect(warning).toMatchObject({ url, err: expect.stringContaining('ECONNREFUSED') });
    expect(warning.msg).toContain(`cannot reach ${url}`);
    expect(lines.some((l) => /connected/.test(l.msg))).toBe(false);
    // Events held for the receiver that never came are reported as lost at stop, not silently dropped.
    inspection.inspect({ type: '@xstate.event', actorRef: { sessionId: 'x' }, event: { type: 'probe' }, sourceRef: undefined, rootId: 'x' } as unknown as InspectionEvent);
    await inspection.stop();
    inspection = undefined;
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([expect.stringContaining('cannot reach'), expect.stringContaining('not delivered')]);
  });

  // Inspection.inspect is typed as a function, but startInspection hands out the inspector's
  // observer object ({ next }). createActor accepts either, so the runtime works; a caller that
  // uses it as typed (say, to fan out to two inspectors) gets "inspect is not a function".
  it('hands out an inspect that can be called as its type says', async () => {
    const rx = await receiver();
    inspection = startInspection(rx.url);
    await rx.connected;
    const { inspect } = inspection;
    expect(typeof inspect).toBe('function');
    // An @xstate.* type the inspector does not know: it drops it (nothing to serialize).
    const harmless = { type: '@xstate.test-probe' } as unknown as InspectionEvent;
    expect(() => inspect(harmless)).not.toThrow();
  });

  // The inspector's socket retries every 5 s after an error, and stop() does not cancel that: an
  // embedder whose receiver is down (or that stops before the socket opened) never exits.
  it('lets the process exit once stopped, even when the receiver is unreachable', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve())); // a port nobody listens on now
    const child = children.start(['--import', 'tsx', 'test/helpers/inspect-stop-child.ts', `ws://127.0.0.1:${port}`, '300']);
    await child.waitFor('stdout', /^stopped$/m, 20_000);
    const exit = await child.exitWithin(3_000);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
