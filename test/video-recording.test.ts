/**
 * Recordings (`recordVideo`, `--record-video DIR`): each session's stream as the room encodes it,
 * in a WebM file read back by FFmpeg's own demuxer and VP8 decoder (node-av): every frame the
 * session made, its duration, a session whose worker crashes, the caps, and `GET /recordings`
 * behind the `observe` right. The server runs node-datachannel (the room): its own file.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decoder, Demuxer } from 'node-av/api';
import { afterEach, describe, expect, it } from 'vitest';
import { createToken, TokenVerifier } from '../src/auth/tokens.ts';
import { loadTokenKeys, type TokenKeySet } from '../src/auth/keys.ts';
import type { TransportOptions } from '../src/transport/options.ts';
import type { RuntimeOptions } from '../src/runtime/runtime.ts';
import { SCRIPTED_MODEL } from './helpers/runtime.ts';
import { Vp8Encoder } from '../src/media/vp8-encoder.ts';
import { WebmWriter } from '../src/media/webm.ts';
import { sleep, startServer, type Harness } from './helpers/server.ts';

const SECRET = 'r'.repeat(16) + 'recordings-secret-012345678';
const harnesses: Harness[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.allSettled(harnesses.splice(0).map((h) => h.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function folder(): string {
  const d = mkdtempSync(join(tmpdir(), 'framehost-rec-'));
  dirs.push(d);
  return d;
}

async function server(runtime: RuntimeOptions, dir: string, extra: Partial<TransportOptions> = {}): Promise<Harness> {
  const h = await startServer(runtime, { webrtc: { sender: 'room' }, recordVideo: { dir, maxFileBytes: 64 * 2 ** 20, maxFolderBytes: 256 * 2 ** 20 }, ...extra });
  harnesses.push(h);
  await h.rt.ready();
  return h;
}

/** What FFmpeg reads back: packets, keyframes, frames decoded, size, duration (s). Sync API: node-av's async one needs Node 22's Promise.withResolvers. */
function readBack(path: string): { packets: number; keys: number; decoded: number; width: number; duration: number } {
  using input = Demuxer.openSync(path);
  const stream = input.video()!;
  using decoder = Decoder.createSync(stream);
  let packets = 0;
  let keys = 0;
  let decoded = 0;
  for (const packet of input.packetsSync(stream.index)) {
    if (packet) {
      packets++;
      if (packet.isKeyframe) keys++;
    }
    for (const frame of decoder.decodeAllSync(packet)) {
      decoded++;
      frame.free();
    }
  }
  return { packets, keys, decoded, width: stream.codecpar.width, duration: input.duration };
}

/** The session's end (the recording is closed in the same turn). */
const finished = (h: Harness): Promise<string> => new Promise((resolve) => h.rt.on('session.finished', (e) => resolve(e.reason)));

const files = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.webm'));

describe('the WebM writer', () => {
  it('a file never closed (a killed process) is still read whole; closing it sizes it and gives it a duration', () => {
    const dir = folder();
    const encoder = new Vp8Encoder({ width: 64, height: 64, fps: 30, bitrateKbps: 300, gopFrames: 10 });
    const rgba = new Uint8Array(64 * 64 * 4);
    const open = WebmWriter.create(join(dir, 'open.webm'), 64, 64);
    const closed = WebmWriter.create(join(dir, 'closed.webm'), 64, 64);
    let n = 0;
    try {
      for (let i = 0; i < 30; i++) {
        rgba.fill(i * 8);
        for (const e of encoder.encode(rgba)) {
          open.write(e.data, n * 33.3, e.key);
          closed.write(e.data, n * 33.3, e.key);
          n++;
        }
      }
    } finally {
      encoder.close();
    }
    closed.close();
    const cut = readBack(join(dir, 'open.webm')); // as a killed process leaves it: unknown sizes, no duration
    expect([cut.packets, cut.decoded, cut.keys]).toEqual([n, n, 3]);
    const whole = readBack(join(dir, 'closed.webm'));
    expect([whole.packets, whole.decoded]).toEqual([n, n]);
    expect(whole.duration).toBeCloseTo((n * 33.3) / 1000, 1);
  });
});

