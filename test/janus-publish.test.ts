/**
 * `--publish janus://…` against Debian's `janus` (1.1.2), started here with a minimal config
 * (test/helpers/janus.ts): a framehost server on the room sender publishes its session to a
 * VideoRoom; a subscriber (libwebrtc in a child process) joins through Janus's REST API and
 * decodes the session's changing frames. Janus stopped and started again: the publisher comes
 * back by itself. The server's shutdown leaves the room empty. A room viewer and Janus share one
 * encode. What the log says when Janus is not there or refuses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ChildRpc } from '../bench/child-rpc.ts';
import { JanusApi } from '../src/media/janus/api.ts';
import { VIDEOROOM } from '../src/media/janus/publication.ts';
import { parseJanusTarget } from '../src/media/janus/target.ts';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import pino from 'pino';
import { JanusPublisher, publisherDefaults } from '../src/media/janus/publisher.ts';
import { DEFAULT_OUTLET } from '../src/media/outlet.ts';
import { MediaRoom, DEFAULT_ROOM } from '../src/media/room.ts';
import { eventually, freePort, hostAddress, JanusProcess } from './helpers/janus.ts';
import { BIN, ROOT } from './helpers/cli.ts';
import { startServer, type Harness } from './helpers/server.ts';
import { openEvents, waitEvent } from './helpers/sse.ts';
import type { ReceiversRequest, ReceiverStats } from './helpers/wrtc-receivers.ts';
import type { SubscriberRequest, SubscriberStats } from './helpers/wrtc-subscriber.ts';

const ROOM = 4242;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** The room's publishers' feed ids, as Janus lists them. */
async function publishers(endpoint: string): Promise<number[]> {
  const api = new JanusApi(endpoint);
  const s = await api.createSession();
  try {
    const h = await api.attach(s, VIDEOROOM);
    const r = await api.message(s, h, { request: 'listparticipants', room: ROOM });
    const list = (r.plugindata?.data.participants ?? []) as { id: number; publisher: boolean }[];
    return list.filter((p) => p.publisher).map((p) => p.id);
  } finally {
    await api.destroy(s, null).catch(() => undefined);
  }
}

/** Subscribe to `feed` through Janus's REST API; the child's libwebrtc answers Janus's offer. */
async function subscribe(endpoint: string, feed: number, rx: ChildRpc<SubscriberRequest>, address: string): Promise<void> {
  const api = new JanusApi(endpoint);
  const s = await api.createSession();
  const h = await api.attach(s, VIDEOROOM);
  const joined = await api.message(s, h, { request: 'join', ptype: 'subscriber', room: ROOM, streams: [{ feed }] });
  expect(joined.jsep?.type, JSON.stringify(joined.plugindata)).toBe('offer');
  const sdp = await rx.ask<string>({ type: 'answer', offer: joined.jsep!.sdp, address });
  const started = await api.message(s, h, { request: 'start', room: ROOM }, { jsep: { type: 'answer', sdp } });
  expect(started.plugindata?.data.started, JSON.stringify(started.plugindata)).toBe('ok');
  // Janus's session must stay alive while the test watches: its long poll keeps it so.
  const keep = setInterval(() => void api.keepalive(s).catch(() => undefined), 10_000);
  cleanups.push(async () => (clearInterval(keep), api.destroy(s, h)));
}

async function framesOf(rx: ChildRpc<SubscriberRequest>, index: number): Promise<SubscriberStats> {
  return (await rx.ask<SubscriberStats[]>({ type: 'stats' }))[index]!;
}

