/**
 * The page's layout in real Chromium at a laptop's 1366×657, at 1024×768, a phone's 390×844 and
 * 1920×1080: Start, the state and the whole picture in view without scrolling (and on a laptop
 * every control); the picture using the space it has; no sideways scroll; no element moving when
 * the "another page took the stream" banner appears (their boxes compared); slider values from
 * the schema's defaults; the pointer hint only for models that take x/y; errors on their line
 * under the buttons until the next success; the superseded owner's one-click take-back.
 * Screenshots of each size go to docs/ with FRAMEHOST_UPDATE_DOCS=1 (the laptop's is docs/page.png,
 * the README's picture; the others docs/page-WxH.png), to test-output/browser/ always.
 */
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_SIZES, BrowserRig, SCREENSHOTS as OUT, framesAtLeast, startSession, stats } from './helpers/browser.ts';
import { sleep } from './helpers/server.ts';

const rig = new BrowserRig();
beforeAll(() => rig.launch());
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());

const SIZES = PAGE_SIZES;

interface Box {
  readonly id: string;
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
}

/** Boxes of what must be in view: the bar's buttons, the state line, the error line, the picture, every control. */
async function boxes(page: Page): Promise<Box[]> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: { querySelectorAll(q: string): ArrayLike<{ id: string; tagName: string; getBoundingClientRect(): Box; textContent: string | null }> } }).document;
    const wanted = doc.querySelectorAll('#start, #stop, #watch, #encoding, #fullscreen, #state, #role, #fps, #seq, #error, #view, #media, #controls input, #controls select, #controls button, #controls output');
    return Array.from(wanted, (el, i) => {
      const r = el.getBoundingClientRect();
      return { id: el.id || `${el.tagName.toLowerCase()}#${i}`, left: r.left, top: r.top, right: r.right, bottom: r.bottom };
    });
  });
}

const scrollWidth = (page: Page): Promise<{ scroll: number; inner: number }> =>
  page.evaluate(() => {
    const w = globalThis as unknown as { innerWidth: number; document: { documentElement: { scrollWidth: number } } };
    return { scroll: w.document.documentElement.scrollWidth, inner: w.innerWidth };
  });

const outside = (all: Box[], size: { width: number; height: number }): Box[] => all.filter((b) => b.bottom > size.height || b.right > size.width || b.top < 0 || b.left < 0);

/** The laptop's picture, and one per size, into docs/ when asked (FRAMEHOST_UPDATE_DOCS=1). */
function toDocs(path: string, size: { width: number; height: number }): void {
  if (process.env.FRAMEHOST_UPDATE_DOCS !== '1') return;
  // The laptop's is the README's picture, docs/page.png; the others are linked beside it.
  const name = size.width === 1366 ? 'page.png' : `page-${size.width}x${size.height}.png`;
  copyFileSync(path, fileURLToPath(new URL(`../docs/${name}`, import.meta.url)));
}

