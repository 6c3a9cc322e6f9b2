/**
 * Input video over the wire: the session owner publishes frames on the video filter's `camera`
 * track through a real Socket.IO client; the real ONNX graph filters them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FramehostClient } from '../src/client/client.ts';
import { FramehostError } from '../src/errors.ts';
import { until } from './helpers/runtime.ts';
import { framesAtLeast, recordFrames, sleep, startServer, type Harness } from './helpers/server.ts';

const SIZE = 256;
const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function filterServer(): Promise<Harness> {
  const h = await startServer({ model: 'video-filter', modelOptions: {} });
  harnesses.push(h);
  await h.rt.ready();
  return h;
}

/** Black, opaque, with a white square [x0, x1) × [y0, y1). */
function squareFrame(x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const data = new Uint8Array(SIZE * SIZE * 4);
  for (let i = 0; i < SIZE * SIZE; i++) data[i * 4 + 3] = 255;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data.fill(255, (y * SIZE + x) * 4, (y * SIZE + x) * 4 + 3);
  return data;
}

const red = (data: Uint8Array, x: number, y: number): number => data[(y * SIZE + x) * 4]!;

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    return err instanceof FramehostError ? err.code : String(err);
  }
}

async function ownerWithSession(h: Harness): Promise<FramehostClient> {
  const owner = await h.client();
  await owner.start();
  await until('running', () => h.rt.phase() === 'running');
  return owner;
}

describe('input tracks over Socket.IO', () => {
  it('advertises the track in the capabilities', async () => {
    const h = await filterServer();
    const c = await h.client();
    expect((await c.capabilities()).inputs).toEqual({ camera: { width: 256, height: 256, format: 'rgba', description: 'the picture to filter' } });
  });

  it("filters the owner's frames: a white square comes out as its edges, at the same place", async () => {
    const h = await filterServer();
    const owner = await ownerWithSession(h);
    const rec = recordFrames(owner);
    await owner.publish('camera', { data: squareFrame(60, 100, 110, 150), width: SIZE, height: SIZE, format: 'rgba' }, { ack: true });
    // Our input filtered: edges on the square's left, right and top borders, dark inside and
    // outside (the test pattern shown before has ring edges everywhere, so all five must hold).
    const square = (d: Uint8Array): boolean =>
      red(d, 60, 120) > 200 && red(d, 109, 125) > 200 && red(d, 85, 100) > 200 && red(d, 85, 125) < 30 && red(d, 20, 20) < 30;
    await until('a filtered frame of the square', () => rec.frames.some((f) => square(f.data)));
    // Switch the mode: the same input, now mostly the original picture.
    await owner.command('mode', { name: 'original' });
    await until('the original picture', () => rec.frames.some((x) => red(x.data, 85, 125) > 200));
    expect(h.rt.status().session?.inputs).toBe(1);
  });

  it('refuses bad input with coded errors, and nothing reaches the model', async () => {
    const h = await filterServer();
    const good = { data: squareFrame(10, 10, 20, 20), width: SIZE, height: SIZE, format: 'rgba' as const };
    const stranger = await h.client();
    expect(await refusal(stranger.publish('camera', good, { ack: true }))).toBe('no_session');

    const owner = await ownerWithSession(h);
    const cases: [Parameters<FramehostClient['publish']>[0], Parameters<FramehostClient['publish']>[1], string][] = [
      ['camera', { ...good, width: 128 }, 'invalid_input'],
      ['camera', { ...good, format: 'rgb' }, 'invalid_input'],
      ['camera', { ...good, data: good.data.subarray(0, 1000) }, 'invalid_input'],
      ['camera', { ...good, data: new Uint8Array(SIZE * SIZE * 4 + 4) }, 'invalid_input'],
      ['microphone', good, 'unknown_track'],
    ];
    for (const [track, frame, code] of cases) expect(await refusal(owner.publish(track, frame, { ack: true })), `${track} ${code}`).toBe(code);
    expect(await refusal(stranger.publish('camera', good, { ack: true }))).toBe('not_owner');
    await stranger.attach(); // watching gives no right to publish
    expect(await refusal(stranger.publish('camera', good, { ack: true }))).toBe('not_owner');
    expect(h.rt.status().session?.inputs).toBe(0);

    // Without an ack, a refusal comes back as input:rejected.
    const rejected = new Promise<{ track: string; error: { code: string } }>((r) => owner.on('input:rejected', r));
    owner.publish('camera', { ...good, width: 1 });
    expect(await rejected).toMatchObject({ track: 'camera', error: { code: 'invalid_input' } });

    // Over the size limit: the connection is closed, the session is untouched.
    const raw = await h.client();
    const gone = new Promise<string>((r) => raw.socket.once('disconnect', r));
    raw.socket.emit('input:frame', { track: 'camera', width: SIZE, height: SIZE, format: 'rgba' }, new Uint8Array(2_000_000));
    expect(await gone).toBe('transport close');
    expect(h.rt.phase()).toBe('running');

    await owner.stop();
    await until('idle', () => h.rt.phase() === 'idle');
    expect(await refusal(owner.publish('camera', good, { ack: true }))).toBe('no_session');
  });

  it('starts every session with empty input: the next user never sees the last one\'s video', async () => {
    const h = await filterServer();
    const firstFrame = async (client: FramehostClient, publish?: Uint8Array) => {
      const rec = recordFrames(client);
      await client.start();
      if (publish) {
        await client.publish('camera', { data: publish, width: SIZE, height: SIZE, format: 'rgba' }, { ack: true });
        await sleep(300);
      }
      const [first] = await framesAtLeast(rec, 1);
      const last = rec.frames.at(-1)!;
      rec.stop();
      await client.stop();
      await until('idle', () => h.rt.phase() === 'idle');
      return { first: first!.data, last: last.data };
    };
    const a0 = await h.client();
    const baseline = await firstFrame(a0);
    const a = await h.client();
    const withVideo = await firstFrame(a, squareFrame(60, 100, 110, 150));
    expect(red(withVideo.last, 60, 120)).toBeGreaterThan(200); // A's video did reach A's session
    const b = await h.client();
    const next = await firstFrame(b);
    expect(Buffer.from(next.first).equals(Buffer.from(baseline.first))).toBe(true);
    expect(red(next.first, 60, 120)).toBe(red(baseline.first, 60, 120));
  });
});
