/**
 * The encode-once sender (`webrtc.sender: 'room'`) through framehost's own signalling: 8 viewers
 * (libwebrtc, in a child process: bench/webrtc-client.ts, the page's part over Socket.IO) watch one
 * broadcast session, and the room encodes each frame once for all of them. This file's server runs
 * node-datachannel and never loads wrtc.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ChildRpc } from '../bench/child-rpc.ts';
import type { RtcClientRequest, RtcWindow } from '../bench/webrtc-client.ts';
import { startServer, type Harness } from './helpers/server.ts';

const harnesses: Harness[] = [];
const children: ChildRpc<RtcClientRequest>[] = [];
afterEach(async () => {
  await Promise.allSettled(children.splice(0).map((c) => c.close()));
  await Promise.allSettled(harnesses.splice(0).map((h) => h.close()));
});

/** A labelled series' value in an exposition (NaN if absent). */
const labelled = (metrics: string, name: string, label: string): number => Number(new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
const gauge = async (h: Harness, name: string): Promise<number> => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${h.url}/metrics`)).text())?.[1] ?? NaN);

describe('room sender over Socket.IO signalling', { timeout: 90_000 }, () => {
  it('8 spectators of one broadcast session decode its frames, each frame encoded once; a frozen ninth slows none of them and alone moves to the low rendition', async () => {
    const h = await startServer({ modelOptions: { size: 128, fps: 30 } }, { viewers: 'broadcast', maxViewers: 16, webrtc: { sender: 'room', maxPeers: 16 } });
    harnesses.push(h);
    await h.rt.ready();
    const viewers = new ChildRpc<RtcClientRequest>(new URL('../bench/webrtc-client.ts', import.meta.url));
    children.push(viewers);
    await viewers.ask({ type: 'open', url: h.url, viewers: 8 });
    await viewers.ask({ type: 'start' });
    expect(await gauge(h, 'framehost_webrtc_peers')).toBe(8);
    await viewers.ask<RtcWindow>({ type: 'window', ms: 1500 }); // every viewer past its keyframe
    let generated = 0;
    const off = h.rt.on('frame', (f) => (generated += f.count));
    const encoded0 = await gauge(h, 'framehost_webrtc_room_frames_encoded');
    const w = await viewers.ask<RtcWindow>({ type: 'window', ms: 2000 });
    const encoded = (await gauge(h, 'framehost_webrtc_room_frames_encoded')) - encoded0;
    off();
    expect(generated).toBeGreaterThan(30);
    // One encode per frame for the 8 of them (a frame may straddle the window's edges).
    expect(encoded, `encoded ${encoded} of ${generated} generated`).toBeLessThanOrEqual(generated + 2);
    expect(encoded).toBeGreaterThanOrEqual(generated * 0.9);
    for (const [i, n] of w.frames.entries()) expect(n, `viewer ${i}: frames decoded of ${generated}: ${w.frames.join(', ')}`).toBeGreaterThan(generated * 0.8);
    expect(await gauge(h, 'framehost_webrtc_room_keyframes')).toBeLessThanOrEqual(1 + 8); // the first, and at most one per joiner

    // A ninth spectator freezes (SIGSTOP: its process takes nothing more): the others go on.
    const frozen = new ChildRpc<RtcClientRequest>(new URL('../bench/webrtc-client.ts', import.meta.url));
    children.push(frozen);
    await frozen.ask({ type: 'open', url: h.url, viewers: 1 });
    await frozen.ask({ type: 'attach' });
    expect((await frozen.ask<RtcWindow>({ type: 'window', ms: 1000 })).frames[0], 'the ninth decodes before it freezes').toBeGreaterThan(5);
    process.kill(frozen.pid!, 'SIGSTOP');
    try {
      let during = 0;
      const offDuring = h.rt.on('frame', (f) => (during += f.count));
      // Longer than the silence that moves a viewer down (3 s), plus a stats poll.
      const w2 = await viewers.ask<RtcWindow>({ type: 'window', ms: 4500 });
      offDuring();
      // The model keeps its rate while a viewer is frozen (the first window made `generated` in 2 s).
      expect(during / 4.5, `frames per second: ${generated / 2} before, ${during / 4.5} during`).toBeGreaterThan((generated / 2) * 0.85);
      for (const [i, n] of w2.frames.entries()) expect(n, `with a frozen spectator, viewer ${i}: ${w2.frames.join(', ')} of ${during}`).toBeGreaterThan(during * 0.8);
      // The frozen one stopped reporting: it alone gets the low rendition, the 8 stay on top.
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      expect(labelled(metrics, 'framehost_webrtc_room_rendition_viewers', 'rendition="low"'), metrics).toBe(1);
      expect(labelled(metrics, 'framehost_webrtc_room_rendition_viewers', 'rendition="top"')).toBe(8);
      expect(labelled(metrics, 'framehost_webrtc_room_rendition_frames_encoded', 'rendition="low"')).toBeGreaterThan(0);
      // Per-peer figures come with the stats poll (every 2 s): wait for the one after the move.
      const lowPeers = async () => (await (await fetch(`${h.url}/metrics`)).text()).match(/^framehost_webrtc_peer_rendition\{[^}]*rendition="low"[^}]*\} 1$/gm)?.length ?? 0;
      for (const started = Date.now(); (await lowPeers()) !== 1; await new Promise((r) => setTimeout(r, 100))) {
        if (Date.now() - started > 5000) throw new Error('no peer labelled with the low rendition in /metrics');
      }
      // Every peer's receiver reports show in its figures: loss 0 on loopback, a round trip.
      expect(metrics.match(/^framehost_webrtc_fraction_lost\{[^}]*\} 0$/gm)?.length).toBe(9);
      expect(metrics.match(/^framehost_webrtc_rtt_seconds\{[^}]*\} \S+$/gm)?.length).toBe(9);
    } finally {
      process.kill(frozen.pid!, 'SIGCONT');
    }
  });
});
