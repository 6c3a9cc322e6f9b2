/**
 * What an operator sees, tried as one would: the gateway's live fleet page (`GET /`) in a real
 * Chromium, /health and /metrics, while a real fleet (redis-server, node processes) loses a
 * node to kill -9 and freezes another one past its lease.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { launchChromium, SCREENSHOTS } from './helpers/browser.ts';
import { chartGraph } from '../src/machines/chart-graph.ts';
import { nodeMachine } from '../src/machines/node.machine.ts';
import { rideMachine } from '../src/machines/ride.machine.ts';
import { runtimeMachine } from '../src/machines/runtime.machine.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { startFleet, until, type Fleet, type FleetNodeProcess } from './helpers/fleet.ts';
import type { FleetView } from '../src/fleet/page.ts';

const LEASE_MS = 1500;
const STALL_MS = 500;

let redis: RedisServer;
let fleet: Fleet;
let browser: Browser;

beforeAll(async () => {
  redis = await startRedis();
  fleet = await startFleet(redis.url, { leaseMs: LEASE_MS, stallMs: STALL_MS });
  await Promise.all([fleet.startNode(), fleet.startNode(), fleet.startNode()].map((n) => n.ready()));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.close();
  await redis?.stop();
});

/** The view the page last rendered (it keeps it as `window.fleetView`). */
const viewOf = (page: Page): Promise<FleetView | undefined> => page.evaluate(() => (globalThis as unknown as { fleetView?: FleetView }).fleetView);
/** The state a row of the page's node tables shows for `node`. */
const shown = (page: Page, table: 'nodes' | 'gone', node: string): Promise<string | null> =>
  page.evaluate(([t, n]) => {
    const doc = (globalThis as unknown as { document: { querySelector(s: string): { dataset: Record<string, string> } | null } }).document;
    return doc.querySelector(`#${t} tr[data-node="${n}"]`)?.dataset.state ?? null;
  }, [table, node] as const);

function metric(text: string, line: RegExp): number {
  const m = text.match(line);
  return m ? Number(m[1]) : NaN;
}

