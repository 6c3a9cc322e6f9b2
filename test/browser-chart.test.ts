/**
 * The node server's `/chart` in a real Chromium: the runtime chart drawn from its definition,
 * its active states (every region) lit from the runtime's real snapshot as a real Socket.IO
 * client starts a session, leaves it orphaned and comes back, and the last events listed.
 * And `/chart/events` read by a plain HTTP client: behind the secret, a reader limit, pushes
 * coalesced even while a client sends commands as fast as its rate limit lets it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, SCREENSHOTS } from './helpers/browser.ts';
import { startServer, type Harness, sleep } from './helpers/server.ts';
import { openEvents, waitEvent, type Sse } from './helpers/sse.ts';
import { chartGraph } from '../src/machines/chart-graph.ts';
import { runtimeMachine } from '../src/machines/runtime.machine.ts';
import { CHART_EVENTS_KEPT, CHART_PUSH_MS, DEFAULT_CHART_STREAM, type ChartView } from '../src/transport/http/chart-sse.ts';

const SECRET = 'a-shared-secret-for-charts';
const RT = 'framehost.alive.lifecycle';

let browser: Browser;
beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface ChartDoc {
  querySelectorAll(s: string): ArrayLike<{ dataset: Record<string, string>; textContent: string | null }>;
}
/** The state ids the page shows lit in the drawn chart `chart`. */
const lit = (page: Page, chart: string): Promise<string[]> =>
  page.evaluate((c) => {
    const doc = (globalThis as unknown as { document: ChartDoc }).document;
    return Array.from(doc.querySelectorAll(`svg[data-chart="${c}"] g.state.active`), (g) => g.dataset.state!);
  }, chart);
/** The event types listed on the page, newest first. */
const listed = (page: Page): Promise<string[]> =>
  page.evaluate(() => {
    const doc = (globalThis as unknown as { document: ChartDoc }).document;
    return Array.from(doc.querySelectorAll('#events tbody tr'), (tr) => tr.dataset.type!);
  });

/** Poll an async check (the `until` helpers take a synchronous one). */
async function poll(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

async function litAs(page: Page, want: (ids: string[]) => boolean, what: string): Promise<string[]> {
  let last: string[] = [];
  await poll(what, async () => want((last = await lit(page, 'framehost')))).catch((err: Error) => {
    throw new Error(`${err.message} (lit: ${last.join(', ')})`);
  });
  return last;
}

describe('GET /chart in Chromium', () => {
  it('draws the runtime chart and lights its live states, watchdog and attended/orphaned included, and lists the last events', async () => {
    const h: Harness = await startServer({ limits: { orphanTimeoutMs: 60_000 } }, { authToken: SECRET });
    cleanups.push(() => h.close());
    await h.rt.ready();

    const errors: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    cleanups.push(() => page.close());
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const res = await page.goto(`${h.url}/chart?token=${SECRET}`);
    expect(res?.status()).toBe(200);

    // Every state of the machine's definition is drawn, and nothing else.
    const drawn = await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: ChartDoc }).document;
      return Array.from(doc.querySelectorAll('svg[data-chart="framehost"] [data-state]'), (g) => g.dataset.state!);
    });
    expect(drawn.sort()).toEqual(chartGraph(runtimeMachine).states.map((s) => s.id).sort());

    // Idle: the lifecycle and the watchdog region, both lit, from the real snapshot.
    let ids = await litAs(page, (x) => x.includes(`${RT}.idle`), 'idle lit');
    expect(ids).toContain('framehost.alive.watchdog.watching');
    expect(ids).toContain('framehost.alive');
    expect(ids.some((id) => id.includes('session'))).toBe(false);

    const owner = await h.client({ authToken: SECRET });
    const { token } = await owner.start();
    ids = await litAs(page, (x) => x.includes(`${RT}.session.running.attended`), 'running.attended lit');
    expect(ids).not.toContain(`${RT}.idle`);
    expect(ids).toContain(`${RT}.session.running`);
    expect(ids).toContain('framehost.alive.watchdog.watching');
    await poll('session.start listed', async () => (await listed(page)).includes('session.start'));
    expect(await listed(page)).toContain('worker.session.started');

    // The owner's connection goes: the session runs on, orphaned; the owner comes back with its token.
    owner.close();
    await litAs(page, (x) => x.includes(`${RT}.session.running.orphaned`), 'running.orphaned lit');
    expect((await listed(page))[0]).toBe('owner.left');
    const back = await h.client({ authToken: SECRET });
    await back.resume(token);
    await litAs(page, (x) => x.includes(`${RT}.session.running.attended`), 'attended again');
    await poll('owner.returned listed', async () => (await listed(page)).includes('owner.returned'));
    await page.screenshot({ path: join(SCREENSHOTS, 'chart-running.png'), fullPage: true });

    await back.stop();
    await litAs(page, (x) => x.includes(`${RT}.idle`), 'idle again');
    const view = await page.evaluate(() => (globalThis as unknown as { chartView: ChartView }).chartView);
    expect(view.events.length).toBeLessThanOrEqual(CHART_EVENTS_KEPT);
    expect(view.events.map((e) => e.type)).toContain('session.stop');
    for (const e of view.events) expect(Math.abs(Date.now() - e.t)).toBeLessThan(60_000);
    expect(errors).toEqual([]);
  }, 60_000);
});

