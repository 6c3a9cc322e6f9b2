/**
 * The demo page in a real headless Chromium (playwright-core) against a real server: the real
 * runtime, worker and ONNX Runtime behind it, the page bundled by esbuild on first request.
 * Chromium comes from the system (test/setup/system.ts makes sure it is there).
 *
 * Screenshots go to test-output/browser/ (gitignored) for a person to look at.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { sleep, type Harness } from './helpers/server.ts';
import {
  BrowserRig,
  SCREENSHOTS as OUT,
  changedPixels,
  colourKey,
  framesAtLeast,
  pixels,
  rgbDistance,
  startSession,
  stats,
  type PageWindow,
  type Picture,
} from './helpers/browser.ts';

/** Big enough to see and to find empty background in, slow enough for a software canvas. */
const MODEL = { size: 128, fps: 30 };

// ---- lifetime: one browser per file; a server and fresh contexts per test, always closed ----

const rig = new BrowserRig();
beforeAll(() => rig.launch());
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());

const server = (): Promise<Harness> => rig.server({ modelOptions: MODEL });

// ---- pixels ----

/** The most common colour (quantized, so JPEG noise still votes for one colour). */
function backgroundOf(pic: Picture): number[] {
  const votes = new Map<number, { n: number; at: number }>();
  for (let i = 0; i < pic.data.length; i += 4) {
    const key = colourKey(pic.data, i);
    const v = votes.get(key);
    if (v) v.n++;
    else votes.set(key, { n: 1, at: i });
  }
  const best = [...votes.values()].sort((x, y) => y.n - x.n)[0]!;
  return [pic.data[best.at]!, pic.data[best.at + 1]!, pic.data[best.at + 2]!];
}

/** Per pixel: does it differ from the background colour by more than `tolerance`? */
function foregroundMask(pic: Picture, tolerance: number): Uint8Array {
  const bg = backgroundOf(pic);
  const mask = new Uint8Array(pic.width * pic.height);
  for (let p = 0; p < mask.length; p++) mask[p] = rgbDistance(pic.data, p * 4, bg, 0) > tolerance ? 1 : 0;
  return mask;
}

/** Chebyshev distance of every pixel to the nearest foreground pixel, on the torus the world is. */
function distanceToForeground(pic: Picture, mask: Uint8Array): Int32Array {
  const { width: w, height: h } = pic;
  const dist = new Int32Array(w * h).fill(-1);
  let queue: number[] = [];
  for (let p = 0; p < mask.length; p++) if (mask[p]) (dist[p] = 0), queue.push(p);
  while (queue.length) {
    const next: number[] = [];
    for (const p of queue) {
      const x = p % w;
      const y = (p - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const q = (((y + dy + h) % h) * w) + ((x + dx + w) % w);
          if (dist[q] === -1) (dist[q] = dist[p]! + 1), next.push(q);
        }
      }
    }
    queue = next;
  }
  return dist;
}

/** Fraction of pixels in the box of half-size `r` around (cx, cy) that changed by more than `threshold`. */
function changedIn(a: Picture, b: Picture, cx: number, cy: number, r: number, threshold = 40): number {
  let changed = 0;
  let total = 0;
  for (let y = cy - r; y <= cy + r; y++) {
    for (let x = cx - r; x <= cx + r; x++) {
      const i = ((((y + a.height) % a.height) * a.width) + ((x + a.width) % a.width)) * 4;
      total++;
      if (rgbDistance(a.data, i, b.data, i) > threshold) changed++;
    }
  }
  return changed / total;
}

/** A live picture: the right size, not blank (background plus some pattern), and not one colour. */
function expectLivePicture(pic: Picture, tolerance: number): void {
  expect([pic.width, pic.height]).toEqual([MODEL.size, MODEL.size]);
  const mask = foregroundMask(pic, tolerance);
  const foreground = mask.reduce((s, v) => s + v, 0) / mask.length;
  expect(foreground, 'share of pixels that are not background').toBeGreaterThan(0.005);
  const first = pic.data.slice(0, 3);
  expect(pic.data.some((v, i) => i % 4 !== 3 && v !== first[i % 4]), 'all pixels one colour').toBe(true);
  // Opaque: the page writes alpha 255 for every pixel of every format.
  expect(pic.data.every((v, i) => i % 4 !== 3 || v === 255)).toBe(true);
}

/** Click the canvas at frame pixel (x, y), whatever its CSS size. */
async function clickFramePixel(page: Page, pic: Picture, x: number, y: number): Promise<void> {
  const view = page.locator('#view');
  await view.scrollIntoViewIfNeeded();
  const box = (await view.boundingBox())!;
  await view.click({ position: { x: ((x + 0.5) * box.width) / pic.width, y: ((y + 0.5) * box.height) / pic.height } });
}

