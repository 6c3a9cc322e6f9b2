/**
 * WebRTC media over loopback: a real framehost server (runtime, worker, ONNX Runtime) and real
 * libwebrtc peers in Node (@roamhq/wrtc) playing the page's part over a real Socket.IO
 * connection. The browser's side is in test/browser-webrtc.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { until } from './helpers/runtime.ts';
import { startServer, type Harness } from './helpers/server.ts';
import { connectViewer, type NodeViewer } from './helpers/webrtc.ts';
import type { TransportOptions } from '../src/transport/options.ts';

const harnesses: Harness[] = [];
const viewers: NodeViewer[] = [];
async function server(transport: Partial<TransportOptions> = {}): Promise<Harness> {
  const h = await startServer({ modelOptions: { size: 64, fps: 30 } }, transport);
  harnesses.push(h);
  await h.rt.ready();
  return h;
}
afterEach(async () => {
  for (const v of viewers.splice(0)) v.close();
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

/** Mean luma of an I420 frame, and how many luma samples differ between two frames. */
const lumaDiff = (a: Uint8Array, b: Uint8Array, n: number): number => {
  let d = 0;
  for (let i = 0; i < n; i++) if (Math.abs(a[i]! - b[i]!) > 16) d++;
  return d;
};

describe('server → viewer video track', { timeout: 60_000 }, () => {
  it('negotiates over the Socket.IO connection and delivers changing, non-blank frames', async () => {
    const h = await server();
    const owner = await h.client();
    const cfg = await owner.request('webrtc:config', {});
    expect(cfg).toMatchObject({ ok: true, available: true, codec: 'VP8' });
    const v = await connectViewer(owner);
    viewers.push(v);
    await owner.start({ encoding: 'webrtc' });
    await until('20 decoded frames', () => v.frames >= 20, 20_000);
    const first = v.last!;
    expect([first.width, first.height]).toEqual([64, 64]);
    const luma = first.data.subarray(0, 64 * 64);
    expect(new Set(luma).size, 'distinct luma levels').toBeGreaterThan(4);
    const seen = v.frames;
    await until('more frames', () => v.frames >= seen + 20, 20_000);
    expect(lumaDiff(first.data, v.last!.data, 64 * 64), 'pixels that changed').toBeGreaterThan(10);
    expect(h.server.io.sockets.sockets.size).toBe(1);
  });
});
