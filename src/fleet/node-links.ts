/**
 * A fleet node's connections to Redis: the BullMQ worker it takes rides with (manual fetching,
 * its own lock renewal), the queue events that wake it when a ride is queued, and the plain
 * client it writes its registry entry with. Opened once the model is ready (the chart's
 * `connect`), closed once at the end; a job still held then is left to the stall check.
 */
import { QueueEvents, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { messageOf, withTimeout } from './deadline.ts';
import type { RideJobData, RideResult } from './events.ts';
import { connectionOf, registryKey, type NodeSettings } from './options.ts';
import { NodeRegistry, openRedis, type NodeEntry } from './registry.ts';

export type RideJob = Job<RideJobData, RideResult, string>;

/** The node's worker, queue events and registry client; null until opened. */
export class NodeLinks {
  private worker: Worker<RideJobData, RideResult, string> | null = null;
  private events: QueueEvents | null = null;
  private redis: Redis | null = null;
  private registry: NodeRegistry | null = null;

  constructor(
    private readonly s: Omit<NodeSettings, 'publicUrl'>,
    private readonly log: Logger,
  ) {}

  /** Whether open() has begun: the registry can be written (or tried). */
  get opened(): boolean {
    return this.registry !== null;
  }

  /**
   * Connect, and start BullMQ's stalled-job check (nodes run it: a dead node's job goes back to
   * the wait list). `wake`: a ride was queued or requeued (a free node takes it at once instead
   * of at its next poll). The clients exist from the first line on, so close() ends them even
   * while this still waits.
   */
  async open(wake: () => void): Promise<void> {
    const { s, log } = this;
    const connection = connectionOf(s.redisUrl);
    const worker = new Worker<RideJobData, RideResult, string>(s.queue, null, {
      connection,
      prefix: s.prefix,
      autorun: false, // manual fetching: this node decides when it takes a job
      concurrency: 1,
      name: s.nodeId,
      lockDuration: s.leaseMs,
      stalledInterval: s.stalledIntervalMs,
      maxStalledCount: s.maxStalledCount,
      skipLockRenewal: true, // renewed by this node itself, which is what lets it fence
    });
    this.worker = worker;
    worker.on('error', (err) => log.warn({ err: messageOf(err) }, 'fleet: worker error'));
    const events = new QueueEvents(s.queue, { connection, prefix: s.prefix });
    this.events = events;
    events.on('error', (err) => log.warn({ err: messageOf(err) }, 'fleet: queue events error'));
    events.on('waiting', wake);
    this.redis = openRedis(s.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: s.redisTimeoutMs });
    this.redis.on('error', (err) => log.debug({ err: messageOf(err) }, 'fleet: registry connection error'));
    this.registry = new NodeRegistry(this.redis, registryKey(s));
    await withTimeout(Promise.all([worker.waitUntilReady(), events.waitUntilReady()]), 30_000, 'connect to Redis');
    await worker.startStalledCheckTimer();
  }

  /** The next waiting job, locked with `token`, or none (never blocks: the chart decided to take). */
  nextJob(token: string): Promise<RideJob | undefined> {
    if (!this.worker) return Promise.reject(new Error('the node is not connected'));
    return this.worker.getNextJob(token, { block: false });
  }

  /** Write this node's registry entry (a no-op before open()). */
  async write(entry: NodeEntry): Promise<void> {
    await this.registry?.write(entry);
  }

  /** Mark the node gone in the registry (why), then end every connection. */
  async close(why: string): Promise<void> {
    await this.registry?.markGone(this.s.nodeId, why).catch(() => undefined);
    await Promise.allSettled([this.worker?.close(true), this.events?.close()]);
    this.redis?.disconnect();
  }
}
