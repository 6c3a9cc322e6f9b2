/**
 * The gateway's connections to Redis: the BullMQ queue it adds rides to, the queue events it
 * follows them by, and the plain client for claims and the node registry. Each may be away at
 * start or later; `link` says whether they are up, and close() never waits on a Redis that is gone.
 */
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { fail } from '../errors.ts';
import { messageOf, withTimeout } from './deadline.ts';
import type { RideJobData, RideResult } from './events.ts';
import { connectionOf, registryKey, type GatewaySettings } from './options.ts';
import { RedisLink } from './redis-link.ts';
import { NodeRegistry, openRedis } from './registry.ts';

/** How long close() waits for Redis to take the QUITs before cutting the connections. */
const CLOSE_TIMEOUT_MS = 2_000;

/** The gateway's queue, queue events and registry client, and whether Redis answers them. */
export class GatewayLinks {
  readonly queue: Queue<RideJobData, RideResult, string>;
  readonly redis: Redis;
  readonly registry: NodeRegistry;
  readonly link = new RedisLink();
  /** Resolves once Redis has been reached (the gateway serves HTTP before that). */
  readonly connected: Promise<void>;
  /** Made once Redis has answered: BullMQ cannot close a QueueEvents that never connected. */
  private events: QueueEvents | null = null;
  private closing = false;

  /** `listen`: given the queue events once they exist (the rides follow the jobs by them). */
  constructor(
    private readonly s: GatewaySettings,
    private readonly log: Logger,
    listen: (events: QueueEvents) => void,
  ) {
    // BullMQ's own reconnect backoff grows to 20 s between tries; a gateway back from a Redis
    // outage should notice within a couple of seconds, like the ioredis default.
    const connection = { ...connectionOf(s.redisUrl), retryStrategy: (times: number) => Math.min(times * 100, 2000) };
    this.queue = new Queue<RideJobData, RideResult, string>(s.queue, { connection, prefix: s.prefix });
    this.queue.on('error', (err) => log.warn({ err: messageOf(err) }, 'gateway: queue connection error'));
    this.redis = openRedis(s.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: s.redisTimeoutMs });
    this.redis.on('error', (err) => log.debug({ err: messageOf(err) }, 'gateway: redis connection error'));
    this.registry = new NodeRegistry(this.redis, registryKey(s));
    this.link.watch(this.redis);
    this.link.await(this.queue.waitUntilReady());
    this.link.await(
      new Promise<void>((resolve, reject) => {
        this.redis.once('ready', () => {
          if (this.closing) return;
          this.events = new QueueEvents(s.queue, { connection, prefix: s.prefix });
          this.events.on('error', (err) => log.warn({ err: messageOf(err) }, 'gateway: queue events error'));
          listen(this.events);
          this.events.waitUntilReady().then(resolve, reject);
        });
      }),
    );
    this.connected = new Promise<void>((resolve) => {
      if (this.link.up) resolve();
      this.link.onChange((l) => {
        if (l.state === 'up') resolve();
      });
    });
    this.link.onChange((l) => {
      if (l.state === 'up') log.info({ redis: 'up' }, 'gateway: connected to Redis');
      else log.warn({ redis: l.state, reason: l.reason }, 'gateway: Redis unreachable; /ready answers 503 until it is back');
    });
  }

  /** A Redis call, bounded by the Redis timeout. */
  timed<T>(p: Promise<T>, what: string): Promise<T> {
    return withTimeout(p, this.s.redisTimeoutMs, what);
  }

  /** The refusal while Redis is away (at once, rather than after a Redis timeout), else null. */
  unreachable(): ReturnType<typeof fail> | null {
    return this.link.up ? null : fail('queue_unavailable', this.link.status().reason);
  }

  /** The gateway is closing: a Redis that answers from now on gets no queue events made. */
  stopOpening(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    // A graceful QUIT waits for a Redis that may be away: bounded, then the connections are cut.
    const { events, queue } = this;
    const graceful = Promise.allSettled([events?.close(), queue.close()]);
    await withTimeout(graceful, CLOSE_TIMEOUT_MS, 'close the queue connections').catch(async () => {
      this.log.warn('gateway: Redis did not answer the close; disconnecting');
      await withTimeout(Promise.allSettled([events?.disconnect(), queue.disconnect()]), CLOSE_TIMEOUT_MS, 'disconnect').catch(() => undefined);
    });
    this.redis.disconnect();
  }
}
