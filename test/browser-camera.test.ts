/**
 * The demo page's Camera section in a real headless Chromium, against a real server running the
 * built-in `video-filter` model: Chromium's fake camera (--use-fake-device-for-media-stream: a
 * green picture with a rotating disc and a clock; --use-fake-ui-for-media-stream grants it
 * without a prompt) goes through getUserMedia, the preview canvas and `client.publish`, into the
 * model's `camera` track, and comes back filtered on #view.
 *
 * Screenshots go to test-output/browser/ (gitignored): camera.png shows the camera's preview next
 * to its edges.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep, type Harness } from './helpers/server.ts';
import { BrowserRig, SCREENSHOTS as OUT, changedPixels, colourKey, pixels, rgbDistance, startSession, stats, edgeBlockShare, type Picture } from './helpers/browser.ts';

const SIZE = 256; // the video filter's picture and its camera track
/** The colours of the video filter's test pattern (src/models/video-filter/model.ts). */
const PATTERN_COLOURS = [
  [230, 180, 90],
  [40, 60, 140],
] as const;

// ---- lifetime: one browser per file; a server and fresh contexts per test, always closed ----

const rig = new BrowserRig();
beforeAll(() => rig.launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']));
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());

const filterServer = (): Promise<Harness> => rig.server({ model: 'video-filter', modelOptions: {} });
const serverInputs = (h: Harness): number => h.rt.status().session?.inputs ?? 0;

// ---- pixels ----

/** Share of pixels brighter than `level` (red channel: the edges come out grey). */
function brightShare(pic: Picture, level = 128): number {
  let n = 0;
  for (let i = 0; i < pic.data.length; i += 4) if (pic.data[i]! > level) n++;
  return n / (pic.width * pic.height);
}

/** Share of pixels within `tolerance` of one of the test pattern's two colours. */
function patternColourShare(pic: Picture, tolerance = 45): number {
  let n = 0;
  for (let i = 0; i < pic.data.length; i += 4) if (PATTERN_COLOURS.some((c) => rgbDistance(pic.data, i, c, 0) <= tolerance)) n++;
  return n / (pic.width * pic.height);
}

/**
 * Share of the pixels of `pic` whose colour is one of the common colours of `palette` (held by 20
 * pixels or more). Unlike a pixel-by-pixel comparison, it does not care where things are, so it
 * holds however far the output lags behind the preview.
 */
function paletteShare(pic: Picture, palette: Picture): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < palette.data.length; i += 4) counts.set(colourKey(palette.data, i), (counts.get(colourKey(palette.data, i)) ?? 0) + 1);
  let n = 0;
  for (let i = 0; i < pic.data.length; i += 4) if ((counts.get(colourKey(pic.data, i)) ?? 0) >= 20) n++;
  return n / (pic.width * pic.height);
}

/** Share of pixels of `a` within `tolerance` of the same pixel of `b`. */
function sameShare(a: Picture, b: Picture, tolerance = 40): number {
  return 1 - changedPixels(a, b, tolerance) / (a.width * a.height);
}

