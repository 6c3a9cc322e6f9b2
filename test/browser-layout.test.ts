/**
 * The page's layout in real Chromium at a laptop's 1366×657, at 1024×768 and at a phone's
 * 390×844: the buttons, the state line, the error line and every control generated from the
 * schema inside the window without scrolling (the phone: no sideways scroll); slider values
 * shown and starting at the schema's defaults; the pointer hint only for models that take x/y;
 * errors next to the buttons and gone after the next success; a superseded owner's banner and
 * its one-click take-back. Screenshots of each size go to test-output/browser/; with
 * FRAMEHOST_UPDATE_DOCS=1 the laptop one also becomes docs/page.png, the README's picture.
 */
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrowserRig, SCREENSHOTS as OUT, framesAtLeast, startSession, stats } from './helpers/browser.ts';
import { sleep } from './helpers/server.ts';

const rig = new BrowserRig();
beforeAll(() => rig.launch());
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());

const SIZES = [
  { width: 1366, height: 657 },
  { width: 1024, height: 768 },
  { width: 390, height: 844 },
] as const;

interface Box {
  readonly id: string;
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
}

/** Boxes of what must be in view: the bar's buttons, the state and role, the error line, every control. */
async function boxes(page: Page): Promise<Box[]> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: { querySelectorAll(q: string): ArrayLike<{ id: string; tagName: string; getBoundingClientRect(): Box; textContent: string | null }> } }).document;
    const wanted = doc.querySelectorAll('#start, #stop, #watch, #encoding, #state, #role, #fps, #error, #controls input, #controls select, #controls button, #controls output');
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

describe('the page layout', () => {
  it('keeps the buttons, the state, the errors and every control in view at 1366×657 and 1024×768; no sideways scroll at 390 px', { timeout: 90_000 }, async () => {
    const h = await rig.server({ modelOptions: { size: 256, fps: 30 } });
    for (const size of SIZES) {
      const page = await rig.openPage(`${h.url}/`, 'idle', size);
      await startSession(page);
      await sleep(1200); // a full second of frames: the fps counter shows the real rate in the picture
      const path = `${OUT}layout-${size.width}x${size.height}.png`;
      await page.screenshot({ path });
      if (size.width === 1366 && process.env.FRAMEHOST_UPDATE_DOCS === '1') copyFileSync(path, fileURLToPath(new URL('../docs/page.png', import.meta.url)));

      const { scroll, inner } = await scrollWidth(page);
      expect(scroll, `document width at ${size.width} px`).toBeLessThanOrEqual(inner);
      if (size.width >= 1024) {
        const all = await boxes(page);
        expect(all.length).toBeGreaterThan(10);
        const outside = all.filter((b) => b.id !== 'error' && (b.bottom > size.height || b.right > size.width || b.top < 0 || b.left < 0));
        expect(outside, `controls outside ${size.width}×${size.height}`).toEqual([]);
      }
      // The picture is on screen too (at least its top half).
      const view = (await page.locator('#view').boundingBox())!;
      expect(view.y + view.height / 2).toBeLessThanOrEqual(size.height);
      await page.click('#stop');
      await expect.poll(() => page.textContent('#state')).toBe('idle');
      await rig.expectNoPageErrors(page);
    }
  });

  it('shows slider values from the schema defaults, the pointer hint only where it applies, and errors next to the buttons until the next success', { timeout: 60_000 }, async () => {
    const h = await rig.server({ modelOptions: { size: 64, fps: 30 } });
    const page = await rig.openPage(`${h.url}/`, 'idle', SIZES[0]);
    // gray-scott's rates: feed 0.0545 and kill 0.062, the rates a session starts with.
    const rates = page.locator('#controls fieldset', { hasText: 'rates' });
    expect(await rates.locator('output').allTextContents()).toEqual(['0.0545', '0.062']);
    expect(await rates.locator('input[type=range]').evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value))).toEqual(['0.0545', '0.062']);
    await rates.locator('input[type=range]').first().fill('0.03');
    expect(await rates.locator('output').first().textContent()).toBe('0.03');
    expect(await page.isVisible('#pointer-hint')).toBe(true); // stamp takes x and y

    // An error, in view right under the buttons: a command without a session.
    await page.click('#controls button:has-text("clear")');
    await expect.poll(() => page.textContent('#error')).toMatch(/^clear: .*session/);
    const error = (await page.locator('#error').boundingBox())!;
    const start = (await page.locator('#start').boundingBox())!;
    expect(error.y + error.height).toBeLessThanOrEqual(SIZES[0].height);
    expect(error.y - (start.y + start.height)).toBeLessThan(80);
    await page.screenshot({ path: `${OUT}layout-error.png` });
    // The next request that succeeds clears it.
    await startSession(page);
    expect(await page.textContent('#error')).toBe('');
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
    expect(await watcher.textContent('#role')).toBe('none');
    await rig.expectNoPageErrors(owner);
  });
});
