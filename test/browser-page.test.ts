/**
 * The page keeps a ride and tells the truth, in a real Chromium against a real server (WebRTC,
 * the default), at the four sizes: a reload resumes control and picture within 2 s (at each); a network drop
 * (`context.setOffline`) shows "Reconnecting…" and resumes; a preset moves the rates' sliders and
 * hand-set rates clear the preset; a second tab sees the session's values, its role (nobody,
 * then spectator), disabled commands and the orphan countdown when the owner goes; the fps shown
 * equals the frames the video presented (±10%); no figure stays after Stop; a refused Start
 * leaves no WebRTC peer behind.
 */
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_SIZES, BrowserRig, framesAtLeast, startSession, stats } from './helpers/browser.ts';
import { sleep } from './helpers/server.ts';

const rig = new BrowserRig();
beforeAll(() => rig.launch());
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());

/** The four sizes: the reload test runs at each; the others take one each. */
const SIZES = PAGE_SIZES;
const [LAPTOP, TABLET, PHONE, DESKTOP] = SIZES;
const MODEL = { modelOptions: { size: 128, fps: 30 } };

interface PageGlobals {
  framehost: {
    stats: { firstFrameAt: number | null; transport: string; frames: number };
    media: { view(): { video: { requestVideoFrameCallback(fn: () => void): void } } | null };
  };
}

const peers = async (url: string): Promise<number> => Number(/^framehost_webrtc_peers (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? -1);
const sliders = (page: Page): Promise<string[]> => page.locator('#controls fieldset', { hasText: 'rates' }).locator('output').allTextContents();

describe('the page keeps the ride', { timeout: 90_000 }, () => {
  it('resumes control and picture within 2 s of a reload, and stops the session afterwards, at each size', async () => {
    const h = await rig.server(MODEL);
    for (const size of SIZES) {
      const page = await rig.openPage(`${h.url}/`, 'idle', size);
      await startSession(page);
      await page.reload();
      await page.waitForFunction(() => (globalThis as unknown as PageGlobals).framehost !== undefined);
      await expect.poll(() => page.textContent('#role'), { timeout: 10_000 }).toBe('owner');
      await framesAtLeast(page, 5);
      // performance.now() counts from the reload's navigation: control and picture back within 2 s.
      const firstFrameAt = await page.evaluate(() => (globalThis as unknown as PageGlobals).framehost.stats.firstFrameAt);
      expect(firstFrameAt, `ms from the reload to the first frame at ${size.width}×${size.height}`).toBeLessThan(2000);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).framehost.stats.transport)).toBe('webrtc');
      await page.click('#stop');
      await expect.poll(() => page.textContent('#state')).toBe('idle');
      expect(h.rt.status().lastEnd?.reason).toBe('stopped');
      await rig.expectNoPageErrors(page);
      await page.close();
    }
  });

  it('says "Reconnecting…" while the network is gone and takes the ride back when it returns (a phone)', async () => {
    const h = await rig.server(MODEL);
    const page = await rig.openPage(`${h.url}/`, 'idle', PHONE);
    await startSession(page);
    const socketId = (): Promise<string> => page.evaluate(() => (globalThis as unknown as { framehost: { client: { socket: { id: string } } } }).framehost.client.socket.id);
    const first = await socketId();
    await page.context().setOffline(true);
    await expect.poll(() => page.textContent('#notice')).toBe('Reconnecting…');
    expect(await page.isDisabled('#stop')).toBe(true);
    await sleep(1000);
    await page.context().setOffline(false);
    await expect.poll(() => page.isVisible('#notice'), { timeout: 15_000 }).toBe(false);
    await expect.poll(() => page.textContent('#role')).toBe('owner');
    await framesAtLeast(page, (await stats(page)).frames + 10);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).framehost.stats.transport)).toBe('webrtc');
    expect(await socketId(), 'a new connection, resumed with the tab\'s token').not.toBe(first);
    expect(h.rt.status().session?.ownerAway).toBe(false);
    await page.click('#stop');
    await expect.poll(() => page.textContent('#state')).toBe('idle');
    expect(h.rt.status().lastEnd?.reason).toBe('stopped');
  });
});

