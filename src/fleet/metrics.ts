/**
 * The gateway's Prometheus metrics (its own registry). Counters are per gateway replica:
 * Prometheus sums them across replicas. Node and queue gauges are read from Redis at scrape
 * time, so every replica reports the same fleet.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { NODE_STATES, type GoneNode, type NodeEntry } from './registry.ts';

export interface FleetSnapshot {
  readonly nodes: readonly NodeEntry[];
  readonly waiting: number;
  readonly active: number;
  /** Nodes found gone (no heartbeat, their ride requeued, or shut down), until pruned. */
  readonly gone: readonly GoneNode[];
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
  registerFleetCollectors(registry, snapshot);
  return new GatewayCounters(registry);
}

/** The fleet as Redis shows it, read at scrape time: nodes by state, the nodes' own counters, the queue. */
function registerFleetCollectors(registry: Registry, snapshot: () => Promise<FleetSnapshot>): void {
  new Gauge({
    name: 'framehost_fleet_nodes',
    help: 'Fleet nodes by state (free, assigned, busy, draining; gone: found gone and not yet pruned), from the node registry',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const s = await snapshot();
      for (const state of NODE_STATES) this.set({ state }, s.nodes.filter((n) => n.state === state).length);
      this.set({ state: 'gone' }, s.gone.length);
    },
  });
  // The nodes' own counters, re-exported per node (a node that restarts starts a new series at 0,
  // which Prometheus' rate() takes as a counter reset).
  const perNode = (name: string, help: string, value: (n: NodeEntry | GoneNode) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['node'],
      registers: [registry],
      async collect() {
        const s = await snapshot();
        this.reset();
        for (const n of [...s.nodes, ...s.gone]) this.inc({ node: n.id }, value(n));
      },
    });
  };
  perNode('framehost_fleet_node_fences_total', 'Times a node fenced itself (it could not prove its lease), as the node reports it', (n) => n.fences ?? 0);
  perNode('framehost_fleet_node_refused_completions_total', "A node's job completions that Redis refused (the lock was no longer its own)", (n) => n.refusedCompletions ?? 0);
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
}

const WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** What this gateway replica itself counts and times, in its registry. */
class GatewayCounters implements GatewayMetrics {
  private readonly requests: Counter;
  private readonly wait: Histogram;
  private readonly secondWait: Histogram;
  private readonly assignments: Counter;
  private readonly reassignments: Counter;
  private readonly requeues: Counter;
  private readonly endings: Counter<'reason'>;
  private readonly clients: Gauge<'state'>;
  private readonly positions: Histogram;

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'framehost_fleet_requests_total', help: 'Ride requests added to the queue by this gateway', registers });
    this.wait = new Histogram({ name: 'framehost_fleet_wait_seconds', help: 'Time from a ride request to its first assignment', buckets: WAIT_BUCKETS, registers });
    this.secondWait = new Histogram({
      name: 'framehost_fleet_requeue_wait_seconds',
      help: 'Time from a requeue (the node was lost) to the ride\'s next assignment: a requeued user\'s second wait',
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.assignments = new Counter({ name: 'framehost_fleet_assignments_total', help: 'Assignments forwarded to clients', registers });
    this.reassignments = new Counter({ name: 'framehost_fleet_reassignments_total', help: 'Assignments of rides whose node had been lost (after a requeue)', registers });
    this.requeues = new Counter({ name: 'framehost_fleet_requeues_total', help: "Rides sent back to the queue because their node was lost (BullMQ 'stalled')", registers });
    this.endings = new Counter({ name: 'framehost_fleet_rides_ended_total', help: 'Rides ended, by reason', labelNames: ['reason'], registers });
    this.clients = new Gauge({ name: 'framehost_fleet_clients', help: "This gateway's clients with a ride, by state", labelNames: ['state'], registers });
    this.positions = new Histogram({
      name: 'framehost_fleet_position_read_seconds',
      help: 'Time to read the wait list and compute positions',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    });
  }

  requested(): void {
    this.requests.inc();
  }

  assigned(waitSeconds: number, reassignment: boolean): void {
    this.assignments.inc();
    if (reassignment) {
      this.reassignments.inc();
      this.secondWait.observe(waitSeconds);
    } else this.wait.observe(waitSeconds);
  }

  requeued(): void {
    this.requeues.inc();
  }

  ended(reason: string): void {
    this.endings.inc({ reason });
  }

  riders(waiting: number, assigned: number): void {
    this.clients.set({ state: 'waiting' }, waiting);
    this.clients.set({ state: 'assigned' }, assigned);
  }

  positionRead(seconds: number): void {
    this.positions.observe(seconds);
  }
}
