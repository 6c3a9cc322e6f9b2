/**
 * `serve --fleet --inspect-url`: the node's chart is inspected beside the runtime's. A real node
 * process sends XState's inspection stream to a plain `ws` server of ours while it serves a ride.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { BIN, FleetNodeProcess, startFleet, until, type Fleet } from './helpers/fleet.ts';

interface InspectMessage {
  readonly type: string;
  readonly name?: string;
  readonly sessionId?: string;
  readonly event?: { readonly type?: string };
  readonly snapshot?: { readonly value?: unknown };
}

let redis: RedisServer;
let fleet: Fleet;
let wss: WebSocketServer;
const messages: InspectMessage[] = [];

beforeAll(async () => {
  redis = await startRedis();
  fleet = await startFleet(redis.url, { leaseMs: 1500, stallMs: 500 });
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws) => ws.on('message', (data) => messages.push(JSON.parse(String(data)) as InspectMessage)));
}, 30_000);

afterAll(async () => {
  await fleet?.close();
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
  await redis?.stop();
});

describe('inspection of a fleet node', () => {
  it('sends the node chart (its definition, events and snapshots) beside the runtime chart', async () => {
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    const node = new FleetNodeProcess(
      [BIN, 'serve', '--fleet', '--port', '0', '--redis', redis.url, '--queue', fleet.queue, '--lease', '1500', '--stall-interval', '500', '--model-option', 'size=32', '--model-option', 'fps=30', '--threads', '1', '--log-level', 'info', '--inspect-url', url],
      { FRAMEHOST_FLEET_SECRET: fleet.secret },
    );
    fleet.nodes.push(node);
    await node.ready();
    const ride = fleet.client();
    await ride.session(10_000);
    await ride.stop();
    expect((await ride.ended(10_000)).reason).toBe('stopped');

    const chart = await until('the node chart announced', () => messages.find((m) => m.type === '@xstate.actor' && m.name === 'node'));
    expect(messages.some((m) => m.type === '@xstate.actor' && m.name === 'framehost')).toBe(true); // the runtime's, as before
    const mine = (): InspectMessage[] => messages.filter((m) => m.sessionId === chart.sessionId);
    await until('the ride through the node chart, to its completion', () => mine().some((m) => m.type === '@xstate.event' && m.event?.type === 'xstate.done.actor.complete'));
    const events = mine().filter((m) => m.type === '@xstate.event').map((m) => m.event?.type ?? '');
    expect(events).toEqual(expect.arrayContaining(['xstate.done.actor.connect', 'xstate.done.actor.take', 'session.began', 'session.finished', 'xstate.done.actor.complete']));
    const values = mine().filter((m) => m.type === '@xstate.snapshot').map((m) => JSON.stringify(m.snapshot?.value));
    for (const state of ['"registering"', '"reserved"', '"serving"', '"completing"', '"held"']) expect(values.some((v) => v.includes(state)), state).toBe(true);
  }, 60_000);
});
