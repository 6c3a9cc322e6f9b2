/**
 * The gateway's Prometheus metrics (its own registry). Counters are per gateway replica:
 * Prometheus sums them across replicas. Node and queue gauges are read from Redis at scrape
 * time, so every replica reports the same fleet.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { NODE_STATES, type NodeEntry } from './registry.ts';

export interface FleetSnapshot {
  readonly nodes: readonly NodeEntry[];
  readonly waiting: number;
  readonly active: number;
  /** Registry entries that stopped heartbeating (dead nodes not yet pruned). */
  readonly gone: number;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  requested(): void;
  assigned(waitSeconds: number, reassignment: boolean): void;
  requeued(): void;
  ended(reason: string): void;
  riders(waiting: number, assigned: number): void;
  positionRead(seconds: number): void;
}

export function createGatewayMetrics(snapshot: () => Promise<FleetSnapshot>): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'framehost_gateway_process_' });
  new Gauge({
    name: 'framehost_fleet_nodes',
    help: 'Live fleet nodes by state (free, assigned, busy, draining), from the node registry',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const s = await snapshot();
      for (const state of NODE_STATES) this.set({ state }, s.nodes.filter((n) => n.state === state).length);
    },
  });
  new Gauge({
    name: 'framehost_fleet_queue_length',
    help: 'Ride requests waiting for a node (the whole queue)',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).waiting);
    },
  });
  new Gauge({
    name: 'framehost_fleet_active_rides',
    help: 'Ride requests held by a node (assigned or riding)',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).active);
    },
  });
  const requests = new Counter({ name: 'framehost_fleet_requests_total', help: 'Ride requests added to the queue by this gateway', registers: [registry] });
  const wait = new Histogram({
    name: 'framehost_fleet_wait_seconds',
    help: 'Time from a ride request to its first assignment',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
  });
  const assignments = new Counter({ name: 'framehost_fleet_assignments_total', help: 'Assignments forwarded to clients', registers: [registry] });
  const reassignments = new Counter({
    name: 'framehost_fleet_reassignments_total',
    help: 'Assignments of rides whose node had been lost (after a requeue)',
    registers: [registry],
  });
  const requeues = new Counter({ name: 'framehost_fleet_requeues_total', help: "Rides sent back to the queue because their node was lost (BullMQ 'stalled')", registers: [registry] });
  const ended = new Counter({ name: 'framehost_fleet_rides_ended_total', help: 'Rides ended, by reason', labelNames: ['reason'], registers: [registry] });
  const riders = new Gauge({ name: 'framehost_fleet_clients', help: "This gateway's clients with a ride, by state", labelNames: ['state'], registers: [registry] });
  const positions = new Histogram({
    name: 'framehost_fleet_position_read_seconds',
    help: 'Time to read the wait list and compute positions',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  return {
    registry,
    requested: () => requests.inc(),
    assigned(waitSeconds, reassignment) {
      assignments.inc();
      if (reassignment) reassignments.inc();
      else wait.observe(waitSeconds);
    },
    requeued: () => requeues.inc(),
    ended: (reason) => ended.inc({ reason }),
    riders(w, a) {
      riders.set({ state: 'waiting' }, w);
      riders.set({ state: 'assigned' }, a);
    },
    positionRead: (seconds) => positions.observe(seconds),
  };
}
