/**
 * The encode-once sender (`webrtc.sender: 'room'`, src/media/) behind the demo page, in a real
 * headless Chromium against a real server: the page negotiates as it always does, plays the
 * room's VP8 and draws it; clicks reach the model. Its own file (its own process): this server
 * runs node-datachannel, and the other WebRTC test files load wrtc.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { BrowserRig, changedPixels, framesAtLeast, pixels, rgbDistance, stats, type Picture } from './helpers/browser.ts';
import { startServer, type Harness } from './helpers/server.ts';

const MODEL = { size: 128, fps: 30 };
const rig = new BrowserRig();
beforeAll(() => rig.launch());
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
});