describe('one source of truth for the controls, roles made visible', { timeout: 90_000 }, () => {
  it('a preset moves the sliders; a second tab sees the values, its role, disabled commands, and the orphan countdown', async () => {
    const h = await rig.server({ ...MODEL, limits: { orphanTimeoutMs: 60_000 } });
    const owner = await rig.openPage(`${h.url}/`, 'idle', TABLET);
    await startSession(owner);
    await owner.locator('#controls fieldset', { hasText: 'preset' }).locator('select').selectOption('maze');
    await expect.poll(() => sliders(owner)).toEqual(['0.029', '0.057']);
    await owner.locator('#controls fieldset', { hasText: 'palette' }).locator('select').selectOption('neon');

    const tab = await owner.context().newPage(); // a second tab: its own sessionStorage, its own socket
    await tab.goto(`${h.url}/`);
    await expect.poll(() => tab.textContent('#state')).toBe('running');
    await expect.poll(() => sliders(tab)).toEqual(['0.029', '0.057']);
    expect(await tab.locator('#controls fieldset', { hasText: 'preset' }).locator('select').inputValue()).toBe('maze');
    expect(await tab.locator('#controls fieldset', { hasText: 'palette' }).locator('select').inputValue()).toBe('neon');
    expect(await tab.textContent('#role')).toBe('nobody');
    expect(await tab.textContent('#notice')).toBe('Someone else is playing. Watch shows it.');
    expect(await tab.isEnabled('#watch')).toBe(true);
    expect(await tab.isDisabled('#start')).toBe(true);
    expect(await tab.getAttribute('#start', 'title')).toBe('A session runs: Watch it, or wait for it to end');
    expect(await tab.locator('#controls button:has-text("send rates")').isDisabled()).toBe(true);

    // Rates by hand: the preset no longer describes the session, in both tabs.
    await owner.locator('#controls fieldset', { hasText: 'rates' }).locator('input[type=range]').first().fill('0.04');
    await owner.click('#controls button:has-text("send rates")');
    for (const page of [owner, tab]) {
      await expect.poll(() => page.locator('#controls fieldset', { hasText: 'preset' }).locator('select').inputValue()).toBe('');
      await expect.poll(() => sliders(page)).toEqual(['0.04', '0.057']);
    }

    await tab.selectOption('#encoding', 'raw');
    await tab.click('#watch');
    await expect.poll(() => tab.textContent('#role')).toBe('spectator');
    await framesAtLeast(tab, 5);
    expect(await tab.getAttribute('#controls fieldset >> nth=0', 'title')).toBe('Only the session’s owner may send commands (you are not)');

    // The owner goes: the spectator sees the countdown (60 s timeout; a few seconds tolerated for the wire).
    await owner.close();
    await expect.poll(() => tab.textContent('#notice'), { timeout: 10_000 }).toMatch(/^The owner is away: the session stops in \d+ s unless they come back\.$/);
    const left = Number(/in (\d+) s/.exec((await tab.textContent('#notice'))!)![1]);
    expect(left).toBeGreaterThan(50);
    expect(left).toBeLessThanOrEqual(60);
    await rig.expectNoPageErrors(tab);
  });
});

describe('honest figures', { timeout: 90_000 }, () => {
  it('shows the presented frame rate (±10%), clears every figure at Stop, and a refused Start leaves no peer', async () => {
    const h = await rig.server(MODEL);
    const page = await rig.openPage(`${h.url}/`, 'idle', DESKTOP);
    await startSession(page);
    await sleep(1500);
    // Our own count of the frames the video presents, beside the page's figure, over 4 s.
    await page.evaluate(() => {
      const g = globalThis as unknown as PageGlobals & { __presented: number };
      g.__presented = 0;
      const video = g.framehost.media.view()!.video;
      const count = (): void => {
        g.__presented++;
        video.requestVideoFrameCallback(count);
      };
      video.requestVideoFrameCallback(count);
    });
    const t0 = Date.now();
    const shown: number[] = [];
    for (let i = 0; i < 4; i++) {
      await sleep(1000);
      shown.push(Number(await page.textContent('#fps')));
    }
    const presented = await page.evaluate(() => (globalThis as unknown as { __presented: number }).__presented);
    const rate = (presented / (Date.now() - t0)) * 1000;
    const mean = shown.reduce((a, b) => a + b, 0) / shown.length;
    expect(rate, 'presented frames/s').toBeGreaterThan(10);
    expect(Math.abs(mean - rate), `shown ${shown.join(', ')} vs presented ${rate.toFixed(1)}/s`).toBeLessThanOrEqual(0.1 * rate);
    expect(await page.textContent('#media')).toMatch(/^WebRTC VP8 · \d+\.\d\d Mbit\/s · rtt /);

    // A second page's Start, refused (busy) even past the disabled button: no peer set up for it.
    const other = await rig.openPage(`${h.url}/`, 'running', LAPTOP);
    expect(await peers(h.url)).toBe(1);
    await other.locator('#start').evaluate((b) => {
      const button = b as unknown as { disabled: boolean; click(): void };
      button.disabled = false;
      button.click();
    });
    await expect.poll(() => other.textContent('#error')).toMatch(/^start: /);
    await sleep(500);
    expect(await peers(h.url), 'peers after a refused Start').toBe(1);

    await page.click('#stop');
    await expect.poll(() => page.textContent('#state')).toBe('idle');
    await sleep(1200); // a whole tick of the figures after the end
    expect(await Promise.all(['#fps', '#seq', '#dropped', '#media'].map((id) => page.textContent(id)))).toEqual(['-', '-', '-', '']);
    expect(await page.textContent('#role')).toBe('nobody');
    expect(await page.isDisabled('#watch')).toBe(true);
    await rig.expectNoPageErrors(page);
  });
});