describe('recordings', { timeout: 60_000 }, () => {
  it("a session's frames are in its WebM file, every one decodable, its duration the session's; GET /recordings for operators", async () => {
    const dir = folder();
    const tokens = new TokenVerifier((await loadTokenKeys({ key: SECRET })) as TokenKeySet, { maxLifetimeS: 86_400, clockSkewS: 30 });
    const h = await server({ modelOptions: { size: 128, fps: 30 } }, dir, { tokens });
    const owner = await h.client({ authToken: await createToken({ key: SECRET, role: 'player', ttl: 600 }) });
    let made = 0;
    const off = h.rt.on('frame', (f) => (made += f.count));
    const began = performance.now();
    const ended = finished(h);
    await owner.start();
    await sleep(2000);
    await owner.stop();
    expect(await ended).toBe('stopped');
    const wall = (performance.now() - began) / 1000;
    off();
    const [name] = files(dir);
    expect(name).toMatch(/^session-.*\.webm$/);
    const back = readBack(join(dir, name!));
    expect(back.width).toBe(128);
    expect(made).toBeGreaterThan(40);
    console.log(`recording: ${back.packets} frames of ${made} made, ${back.keys} keyframes, duration ${back.duration.toFixed(2)} s for a session of ${wall.toFixed(2)} s`);
    // Every frame the session made, encoded once for the file (the first waits for nothing: a key is asked at once).
    expect(back.packets, `${back.packets} packets of ${made} frames made`).toBeGreaterThanOrEqual(made - 2);
    expect(back.packets).toBeLessThanOrEqual(made);
    expect(back.decoded).toBe(back.packets);
    expect(back.keys).toBeGreaterThanOrEqual(1);
    expect(back.duration, `duration ${back.duration} s, session ${wall.toFixed(2)} s`).toBeGreaterThan(wall * 0.8);
    expect(back.duration).toBeLessThan(wall * 1.1);

    const list = (token?: string): Promise<Response> => fetch(`${h.url}/recordings`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect((await list()).status).toBe(401);
    expect((await list(await createToken({ key: SECRET, role: 'spectator', ttl: 600 }))).status).toBe(403);
    const ok = await list(await createToken({ key: SECRET, role: 'operator', ttl: 600 }));
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { recordings: { name: string; bytes: number }[] };
    expect(body.recordings.map((r) => r.name)).toEqual([name]);
    expect(body.recordings[0]!.bytes).toBeGreaterThan(1000);
  });

});

describe('recordings of sessions that end badly, and the caps', { timeout: 60_000 }, () => {
  it('a session whose worker crashes still leaves a valid file', async () => {
    const dir = folder();
    const h = await server({ model: SCRIPTED_MODEL, modelOptions: { mode: 'normal' } }, dir);
    const owner = await h.client();
    let made = 0;
    const off = h.rt.on('frame', (f) => (made += f.count));
    const ended = finished(h);
    await owner.start();
    await sleep(600);
    await owner.command('exit').catch(() => undefined); // the worker thread ends under the session
    expect(await ended).toBe('crashed');
    off();
    const [name] = files(dir);
    const back = readBack(join(dir, name!));
    expect(back.width).toBe(8);
    expect(back.packets).toBeGreaterThan(10);
    expect(back.packets).toBeLessThanOrEqual(made);
    expect(back.decoded).toBe(back.packets);
    expect(back.duration).toBeGreaterThan(0.3);
  });

  it('a file stops at its cap and stays valid; the oldest recordings go when the folder is full', async () => {
    const dir = folder();
    const old = join(dir, 'session-2000-01-01T00-00-00-000Z-old.webm');
    writeFileSync(old, Buffer.alloc(100_000));
    const h = await server({ modelOptions: { size: 128, fps: 30 } }, dir, { recordVideo: { dir, maxFileBytes: 65_536, maxFolderBytes: 150_000 } });
    const owner = await h.client();
    const ended = finished(h);
    await owner.start();
    await sleep(2500); // ~1 Mbit/s at 128² over 2.5 s is well past 64 KiB
    await owner.stop();
    await ended;
    expect(existsSync(old), 'the oldest recording was removed to make room').toBe(false);
    const [name] = files(dir);
    const back = readBack(join(dir, name!));
    expect(back.packets).toBeGreaterThan(5);
    expect(back.decoded).toBe(back.packets);
    const bytes = (await (await fetch(`${h.url}/recordings`)).json()) as { recordings: { bytes: number }[] };
    expect(bytes.recordings[0]!.bytes).toBeLessThanOrEqual(65_536);
  });
});