describe('the page layout', () => {
  it('at 1366×657, 1024×768, 390×844 and 1920×1080: Start, the state and the whole picture in view, the picture using its space, nothing moved by the banner', { timeout: 150_000 }, async () => {
    const h = await rig.server({ modelOptions: { size: 256, fps: 30 } });
    for (const size of SIZES) {
      const page = await rig.openPage(`${h.url}/`, 'idle', size);
      await startSession(page);
      await sleep(2200); // two whole seconds of frames: the fps shown is the real rate
      const path = `${OUT}layout-${size.width}x${size.height}.png`;
      await page.screenshot({ path });
      toDocs(path, size);

      const { scroll, inner } = await scrollWidth(page);
      expect(scroll, `document width at ${size.width} px`).toBeLessThanOrEqual(inner);
      const before = await boxes(page);
      const inView = size.width > 720 ? before : before.filter((b) => !b.id.includes('#')); // a phone scrolls to the controls only
      expect(inView.length).toBeGreaterThan(size.width > 720 ? 15 : 10);
      expect(outside(inView, size), `outside ${size.width}×${size.height}`).toEqual([]);
      // The picture uses the space: at least 80% of the window's shorter free side (height less the bars, or the phone's width).
      const view = before.find((b) => b.id === 'view')!;
      const side = Math.min(view.right - view.left, view.bottom - view.top);
      const room = size.width > 720 ? size.height - 130 : size.width - 16;
      expect(side, `picture side at ${size.width}×${size.height}`).toBeGreaterThanOrEqual(0.8 * room);

      // Another page takes the stream: the owner's banner appears over the picture, nothing moves.
      const watcher = await rig.openPage(`${h.url}/`, 'running', { width: 800, height: 600 });
      await watcher.selectOption('#encoding', 'raw');
      await watcher.click('#watch');
      await expect.poll(() => page.isVisible('#banner')).toBe(true);
      expect(await page.textContent('#banner')).toContain('Another page took the stream: the session is still yours');
      expect(await boxes(page), 'element boxes after the banner appeared').toEqual(before);
      await page.screenshot({ path: `${OUT}layout-${size.width}x${size.height}-banner.png` });
      await watcher.close();

      await page.click('#stop');
      await expect.poll(() => page.textContent('#state')).toBe('idle');
      await rig.expectNoPageErrors(page);
    }
  });

  it('shows the picture full screen, and reaches the controls and the picture from the keyboard', { timeout: 60_000 }, async () => {
    const h = await rig.server({ modelOptions: { size: 128, fps: 30 } });
    const page = await rig.openPage(`${h.url}/`, 'idle', SIZES[0]);
    await startSession(page);
    // Tab order: the buttons first (Start is disabled while the session runs, so Stop comes first).
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement.id)).toBe('stop');
    // The focused picture: arrows move the target, Enter stamps there (centre of 128², one step right).
    await page.focus('#view');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    await expect.poll(() => h.rt.status().session?.controls.stamp).toEqual({ x: 68, y: 64, radius: 8 });

    await page.click('#fullscreen');
    await expect.poll(() => page.evaluate(() => (globalThis as unknown as { document: { fullscreenElement: { id: string } | null } }).document.fullscreenElement?.id)).toBe('stage');
    const screen = page.viewportSize()!;
    await expect.poll(async () => (await page.locator('#view').boundingBox())!.height).toBeGreaterThanOrEqual(Math.min(screen.width, screen.height) - 1);
    await page.screenshot({ path: `${OUT}layout-fullscreen.png` });
    await page.keyboard.press('Escape');
    await rig.expectNoPageErrors(page);
  });

  it('shows slider values from the schema defaults, the pointer hint only where it applies, commands disabled with a reason, and errors next to the buttons until the next success', { timeout: 60_000 }, async () => {
    const h = await rig.server({ modelOptions: { size: 64, fps: 30 } });
    const page = await rig.openPage(`${h.url}/`, 'idle', SIZES[0]);
    // gray-scott's rates: feed 0.0545 and kill 0.062, the rates a session starts with.
    const rates = page.locator('#controls fieldset', { hasText: 'rates' });
    expect(await rates.locator('output').allTextContents()).toEqual(['0.0545', '0.062']);
    expect(await rates.locator('input[type=range]').evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value))).toEqual(['0.0545', '0.062']);
    expect(await page.isVisible('#pointer-hint')).toBe(true); // stamp takes x and y

    // Without a session the commands are disabled, and say why on hover.
    const clear = page.locator('#controls button:has-text("clear")');
    expect(await clear.isDisabled()).toBe(true);
    expect(await page.locator('#controls fieldset', { hasText: 'clear' }).getAttribute('title')).toBe('No session runs: press Start');
    // An error, in view on its line under the buttons: a stale control the server refuses.
    await clear.evaluate((b) => {
      const button = b as unknown as { disabled: boolean; click(): void };
      button.disabled = false;
      button.click();
    });
    await expect.poll(() => page.textContent('#error')).toMatch(/^clear: .*session/);
    const error = (await page.locator('#error').boundingBox())!;
    const start = (await page.locator('#start').boundingBox())!;
    expect(error.y + error.height).toBeLessThanOrEqual(SIZES[0].height);
    expect(error.y - (start.y + start.height)).toBeLessThan(80);
    await page.screenshot({ path: `${OUT}layout-error.png` });
    // The next request that succeeds clears it.
    await startSession(page);
    expect(await page.textContent('#error')).toBe('');
    // A slider's read-out follows it (the session's owner may move it now).
    await rates.locator('input[type=range]').first().fill('0.03');
    expect(await rates.locator('output').first().textContent()).toBe('0.03');
    await page.click('#controls button:has-text("clear")');
    await sleep(200);
    expect(await page.textContent('#error')).toBe('');
    await rig.expectNoPageErrors(page);

    // A model without x/y commands: no pointer hint.
    const filter = await rig.server({ model: 'video-filter' });
    const other = await rig.openPage(`${filter.url}/`, 'idle', SIZES[0]);
    expect(await other.isVisible('#pointer-hint')).toBe(false);
    await rig.expectNoPageErrors(other);
  });

  it('tells an owner whose stream was taken, and takes it back in one click', { timeout: 60_000 }, async () => {
    const h = await rig.server({ modelOptions: { size: 64, fps: 30 } });
    const owner = await rig.openPage(`${h.url}/`, 'idle', SIZES[0]);
    await startSession(owner);
    expect(await owner.isVisible('#banner')).toBe(false);
    const watcher = await rig.openPage(`${h.url}/`, 'running', SIZES[1]);
    await watcher.click('#watch');
    await framesAtLeast(watcher, 3);

    await expect.poll(() => owner.isVisible('#banner')).toBe(true);
    expect(await owner.textContent('#banner')).toContain('Another page took the stream: the session is still yours');
    const banner = (await owner.locator('#banner').boundingBox())!;
    expect(banner.y + banner.height).toBeLessThanOrEqual(SIZES[0].height);
    await owner.screenshot({ path: `${OUT}layout-superseded.png` });

    const before = (await stats(owner)).frames;
    await owner.click('#take-back');
    await framesAtLeast(owner, before + 5);
    expect(await owner.isVisible('#banner')).toBe(false);
    expect(await owner.textContent('#role')).toBe('owner');
    await expect.poll(() => watcher.isVisible('#banner')).toBe(true); // now the watcher was superseded
    expect(await watcher.textContent('#role')).toBe('nobody');
    await rig.expectNoPageErrors(owner);
  });
});