describe('demo page in Chromium', { timeout: 60_000 }, () => {
  it('streams raw frames to the canvas, builds controls from the schema, and stamps where clicked', async () => {
    const h = await server();
    const page = await rig.openPage(`${h.url}/`, 'idle');
    // Controls generated from the command schema, the model's name in the header.
    expect(await page.locator('#controls legend').allTextContents()).toEqual(['stamp', 'preset', 'rates', 'palette', 'clear']);
    expect(await page.textContent('#model')).toContain('gray-scott');
    expect(await page.inputValue('#encoding')).toBe('webrtc'); // the default (test/browser-webrtc.test.ts); this test is about raw frames
    await page.selectOption('#encoding', 'raw');

    await startSession(page);

    // Early on the field is a few seeded spots on plain background. Find two points of that
    // background, far from any pattern and from each other: one to click, one as the control
    // that must stay unchanged (the field evolves by itself too).
    const before = await pixels(page);
    expectLivePicture(before, 12);
    const dist = distanceToForeground(before, foregroundMask(before, 12));
    const points = [...dist.keys()].sort((p, q) => dist[q]! - dist[p]!);
    const target = points[0]!;
    const tx = target % before.width;
    const ty = (target - tx) / before.width;
    const torus = (p: number, q: number): number => Math.min(Math.abs(p - q), before.width - Math.abs(p - q));
    const control = points.find((p) => {
      const x = p % before.width;
      const y = (p - x) / before.width;
      return Math.max(torus(x, tx), torus(y, ty)) > 30;
    })!;
    const cx = control % before.width;
    const cy = (control - cx) / before.width;
    expect(dist[target], `clear background around the click point (${tx}, ${ty})`).toBeGreaterThanOrEqual(14);
    expect(dist[control], `clear background around the control point (${cx}, ${cy})`).toBeGreaterThanOrEqual(10);

    await clickFramePixel(page, before, tx, ty);
    // The stamp (radius 8 by default) lands on the next frame; sample until it shows.
    let after = before;
    const deadline = Date.now() + 5_000;
    while (changedIn(before, after, tx, ty, 5) <= 0.8 && Date.now() < deadline) {
      await sleep(30);
      after = await pixels(page);
    }
    expect(changedIn(before, after, tx, ty, 5), `share of the 11×11 box around (${tx}, ${ty}) that changed`).toBeGreaterThan(0.8);
    expect(changedIn(before, after, cx, cy, 5), `share of the control box around (${cx}, ${cy}) that changed`).toBeLessThan(0.1);
    await page.screenshot({ path: `${OUT}raw-stamp.png` }); // the fresh stamp: a disk amid the seeded spots

    // Alive: two samples apart in time differ, and the frame counter grows.
    const f0 = (await stats(page)).frames;
    const a = await pixels(page);
    expectLivePicture(a, 12);
    await sleep(500);
    const b = await pixels(page);
    expectLivePicture(b, 12);
    expect(changedPixels(a, b, 10), 'pixels that changed in 500 ms').toBeGreaterThan(20);
    const f1 = (await stats(page)).frames;
    expect(f1).toBeGreaterThan(f0 + 5);
    await expect.poll(() => page.textContent('#fps'), { timeout: 3_000 }).not.toBe('0');
    await page.screenshot({ path: `${OUT}raw-running.png` });
    await rig.expectNoPageErrors(page);

    await page.click('#stop');
    await expect.poll(() => page.textContent('#state')).toBe('idle');
    await expect.poll(() => page.textContent('#role')).toBe('nobody');
    const stopped = (await stats(page)).frames;
    await sleep(300);
    expect((await stats(page)).frames).toBe(stopped);
    await rig.expectNoPageErrors(page);
  });

  it('renders JPEG frames when JPEG is chosen before Start', async () => {
    const h = await server();
    const page = await rig.openPage(`${h.url}/`, 'idle');
    await page.selectOption('#encoding', 'jpeg');
    await page.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      w.__formats = [];
      w.framehost!.client.onFrame((f) => w.__formats!.push(f.meta.format));
    });
    await page.click('#start');
    await expect.poll(() => page.textContent('#role')).toBe('owner');
    const f0 = await framesAtLeast(page, 5);
    const formats = await page.evaluate(() => (globalThis as unknown as PageWindow).__formats!);
    expect(formats.length).toBeGreaterThanOrEqual(5);
    expect(new Set(formats)).toEqual(new Set(['jpeg']));

    const a = await pixels(page);
    expectLivePicture(a, 40); // JPEG: noisy background, so a wider tolerance
    await sleep(500);
    const b = await pixels(page);
    expect(changedPixels(a, b, 30), 'pixels that changed in 500 ms').toBeGreaterThan(20);
    expect((await stats(page)).frames).toBeGreaterThan(f0 + 5);
    await page.screenshot({ path: `${OUT}jpeg.png` });
    await rig.expectNoPageErrors(page);
  });

  it('a second page that clicks Watch takes over the stream; the owner keeps control', async () => {
    const h = await server();
    const owner = await rig.openPage(`${h.url}/`, 'idle');
    await owner.click('#start');
    await expect.poll(() => owner.textContent('#role')).toBe('owner');
    await framesAtLeast(owner, 5);

    const watcher = await rig.openPage(`${h.url}/`, 'running');
    expect(await watcher.textContent('#role')).toBe('nobody');
    expect((await stats(watcher)).frames).toBe(0); // not a viewer until it asks
    await watcher.click('#watch');
    await expect.poll(() => watcher.textContent('#role')).toBe('spectator');
    const w0 = await framesAtLeast(watcher, 5);
    expectLivePicture(await pixels(watcher), 12);

    // The owner was told, and its stream stopped; it still owns the session.
    await expect.poll(() => owner.textContent('#messages')).toContain('stream detached: superseded');
    const o1 = (await stats(owner)).frames;
    await sleep(1_000);
    expect((await stats(owner)).frames, 'owner frames after the switch').toBe(o1);
    expect((await stats(watcher)).frames, 'watcher frames').toBeGreaterThan(w0 + 10);
    expect(await owner.textContent('#role')).toBe('owner');

    // The owner stops the session: the viewer sees it end.
    await owner.click('#stop');
    await expect.poll(() => watcher.textContent('#state')).toBe('idle');
    await expect.poll(() => watcher.textContent('#role')).toBe('nobody');
    expect(await watcher.textContent('#messages')).toContain('session ended: stopped');
    await watcher.screenshot({ path: `${OUT}watcher.png` });
    await rig.expectNoPageErrors(owner, watcher);
  });
});
