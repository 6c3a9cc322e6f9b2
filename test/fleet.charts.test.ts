/**
 * A fleet node's `/chart` in Chromium: the node chart drawn and lit beside the runtime's, from a
 * real `framehost serve --fleet` process while it serves a ride through a real gateway and Redis;
 * and the gateway's view of that node carries the runtime chart's own active states (the
 * watchdog, running.attended), not only what its phase stands for.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, SCREENSHOTS } from './helpers/browser.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { startFleet, until, type Fleet, type FleetNodeProcess } from './helpers/fleet.ts';
import type { ChartView } from '../src/transport/http/chart-sse.ts';

let redis: RedisServer;
let fleet: Fleet;
let node: FleetNodeProcess;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  redis = await startRedis();
  fleet = await startFleet(redis.url, { leaseMs: 1500, stallMs: 500 });
  node = await fleet.startNode().ready();
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.close();
  await redis?.stop();
});

const lit = (page: Page, chart: string): Promise<string[]> =>
  page.evaluate((c) => {
    const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ dataset: Record<string, string> }> } }).document;
    return Array.from(doc.querySelectorAll(`svg[data-chart="${c}"] g.state.active`), (g) => g.dataset.state!);
  }, chart);

describe('a fleet node: /chart and what the gateway shows of its runtime chart', () => {
  it('lights the node chart and the runtime chart live through a ride, and the gateway gets the runtime chart state ids', async () => {
    const errors: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    expect((await page.goto(`${node.url}/chart`))?.status()).toBe(200);
    expect(await page.locator('svg[data-chart="node"]').count()).toBe(1);
    expect(await page.locator('svg[data-chart="framehost"]').count()).toBe(1);
    await until('the node shown free, its lease none', async () => {
      const ids = await lit(page, 'node');
      return ids.includes('node.ride.free') && ids.includes('node.lease.none') && ids.includes('node.drain.open');
    });

    const ride = fleet.client();
    const s = await ride.session(10_000);
    expect(s.node).toBe(node.id);
    await until('serving with a live lease, the runtime running.attended', async () => {
      const n = await lit(page, 'node');
      const r = await lit(page, 'framehost');
      return n.includes('node.ride.serving') && n.includes('node.lease.active') && r.includes('framehost.alive.lifecycle.session.running.attended');
    });
    const view = await page.evaluate(() => (globalThis as unknown as { chartView: ChartView }).chartView);
    const nodeEvents = view.events.filter((e) => e.chart === 'node').map((e) => e.type);
    expect(nodeEvents).toContain('session.began');
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet-node-chart.png'), fullPage: true });

    // Item 2: the gateway's record of the node has the runtime chart's own states, every region.
    const shown = await until('the gateway shows the runtime running.attended with its watchdog', async () => {
      const h = await fleet.gateway.health();
      const n = h.nodes?.list.find((x) => x.id === node.id);
      return n && n.runtimeChart.includes('framehost.alive.lifecycle.session.running.attended') ? n.runtimeChart : undefined;
    }, 5000);
    expect(shown).toContain('framehost.alive.watchdog.watching');

    await ride.stop();
    await until('the node free again', async () => (await lit(page, 'node')).includes('node.ride.free'), 10_000);
    expect(errors).toEqual([]);
  }, 60_000);
});