describe('GET /chart/events', () => {
  it('is behind the secret, has a reader limit, and coalesces a command flood into bounded pushes', async () => {
    const h: Harness = await startServer({}, { authToken: SECRET, requestsPerSecond: 1000, requestBurst: 1000 });
    cleanups.push(() => h.close());
    await h.rt.ready();

    expect((await openEvents(`${h.url}/chart/events`)).status).toBe(401);
    expect((await openEvents(`${h.url}/chart/events?token=wrong`)).status).toBe(401);
    const readers: Sse[] = [];
    for (let i = 0; i < DEFAULT_CHART_STREAM.maxClients; i++) readers.push(await openEvents(`${h.url}/chart/events`, { authorization: `Bearer ${SECRET}` }));
    cleanups.push(() => readers.forEach((r) => r.close()));
    expect(readers.map((r) => r.status)).toEqual(readers.map(() => 200));
    const over = await openEvents(`${h.url}/chart/events?token=${SECRET}`);
    expect(over.status).toBe(503);

    const sse = readers[0]!;
    const hello = await waitEvent(sse, (e) => e.event === 'hello', 'hello');
    expect((hello.data.charts as Record<string, string[]>).framehost).toContain(`${RT}.idle`);

    const owner = await h.client({ authToken: SECRET });
    await owner.start();
    await waitEvent(sse, (e) => e.event === 'chart' && (e.data.charts as Record<string, string[]>).framehost!.includes(`${RT}.session.running.attended`), 'running.attended');

    // 600 commands as fast as the client can send them: each one is a chart event.
    const before = sse.events.length;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 600 }, (_, i) => owner.command('stamp', { x: i % 64, y: 7 })));
    await sleep(3 * CHART_PUSH_MS);
    const elapsed = Date.now() - t0;
    const pushes = sse.events.slice(before).filter((e) => e.event === 'chart');
    const listedCommands = pushes.reduce((n, p) => n + (p.data.events as { type: string }[]).filter((e) => e.type === 'session.command').length, 0);
    const skipped = pushes.reduce((n, p) => n + Number(p.data.skipped), 0);
    console.log(`[chart-sse] 600 commands in ${elapsed} ms → ${pushes.length} pushes, ${listedCommands} listed, ${skipped} counted as skipped`);
    // One push per CHART_PUSH_MS at most (and a few for timer slack), never one per event.
    expect(pushes.length).toBeLessThanOrEqual(Math.ceil(elapsed / CHART_PUSH_MS) + 2);
    for (const p of pushes) expect((p.data.events as unknown[]).length).toBeLessThanOrEqual(CHART_EVENTS_KEPT);
    // Every command is either listed or counted.
    expect(listedCommands + skipped).toBeGreaterThanOrEqual(600);
    // No data of the events, only their type and time: an owner id must not reach a chart page.
    expect(JSON.stringify(sse.events)).not.toContain('owner');
  }, 60_000);
});