describe('publishing to a Janus VideoRoom (Debian janus)', { timeout: 120_000 }, () => {
  it("a Janus subscriber decodes the session's changing frames; after Janus restarts the publisher is back; shutdown leaves the room", async () => {
    let janus = await JanusProcess.start();
    cleanups.push(() => janus.stop());
    const address = hostAddress();
    const target = parseJanusTarget(`janus://127.0.0.1:${janus.port}/${ROOM}`);
    if (typeof target === 'string') throw new Error(target);
    const h: Harness = await startServer({ modelOptions: { size: 128, fps: 30 } }, { webrtc: { sender: 'room', iceHostAddresses: [address], publish: target } });
    cleanups.push(() => h.close());
    await h.rt.ready();
    const owner = await h.client();
    await owner.start();
    const rx = new ChildRpc<SubscriberRequest>(new URL('./helpers/wrtc-subscriber.ts', import.meta.url));
    cleanups.push(() => rx.close());

    await eventually('a publisher in the room', async () => (await publishers(janus.endpoint)).length === 1, 15_000);
    const [feed] = await publishers(janus.endpoint);
    expect(await sample(h, 'framehost_publisher_state{state="publishing"}')).toBe(1);
    expect(await sample(h, 'framehost_publisher_reconnects_total')).toBe(0);
    const t0 = performance.now();
    await subscribe(janus.endpoint, feed!, rx, address);
    await eventually('30 frames at the subscriber', async () => (await framesOf(rx, 0)).frames >= 30, 15_000);
    const first = await framesOf(rx, 0);
    console.log(`janus: subscriber's 30th frame ${(performance.now() - t0).toFixed(0)} ms after its join; ${first.changed} of ${first.frames} frames changed; ${first.width}×${first.height}`);
    expect([first.width, first.height]).toEqual([128, 128]);
    expect(first.changed).toBeGreaterThan(first.frames * 0.8);

    // Janus goes away and comes back on the same port: the publisher connects again by itself.
    const port = janus.port;
    await janus.stop();
    janus = await JanusProcess.start({ port });
    await eventually('the publisher back in the restarted Janus', async () => (await publishers(janus.endpoint)).length === 1, 30_000);
    const [again] = await publishers(janus.endpoint);
    await subscribe(janus.endpoint, again!, rx, address);
    expect(await sample(h, 'framehost_publisher_state{state="publishing"}')).toBe(1);
    expect(await sample(h, 'framehost_publisher_reconnects_total')).toBeGreaterThanOrEqual(1);
    await eventually('frames at a subscriber of the restarted Janus', async () => (await framesOf(rx, 1)).frames >= 30, 15_000);
    expect((await framesOf(rx, 1)).changed).toBeGreaterThan(20);

    // The server's shutdown ends the publication: Janus's room has no publisher left.
    await h.close();
    await eventually('an empty room after the shutdown', async () => (await publishers(janus.endpoint)).length === 0, 5000);
  });
});

/** A publisher on a room of its own, logging into `lines` (parsed JSON). */
function publisherTo(url: string, lines: Record<string, unknown>[]): JanusPublisher {
  const target = parseJanusTarget(url);
  if (typeof target === 'string') throw new Error(target);
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const outlet = { ...DEFAULT_OUTLET, bindAddress: hostAddress() };
  const room = new MediaRoom({ ...DEFAULT_ROOM, outlet });
  const publisher = new JanusPublisher(room, publisherDefaults(target, outlet), pino(sink));
  cleanups.push(async () => (await publisher.stop(), room.close()));
  return publisher;
}

const retries = (lines: Record<string, unknown>[]): { code?: string; message?: string }[] => lines.filter((l) => l.msg === 'Janus publication lost or refused; connecting again').map((l) => l.err as { code?: string; message?: string });

describe('publishing to Janus: what the log says when it cannot', { timeout: 60_000 }, () => {
  it('nothing listening: sfu_unreachable, and it keeps trying', async () => {
    const lines: Record<string, unknown>[] = [];
    const publisher = publisherTo(`janus://127.0.0.1:${await freePort()}/9`, lines);
    await eventually('two retries', async () => retries(lines).length >= 2, 10_000);
    expect(retries(lines)[0]?.code).toBe('sfu_unreachable');
    expect(publisher.state).toMatch(/connecting|retrying/);
  });

  it("a Janus whose rooms need an admin_key refuses to create one: sfu_refused with Janus's code", async () => {
    const janus = await JanusProcess.start({ videoroom: '  admin_key = "operators-only"' });
    cleanups.push(() => janus.stop());
    const lines: Record<string, unknown>[] = [];
    publisherTo(`janus://127.0.0.1:${janus.port}/31`, lines);
    await eventually('a refusal', async () => retries(lines).length >= 1, 10_000);
    expect(retries(lines)[0]).toMatchObject({ code: 'sfu_refused' });
    expect(retries(lines)[0]?.message).toMatch(/VideoRoom create: 429 .*admin_key/);
  });
});