describe('fleet: what the operator sees', () => {
  it('the fleet page shows a kill -9 and a requeue within two seconds; /health and /metrics name the gone node, fences and the second wait', async () => {
    const errors: string[] = [];
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const res = await page.goto(fleet.gateway.url);
    expect(res?.status()).toBe(200);
    for (const n of fleet.nodes) await until(`${n.id} shown free`, async () => (await shown(page, 'nodes', n.id)) === 'free');

    const ride = fleet.client();
    const requeuedAt: number[] = [];
    ride.on('requeued', () => requeuedAt.push(Date.now()));
    const sessions: { node: string; sessionId: string }[] = [];
    ride.on('session', (x) => sessions.push({ node: x.node, sessionId: x.sessionId }));
    const first = await ride.session(10_000);
    await until('the ride shown riding, its node busy with a lease age', async () => {
      const v = await viewOf(page);
      const r = v?.rides.find((x) => x.jobId === first.jobId);
      const n = v?.nodes.find((x) => x.id === first.node);
      return r?.phase === 'riding' && n?.state === 'busy' && n.ride === first.jobId && n.leaseAgeMs !== null;
    });

    // kill -9: the page shows the node gone, with why, within 2 s of the requeue.
    const victim = fleet.nodes.find((n) => n.id === first.node)!;
    victim.child.kill();
    await until('requeued', () => requeuedAt.length > 0, LEASE_MS + 2 * STALL_MS + 3000);
    await until('the victim shown gone', async () => (await shown(page, 'gone', victim.id)) === 'gone', 2000);
    const seenGoneAt = Date.now();
    expect(seenGoneAt - requeuedAt[0]!).toBeLessThan(2000);
    expect(await shown(page, 'nodes', victim.id)).toBeNull();
    const v = (await viewOf(page))!;
    const gone = v.gone.find((g) => g.id === victim.id)!;
    expect(gone.why).toMatch(/requeued/);
    expect(gone.goneAt).toBeGreaterThanOrEqual(requeuedAt[0]! - 1000);
    expect(v.history.some((h) => h.kind === 'requeued' && h.jobId === first.jobId)).toBe(true);
    console.log(`[fleet.page] requeue told → the node shown gone on the page: ${seenGoneAt - requeuedAt[0]!} ms`);

    // The ride goes on elsewhere; its second wait is in the metrics.
    const second = await until('a session on another node', () => sessions[1], 10_000);
    expect(second.node).not.toBe(victim.id);
    const health = await fleet.gateway.health();
    expect(health.nodes?.goneList.map((g) => g.id)).toContain(victim.id);
    let text = await (await fetch(`${fleet.gateway.url}/metrics`)).text();
    expect(metric(text, /^framehost_fleet_nodes\{state="gone"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(metric(text, /^framehost_fleet_requeue_wait_seconds_count (\d+)$/m)).toBe(1);

    // Freeze the new node past its lease: it fences itself when it wakes, Redis refuses its
    // completion, and the gateway shows both, counted per node.
    const frozen: FleetNodeProcess = fleet.nodes.find((n) => n.id === second.node)!;
    frozen.child.signal('SIGSTOP');
    try {
      await until('requeued again', () => requeuedAt.length > 1, LEASE_MS + 2 * STALL_MS + 3000);
      await until('the frozen node shown gone', async () => (await shown(page, 'gone', frozen.id)) === 'gone', 2000);
      // The spare node takes the ride before the frozen one wakes: otherwise the woken node, free
      // again, could take the requeued ride itself and never be shown free below.
      const third = await until('the ride on the spare node', () => sessions[2], 10_000);
      expect(third.node).not.toBe(frozen.id);
    } finally {
      frozen.child.signal('SIGCONT');
    }
    await frozen.line('completion.rejected', (l) => l.fleet === 'completion.rejected');
    // Heard from again: live (free) on the page, its fence and refused completion counted.
    let lastSeen: unknown;
    await until('the woken node live again with its counts', async () => {
      const w = await viewOf(page);
      const n = w?.nodes.find((x) => x.id === frozen.id);
      lastSeen = { node: n, gone: w?.gone.find((g) => g.id === frozen.id), counts: w?.counts };
      return n?.state === 'free' && n.fences === 1 && n.refusedCompletions === 1 && w!.counts.fences >= 1;
    }, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}; the page last showed ${JSON.stringify(lastSeen)}`);
    });
    text = await (await fetch(`${fleet.gateway.url}/metrics`)).text();
    expect(metric(text, new RegExp(`^framehost_fleet_node_fences_total\\{node="${frozen.id}"\\} (\\d+)$`, 'm'))).toBe(1);
    expect(metric(text, new RegExp(`^framehost_fleet_node_refused_completions_total\\{node="${frozen.id}"\\} (\\d+)$`, 'm'))).toBe(1);
    await ride.stop();
    expect((await ride.ended()).reason).toBe('stopped');
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);
});

describe('fleet: the charts, drawn offline', () => {
  it('GET /charts draws the runtime, node and ride charts from their definitions (ELK layout) and highlights a live node and ride', async () => {
    const errors: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1600, height: 1400 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    expect((await page.goto(`${fleet.gateway.url}/charts`))?.status()).toBe(200);
    // Every state of each chart is drawn, each as a laid-out box of its own.
    const drawn = (chart: string): Promise<{ id: string; w: number; h: number }[]> =>
      page.evaluate((c) => {
        const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ dataset: Record<string, string>; querySelector(s: string): { getAttribute(a: string): string | null } | null }> } }).document;
        return Array.from(doc.querySelectorAll(`svg[data-chart="${c}"] [data-state]`)).map((g) => ({ id: g.dataset.state!, w: Number(g.querySelector('rect')?.getAttribute('width')), h: Number(g.querySelector('rect')?.getAttribute('height')) }));
      }, chart);
    for (const [name, machine] of [['framehost', runtimeMachine], ['node', nodeMachine], ['ride', rideMachine]] as const) {
      const boxes = await drawn(name);
      expect(boxes.map((b) => b.id).sort()).toEqual(chartGraph(machine).states.map((st) => st.id).sort());
      expect(boxes.every((b) => b.w > 0 && b.h > 0)).toBe(true);
    }
    const live = fleet.nodes.filter((n) => n.child.running);
    const ride = fleet.client();
    const session = await ride.session(10_000);
    expect(live.map((n) => n.id)).toContain(session.node);
    await until('the node listed', async () => (await page.locator(`#node-pick option[value="${session.node}"]`).count()) === 1);
    await page.selectOption('#node-pick', session.node);
    await page.selectOption('#ride-pick', session.jobId);
    const active = (chart: string, state: string): Promise<boolean> => page.locator(`svg[data-chart="${chart}"] [data-state="${state}"]`).evaluate((g) => (g as unknown as { classList: { contains(c: string): boolean } }).classList.contains('active'));
    await until('serving and riding highlighted', async () => (await active('node', 'node.ride.serving')) && (await active('ride', 'ride.ride.riding')) && (await active('node', 'node.lease.active.standing.held')) && (await active('framehost', 'framehost.alive.lifecycle.session.running')), 5000);
    expect(await active('node', 'node.ride.free')).toBe(false);
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet-charts.png'), fullPage: true });
    await ride.stop();
    expect((await ride.ended()).reason).toBe('stopped');
    await until('the node free again on its chart', async () => await active('node', 'node.ride.free'), 5000);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