describe('demo page: the Camera section in Chromium', { timeout: 60_000 }, () => {
  it("sends the owner's camera to the model; the output follows the camera, not the test pattern", async () => {
    const h = await filterServer();
    const page = await rig.openPage(`${h.url}/`, 'idle');

    // The section is there for a model with an input track; idle, there is nothing to send to.
    expect(await page.isVisible('#camera')).toBe(true);
    expect(await page.isDisabled('#camera-toggle')).toBe(true);
    expect(await page.inputValue('#camera-fps')).toBe('15');
    expect(await page.locator('#camera-fps option').allTextContents()).toEqual(['5 fps', '10 fps', '15 fps', '30 fps']);
    expect(await page.textContent('#camera-info')).toBe('camera: 256×256 rgba');
    expect((await stats(page)).inputsSent).toBe(0);

    await startSession(page);
    expect(await page.isEnabled('#camera-toggle')).toBe(true);

    // Before the camera: the filtered test pattern, rings of edges all over the picture.
    const pattern = await pixels(page, 'view');
    expect([pattern.width, pattern.height]).toEqual([SIZE, SIZE]);
    expect(edgeBlockShare(pattern), 'blocks with edges, test pattern').toBeGreaterThan(0.9);
    expect(serverInputs(h)).toBe(0);

    await page.click('#camera-toggle');
    await expect.poll(() => page.textContent('#camera-toggle')).toBe('Camera off');
    // Frames go out, and the server takes them (the same count, give or take the ones in flight).
    await expect.poll(async () => (await stats(page)).inputsSent, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
    await expect.poll(() => serverInputs(h), { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
    const sent0 = (await stats(page)).inputsSent;
    const got0 = serverInputs(h);
    await sleep(1_000);
    const got1 = serverInputs(h); // before sent1: the page may send more meanwhile, never less
    const sent1 = (await stats(page)).inputsSent;
    expect(sent1 - sent0, 'frames sent in 1 s at 15 fps').toBeGreaterThanOrEqual(8);
    expect(sent1 - sent0).toBeLessThanOrEqual(20);
    expect(got1 - got0, 'frames the server took in 1 s (volatile: a busy socket may drop some)').toBeGreaterThanOrEqual(4);
    expect(got1).toBeLessThanOrEqual(sent1);
    expect(await page.textContent('#camera-sent')).toMatch(/^\d+$/);

    // The preview: the camera at the track's size, not blank.
    const preview = await pixels(page, 'camera-preview');
    expect([preview.width, preview.height]).toEqual([SIZE, SIZE]);
    expect(new Set(preview.data.filter((_, i) => i % 4 === 1)).size, 'distinct green levels in the preview').toBeGreaterThan(2);

    // The output: edges of the camera, alive, and unlike the pattern's.
    const a = await pixels(page, 'view');
    expect(brightShare(a), 'edge pixels').toBeGreaterThan(0.005);
    expect(brightShare(a), 'edge pixels').toBeLessThan(0.5);
    expect(edgeBlockShare(a), 'blocks with edges, camera').toBeLessThan(0.75);
    await sleep(700);
    const b = await pixels(page, 'view');
    expect(changedPixels(a, b, 30), 'output pixels that changed in 700 ms').toBeGreaterThan(50);
    expect(edgeBlockShare(b), 'blocks with edges, camera').toBeLessThan(0.75);
    await page.screenshot({ path: `${OUT}camera.png` });

    // Mode "original": the output is the picture we send: none of the test pattern's colours,
    // the camera's colours, and the same picture but for the disc turning and the clock ticking
    // between the frame we read and the preview (the output lags by a frame or more).
    await page.selectOption('#controls select', 'original');
    await expect.poll(async () => patternColourShare(await pixels(page, 'view')), { timeout: 5_000 }).toBeLessThan(0.05);
    await expect
      .poll(async () => paletteShare(await pixels(page, 'view'), await pixels(page, 'camera-preview')), { timeout: 5_000, interval: 50 })
      .toBeGreaterThan(0.9);
    await expect
      .poll(async () => sameShare(await pixels(page, 'view'), await pixels(page, 'camera-preview')), { timeout: 5_000, interval: 50 })
      .toBeGreaterThan(0.7);
    await page.screenshot({ path: `${OUT}camera-original.png` });

    // Camera off: nothing more is sent.
    await page.click('#camera-toggle');
    await expect.poll(() => page.textContent('#camera-toggle')).toBe('Camera on');
    await sleep(300); // frames already on the wire
    const off = (await stats(page)).inputsSent;
    const offServer = serverInputs(h);
    await sleep(700);
    expect((await stats(page)).inputsSent).toBe(off);
    expect(serverInputs(h)).toBe(offServer);
    await rig.expectNoPageErrors(page);

    // On again at 30 fps, then the session ends: sending stops by itself.
    await page.selectOption('#camera-fps', '30');
    await page.click('#camera-toggle');
    await expect.poll(async () => (await stats(page)).inputsSent, { timeout: 10_000 }).toBeGreaterThan(off + 15);
    await page.click('#stop');
    await expect.poll(() => page.textContent('#state')).toBe('idle');
    await expect.poll(() => page.textContent('#camera-toggle')).toBe('Camera on');
    expect(await page.isDisabled('#camera-toggle')).toBe(true);
    expect(await page.textContent('#messages')).toContain('camera stopped: the session ended');
    const ended = (await stats(page)).inputsSent;
    await sleep(500);
    expect((await stats(page)).inputsSent).toBe(ended);
    await rig.expectNoPageErrors(page);
  });

  it("a watcher's camera is refused with not_owner, shown, and stops", async () => {
    const h = await filterServer();
    const owner = await rig.openPage(`${h.url}/`, 'idle');
    await startSession(owner);

    const watcher = await rig.openPage(`${h.url}/`, 'running');
    await watcher.click('#watch');
    await expect.poll(() => watcher.textContent('#role')).toBe('spectator');
    await watcher.click('#camera-toggle');
    await expect.poll(() => watcher.textContent('#error'), { timeout: 10_000 }).toContain('not_owner');
    expect(await watcher.textContent('#error')).toContain('camera (camera)');
    await expect.poll(() => watcher.textContent('#camera-toggle')).toBe('Camera on');
    expect(await watcher.textContent('#messages')).toContain('camera stopped: refused (not_owner)');
    expect((await stats(watcher)).inputsSent).toBeGreaterThanOrEqual(1);
    const sent = (await stats(watcher)).inputsSent;
    await sleep(500);
    expect((await stats(watcher)).inputsSent).toBe(sent);
    expect(serverInputs(h), 'inputs the session took').toBe(0);
    expect(h.rt.phase()).toBe('running');
    expect(rig.pageErrors).toEqual([]);
    expect(await owner.textContent('#error')).toBe('');
  });
});
