/**
 * The scaffolding the browser tests share: the system Chromium (test/setup/system.ts makes sure
 * it is there) launched through playwright-core, a rig that owns the browser, the servers and the
 * browser contexts of a test and collects every page's errors, the demo page's globals as
 * `page.evaluate` callbacks see them, and reading a canvas's pixels.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { RuntimeOptions } from '../../src/runtime/runtime.ts';
import type { TransportOptions } from '../../src/transport/options.ts';
import { CHROMIUM } from '../setup/system.ts';
import { startServer, type Harness } from './server.ts';

/** Screenshots, for a person to look at (gitignored). */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-output/browser/', import.meta.url));

/** Flags for a headless Chromium in a container, quiet on the network. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

// ---- the page's globals, as the callbacks passed to page.evaluate see them (no DOM lib here) ----

export interface PageStats {
  frames: number;
  fps: number;
  seq: number;
  dropped: number;
  inputsSent: number;
  role: string;
}
export interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
}
export interface PageWindow {
  document: { getElementById(id: string): PageCanvas | null };
  framehost?: {
    stats: PageStats;
    client: { onFrame(fn: (f: { meta: { format: string; width: number; height: number } }) => void): () => void };
  };
  __formats?: string[];
  btoa(data: string): string;
}

// ---- lifetime: one browser per file; servers and fresh contexts per test, always closed ----

/**
 * One browser for a test file, and what each test opens on it. Call `launch` in beforeAll,
 * `closeContexts` in afterEach and `close` in afterAll.
 */
/** The four viewports the page is held to: a laptop, a tablet, a phone and a desktop. */
export const PAGE_SIZES = [
  { width: 1366, height: 657 },
  { width: 1024, height: 768 },
  { width: 390, height: 844 },
  { width: 1920, height: 1080 },
] as const;

export class BrowserRig {
  /** Uncaught errors, console errors and HTTP errors of every page, per test. */
  pageErrors: string[] = [];
  private browser: Browser | undefined;
  private readonly contexts: BrowserContext[] = [];
  private readonly harnesses: Harness[] = [];

  async launch(extraArgs: readonly string[] = []): Promise<void> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    this.browser = await launchChromium(extraArgs);
  }

  /** A real server (runtime, worker, transport), closed after the test. */
  async server(runtime: RuntimeOptions, transport: Partial<TransportOptions> = {}): Promise<Harness> {
    const h = await startServer(runtime, transport);
    this.harnesses.push(h);
    await h.rt.ready();
    return h;
  }

  /** A browser context of its own (own cookies, own storage), closed after the test. */
  async newContext(viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
    const context = await this.browser!.newContext({ viewport });
    this.contexts.push(context);
    return context;
  }

  /** A page in its own browser context (own cookies, own socket), connected and showing `state`. */
  async openPage(url: string, state: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
    const page = await this.blankPage(viewport);
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    await page.waitForFunction(() => (globalThis as unknown as PageWindow).framehost !== undefined);
    await expect.poll(() => page.textContent('#state'), { timeout: 10_000 }).toBe(state);
    return page;
  }

  /** A page in its own browser context, its errors collected, showing nothing yet. */
  async blankPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
    const page = await (await this.newContext(viewport)).newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => this.pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') this.pageErrors.push(`console: ${msg.text()} (${msg.location().url})`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) this.pageErrors.push(`http ${r.status()}: ${r.url()}`);
    });
    return page;
  }

  /** After each test: forget its errors, close its contexts, then its servers. */
  async closeContexts(): Promise<void> {
    this.pageErrors = [];
    await Promise.allSettled(this.contexts.splice(0).map((c) => c.close()));
    await Promise.allSettled(this.harnesses.splice(0).map((h) => h.close()));
  }

  async close(): Promise<void> {
    await this.browser?.close();
  }

  /** No page errors so far, and no error shown on any of `pages`. */
  async expectNoPageErrors(...pages: Page[]): Promise<void> {
    expect(this.pageErrors).toEqual([]);
    for (const page of pages) expect(await page.textContent('#error')).toBe('');
  }
}

export const stats = (page: Page): Promise<PageStats> => page.evaluate(() => ({ ...(globalThis as unknown as PageWindow).framehost!.stats }));

export async function framesAtLeast(page: Page, n: number, ms = 15_000): Promise<number> {
  await expect.poll(async () => (await stats(page)).frames, { timeout: ms, interval: 50 }).toBeGreaterThanOrEqual(n);
  return (await stats(page)).frames;
}

/** Start a session from the page: it owns it, runs it, and shows frames. */
export async function startSession(page: Page): Promise<void> {
  await page.click('#start');
  await expect.poll(() => page.textContent('#role')).toBe('owner');
  await expect.poll(() => page.textContent('#state')).toBe('running');
  await framesAtLeast(page, 5);
}

// ---- pixels ----

export interface Picture {
  readonly width: number;
  readonly height: number;
  /** RGBA, 4 bytes a pixel, row by row. */
  readonly data: Uint8Array;
}

/** A canvas's pixels, as base64 across the boundary: an array of 262,144 numbers takes seconds. */
export async function pixels(page: Page, id: 'view' | 'camera-preview' = 'view'): Promise<Picture> {
  const pic = await page.evaluate((canvasId) => {
    const w = globalThis as unknown as PageWindow;
    const canvas = w.document.getElementById(canvasId)!;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let binary = '';
    for (let i = 0; i < data.length; i += 0x8000) binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return { width: canvas.width, height: canvas.height, base64: w.btoa(binary) };
  }, id);
  return { width: pic.width, height: pic.height, data: new Uint8Array(Buffer.from(pic.base64, 'base64')) };
}

/** Sum of absolute RGB differences between two pixels. */
export const rgbDistance = (a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number): number =>
  Math.abs(a[i]! - b[j]!) + Math.abs(a[i + 1]! - b[j + 1]!) + Math.abs(a[i + 2]! - b[j + 2]!);

/** How many pixels differ between `a` and `b` by more than `threshold`. */
export function changedPixels(a: Picture, b: Picture, threshold: number): number {
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) if (rgbDistance(a.data, i, b.data, i) > threshold) n++;
  return n;
}

/** Colour key, 5 bits a channel (so JPEG noise still counts as one colour). */
export const colourKey = (d: ArrayLike<number>, i: number): number => ((d[i]! >> 3) << 10) | ((d[i + 1]! >> 3) << 5) | (d[i + 2]! >> 3);

/**
 * Share of 32×32 blocks holding at least one bright (edge) pixel. The test pattern's rings are 16
 * pixels apart and fill the picture, so its edges reach every block; the fake camera's flat
 * green with one disc and a clock leaves most blocks empty.
 */
export function edgeBlockShare(pic: Picture, block = 32): number {
  let hit = 0;
  let total = 0;
  for (let by = 0; by < pic.height; by += block) {
    for (let bx = 0; bx < pic.width; bx += block) {
      total++;
      let found = false;
      for (let y = by; y < by + block && !found; y++) for (let x = bx; x < bx + block && !found; x++) found = pic.data[(y * pic.width + x) * 4]! > 128;
      if (found) hit++;
    }
  }
  return hit / total;
}