/** One sample of /metrics, by its full series name (`name{labels}`); NaN when absent. */
async function sample(h: Harness, series: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

describe('the publisher in /metrics and on /chart', { timeout: 60_000 }, () => {
  it('with no Janus listening: state retrying or connecting, reconnects counted; its chart is drawn and lit', async () => {
    const target = parseJanusTarget(`janus://127.0.0.1:${await freePort()}/9`);
    if (typeof target === 'string') throw new Error(target);
    const h = await startServer({}, { webrtc: { sender: 'room', iceHostAddresses: [hostAddress()], publish: target } });
    cleanups.push(() => h.close());
    await eventually('two reconnects in /metrics', async () => (await sample(h, 'framehost_publisher_reconnects_total')) >= 2, 15_000);
    const states = await Promise.all(['connecting', 'publishing', 'retrying', 'stopping', 'stopped', 'failed'].map((state) => sample(h, `framehost_publisher_state{state="${state}"}`)));
    expect(states.reduce((a, b) => a + b)).toBe(1); // every state listed, one of them current
    expect(states[0]! + states[2]!).toBe(1); // connecting or retrying
    const page = await (await fetch(`${h.url}/chart`)).text();
    expect(page).toContain('SFU publisher chart');
    const sse = await openEvents(`${h.url}/chart/events`);
    cleanups.push(async () => sse.close());
    const hello = await waitEvent(sse, (e) => e.event === 'hello', 'hello');
    expect((hello.data.charts as Record<string, string[]>).publisher?.some((id) => /^publisher\.(connecting|retrying)$/.test(id))).toBe(true);
  });
});

describe('publishing to Janus from the command line', { timeout: 60_000 }, () => {
  it('serve --publish joins the room at start; SIGTERM leaves it empty at once, exit 0', async () => {
    const janus = await JanusProcess.start();
    cleanups.push(() => janus.stop());
    const args = ['serve', '--host', '127.0.0.1', '--port', '0', '--webrtc-sender', 'room', '--ice-host-addresses', hostAddress(), '--publish', `janus://127.0.0.1:${janus.port}/${ROOM}?display=cli`];
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, FRAMEHOST_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    child.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    cleanups.push(async () => child.exitCode === null && child.signalCode === null && process.kill(child.pid!, 'SIGKILL'));
    await eventually(() => `the CLI's publisher in the room; output: ${output.join('').slice(-1500)}`, async () => (await publishers(janus.endpoint)).length === 1, 30_000);
    expect(output.join('')).toMatch(/publishing to Janus/);
    // The publisher joins before the model has loaded: the signal may well come while ONNX Runtime
    // creates the model's session in the worker, which the shutdown waits for (docs/reliability.md).
    process.kill(child.pid!, 'SIGTERM');
    const code = await exited;
    expect(code, `exit code (signal ${String(child.signalCode)}); output: ${output.join('').slice(-800)}`).toBe(0);
    // Our detach, or at the latest the DTLS close of our peer: not Janus's 60 s session timeout.
    await eventually('an empty room after SIGTERM', async () => (await publishers(janus.endpoint)).length === 0, 2000);
    expect(output.join('')).not.toMatch(/sfu_unreachable|sfu_refused/);
  });
});

describe('one encode for the room and Janus', { timeout: 60_000 }, () => {
  it("a room viewer and a Janus subscriber decode the same frames, encoded once (the publisher is one more outlet)", async () => {
    const janus = await JanusProcess.start();
    cleanups.push(() => janus.stop());
    const target = parseJanusTarget(`janus://127.0.0.1:${janus.port}/${ROOM}`);
    if (typeof target === 'string') throw new Error(target);
    // Viewers on loopback as in every test; the publisher on the host address Janus gathers on.
    const room = new MediaRoom({ ...DEFAULT_ROOM, outlet: { ...DEFAULT_OUTLET, bindAddress: '127.0.0.1' } });
    const publisher = new JanusPublisher(room, publisherDefaults(target, { ...DEFAULT_OUTLET, bindAddress: hostAddress() }), pino({ level: 'warn' }));
    cleanups.push(async () => (await publisher.stop(), room.close()));
    const viewers = new ChildRpc<ReceiversRequest>(new URL('./helpers/wrtc-receivers.ts', import.meta.url));
    cleanups.push(() => viewers.close());
    const offer = await viewers.ask<{ index: number; sdp: string }>({ type: 'offer' });
    const joined = await room.join(offer.sdp);
    if (typeof joined === 'string') throw new Error(joined);
    await viewers.ask({ type: 'answer', index: offer.index, sdp: joined.sdp });

    const counter = { pushed: 0 };
    const rgba = new Uint8Array(128 * 128 * 4);
    const timer = setInterval(() => {
      const n = counter.pushed++;
      for (let p = 0; p < 128 * 128; p++) rgba.set([(p + n * 3) & 255, ((p >> 7) + n) & 255, 90, 255], p * 4);
      const frame = { data: rgba, width: 128, height: 128 }; // one object for both: the room encodes it once
      room.push(frame);
      publisher.feed(frame);
    }, 1000 / 30);
    cleanups.push(async () => clearInterval(timer));

    await eventually('the publisher in the room', async () => (await publishers(janus.endpoint)).length === 1, 15_000);
    const rx = new ChildRpc<SubscriberRequest>(new URL('./helpers/wrtc-subscriber.ts', import.meta.url));
    cleanups.push(() => rx.close());
    await subscribe(janus.endpoint, publisher.publication!.feed, rx, hostAddress());
    await eventually('30 frames at the Janus subscriber', async () => (await framesOf(rx, 0)).frames >= 30, 15_000);
    const viewer = (await viewers.ask<ReceiverStats[]>({ type: 'stats' }))[0]!;
    expect(viewer.frames).toBeGreaterThan(30);
    expect(room.counts.frames, `encoded ${room.counts.frames} of ${counter.pushed} pushed`).toBeLessThanOrEqual(counter.pushed);
    expect(room.counts.frames).toBeGreaterThan(counter.pushed * 0.9);
  });
});
