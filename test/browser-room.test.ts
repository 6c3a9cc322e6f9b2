/**
 * The encode-once sender (`webrtc.sender: 'room'`, src/media/) behind the demo page, in a real
 * headless Chromium against a real server: the page negotiates as it always does, plays the
 * room's VP8 and draws it; clicks reach the model; the owner's camera (Chromium's fake camera)
 * goes to the video filter over the same peer (a renegotiation), and a watcher's is refused. Its
 * own file (its own process): this server runs node-datachannel, and the other WebRTC test files
 * load wrtc.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { BrowserRig, SCREENSHOTS as OUT, changedPixels, edgeBlockShare, framesAtLeast, pixels, rgbDistance, stats, type Picture } from './helpers/browser.ts';
import { sleep, startServer, type Harness } from './helpers/server.ts';

const MODEL = { size: 128, fps: 30 };
const rig = new BrowserRig();
// The fake camera for the camera tests (a green picture with a turning disc), granted without a prompt.
beforeAll(() => rig.launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']));
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());
const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.allSettled(harnesses.splice(0).map((h) => h.close()));
});

interface MediaWindow {
  framehost: { stats: { transport: string } };
}
const transport = (page: Page): Promise<string> => page.evaluate(() => (globalThis as unknown as MediaWindow).framehost.stats.transport);

function changedNear(a: Picture, b: Picture, cx: number, cy: number, r: number): number {
  let changed = 0;
  let total = 0;
  for (let y = cy - r; y <= cy + r; y++) {
    for (let x = cx - r; x <= cx + r; x++) {
      const i = (y * a.width + x) * 4;
      total++;
      if (rgbDistance(a.data, i, b.data, i) > 60) changed++;
    }
  }
  return changed / total;
}

describe('the encode-once sender in Chromium', { timeout: 90_000 }, () => {
  it('Start negotiates with the room; the canvas shows changing, non-blank frames; a click changes the picture near it', async () => {
    const h = await startServer({ modelOptions: MODEL }, { webrtc: { sender: 'room' } });
    harnesses.push(h);
    await h.rt.ready();
    const page = await rig.openPage(`${h.url}/`, 'idle');
    await page.click('#start');
    await expect.poll(() => page.textContent('#role'), { timeout: 15_000 }).toBe('owner');
    expect(await transport(page)).toBe('webrtc');
    await framesAtLeast(page, 30, 20_000);
    const a = await pixels(page);
    expect([a.width, a.height]).toEqual([MODEL.size, MODEL.size]);
    const colours = new Set<number>();
    for (let i = 0; i < a.data.length; i += 4) colours.add((a.data[i]! << 16) | (a.data[i + 1]! << 8) | a.data[i + 2]!);
    expect(colours.size, 'distinct colours').toBeGreaterThan(20);
    await framesAtLeast(page, (await stats(page)).frames + 30, 20_000);
    expect(changedPixels(a, await pixels(page), 30), 'pixels that changed between frames').toBeGreaterThan(50);
    await expect.poll(() => page.textContent('#media'), { timeout: 10_000 }).toMatch(/^WebRTC VP8 · [0-9.]+ Mbit\/s · rtt /);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/^framehost_webrtc_peers 1$/m);
    expect(metrics).toMatch(/^framehost_webrtc_peers_opened_total 1$/m);
    // Chromium's receiver reports reach the room: the owner's loss, a round trip, and the top rendition.
    const scrape = async () => (await fetch(`${h.url}/metrics`)).text();
    await expect.poll(scrape, { timeout: 10_000 }).toMatch(/^framehost_webrtc_rtt_seconds\{peer="[^"]+"\} 0\.0\d*$/m);
    const reported = await scrape();
    expect(reported).toMatch(/^framehost_webrtc_fraction_lost\{peer="[^"]+"\} 0$/m);
    expect(reported).toMatch(/^framehost_webrtc_peer_rendition\{peer="[^"]+",rendition="top"\} 1$/m);
    expect(reported).toMatch(/^framehost_webrtc_room_rendition_viewers\{rendition="low"\} 0$/m);

    await page.click('#controls button:text-is("clear")');
    await expect.poll(async () => changedPixels(await pixels(page), await pixels(page), 60), { timeout: 10_000 }).toBe(0);
    await framesAtLeast(page, (await stats(page)).frames + 10, 20_000);
    const cleared = await pixels(page);
    const view = page.locator('#view');
    const box = (await view.boundingBox())!;
    await view.click({ position: { x: (32.5 * box.width) / MODEL.size, y: (32.5 * box.height) / MODEL.size } });
    await expect.poll(async () => changedNear(cleared, await pixels(page), 32, 32, 4), { timeout: 10_000 }).toBeGreaterThan(0.5);
    expect(changedNear(cleared, await pixels(page), 96, 96, 8), 'far from the click').toBe(0);
    // The server never loaded libwebrtc.
    expect(Object.keys((await import('node:module')).createRequire(import.meta.url).cache).some((k) => k.includes('@roamhq/wrtc'))).toBe(false);
    await rig.expectNoPageErrors(page);
  });

  it("the owner's camera feeds the video filter over the room's peer (a renegotiation); the output follows the camera", async () => {
    const h = await startServer({ model: 'video-filter', modelOptions: {} }, { webrtc: { sender: 'room' } });
    harnesses.push(h);
    await h.rt.ready();
    const inputs = (): number => h.rt.status().session?.inputs ?? 0;
    const page = await rig.openPage(`${h.url}/`, 'idle');
    await page.click('#start');
    await expect.poll(() => page.textContent('#role'), { timeout: 15_000 }).toBe('owner');
    await framesAtLeast(page, 5, 20_000);
    expect(await transport(page)).toBe('webrtc');
    const peerIdOf = (): Promise<string> =>
      page.evaluate(() => (globalThis as unknown as { framehost: { media: { view(): { peerId: string } | null } } }).framehost.media.view()?.peerId ?? '');
    const peer = await peerIdOf();
    // Before the camera: the filtered test pattern, edges in every 32×32 block.
    expect(edgeBlockShare(await pixels(page)), 'blocks with edges, test pattern').toBeGreaterThan(0.9);
    await page.selectOption('#camera-via', 'webrtc');
    const base0 = { frames: (await stats(page)).frames, t: performance.now() };
    await sleep(1_000);
    const baseline = ((await stats(page)).frames - base0.frames) / ((performance.now() - base0.t) / 1000);
    // The picture keeps coming while the peer is renegotiated in place (no new peer, no new keyframe wait).
    const before = { frames: (await stats(page)).frames, t: performance.now() };
    await page.click('#camera-toggle');
    await expect.poll(() => page.textContent('#messages'), { timeout: 15_000 }).toContain('over WebRTC');
    expect(await page.textContent('#messages')).not.toContain('WebRTC refused');
    const during = { frames: (await stats(page)).frames - before.frames, ms: performance.now() - before.t };
    console.log(`renegotiation: ${during.frames} frames drawn in the ${during.ms.toFixed(0)} ms from the click to the camera's first send (${baseline.toFixed(1)} fps before)`);
    expect(during.frames, 'frames drawn while renegotiating').toBeGreaterThan(0);
    await expect.poll(inputs, { timeout: 15_000 }).toBeGreaterThanOrEqual(10);
    // The output follows the camera (flat green, one disc): most blocks have no edge.
    await expect.poll(async () => edgeBlockShare(await pixels(page)), { timeout: 10_000 }).toBeLessThan(0.75);
    await page.screenshot({ path: `${OUT}room-camera.png` });
    // Frames keep coming: at 15 fps, most of a second's frames are taken.
    const i0 = inputs();
    await sleep(1_000);
    expect(inputs() - i0, 'camera frames the server took in 1 s at 15 fps').toBeGreaterThanOrEqual(8);
    // The same peer was renegotiated, not replaced.
    expect(await peerIdOf()).toBe(peer);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/^framehost_webrtc_peers 1$/m);
    expect(metrics).toMatch(/^framehost_webrtc_peers_opened_total 1$/m);
    // Camera off: the server takes no more.
    await page.click('#camera-toggle');
    await expect.poll(() => page.textContent('#camera-toggle')).toBe('Camera on');
    await sleep(500); // frames on the wire
    const off = inputs();
    await sleep(700);
    expect(inputs()).toBe(off);
    // On again (a second renegotiation of the same peer): frames flow again.
    await page.click('#camera-toggle');
    await expect.poll(inputs, { timeout: 15_000 }).toBeGreaterThanOrEqual(off + 10);
    expect(await peerIdOf()).toBe(peer);
    await rig.expectNoPageErrors(page);
  });

  it("a watcher's camera over the room's peer is refused with not_owner, shown, and stops", async () => {
    const h = await startServer({ model: 'video-filter', modelOptions: {} }, { viewers: 'broadcast', webrtc: { sender: 'room' } });
    harnesses.push(h);
    await h.rt.ready();
    const owner = await rig.openPage(`${h.url}/`, 'idle');
    await owner.click('#start');
    await expect.poll(() => owner.textContent('#role'), { timeout: 15_000 }).toBe('owner');
    const watcher = await rig.openPage(`${h.url}/`, 'running');
    await watcher.click('#watch');
    await expect.poll(() => watcher.textContent('#role')).toBe('spectator');
    await framesAtLeast(watcher, 5, 20_000);
    expect(await transport(watcher)).toBe('webrtc');
    await watcher.selectOption('#camera-via', 'webrtc');
    await watcher.click('#camera-toggle');
    await expect.poll(() => watcher.textContent('#error'), { timeout: 15_000 }).toContain('not_owner');
    await expect.poll(() => watcher.textContent('#camera-toggle')).toBe('Camera on');
    expect(await watcher.textContent('#messages')).toContain('camera stopped: refused (not_owner)');
    await sleep(500);
    expect(h.rt.status().session?.inputs ?? 0, 'inputs the session took').toBe(0);
    expect(h.rt.phase()).toBe('running');
    expect(await owner.textContent('#error')).toBe('');
  });
});
