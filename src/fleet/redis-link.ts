/**
 * Whether the gateway can reach Redis right now, and why not: what `/ready` answers with and
 * what a ride request is refused with at once (instead of after a Redis timeout).
 *
 * It watches an ioredis client's own connection events; ioredis reconnects by itself forever
 * (with backoff, at most every 2 s), so this only reports. BullMQ hands out its own clients only
 * once they have connected, so those count through `await`: the link is up once every awaited
 * start has resolved and every watched client is connected (they all talk to the same Redis, so
 * the gateway's own client stands for them after that).
 */
import type { Redis } from 'ioredis';
import { messageOf } from './deadline.ts';

export type LinkState = 'connecting' | 'up' | 'down';

export interface LinkStatus {
  readonly state: LinkState;
  /** Date.now() when the state began. */
  readonly since: number;
  /** Why the link is not up (the last connection error), for /ready and refusals. */
  readonly reason?: string;
}

/** The part of an ioredis client (or BullMQ's) this reads. */
type Watched = Pick<Redis, 'status' | 'on'>;

export class RedisLink {
  private state: LinkState = 'connecting';
  private since = Date.now();
  private lastError: string | undefined;
  private readonly clients: Watched[] = [];
  private pending = 0;
  private readonly listeners = new Set<(s: LinkStatus) => void>();

  /** Follow one more client (the gateway's registry client, BullMQ's queue and events clients). */
  watch(client: Watched): void {
    this.clients.push(client);
    client.on('ready', () => this.update());
    client.on('close', () => this.update());
    client.on('end', () => this.update());
    client.on('reconnecting', () => this.update());
    client.on('error', (err: unknown) => {
      this.lastError = messageOf(err) || (err as { code?: string }).code || 'connection error';
      this.update();
    });
    this.update();
  }

  /** The link is not up before `started` resolves (BullMQ's waitUntilReady). */
  await(started: Promise<unknown>): void {
    this.pending++;
    started.then(
      () => {
        this.pending--;
        this.update();
      },
      (err: unknown) => {
        this.lastError = messageOf(err);
        this.update();
      },
    );
  }

  private update(): void {
    const up = this.pending === 0 && this.clients.length > 0 && this.clients.every((c) => c.status === 'ready');
    const next: LinkState = up ? 'up' : this.state === 'connecting' ? 'connecting' : 'down';
    if (next === this.state) return;
    this.state = next;
    this.since = Date.now();
    if (up) this.lastError = undefined;
    const s = this.status();
    for (const fn of this.listeners) fn(s);
  }

  get up(): boolean {
    return this.state === 'up';
  }

  status(): LinkStatus {
    if (this.state === 'up') return { state: 'up', since: this.since };
    const what = this.state === 'connecting' ? 'not connected to Redis yet' : 'Redis connection lost';
    return { state: this.state, since: this.since, reason: this.lastError ? `${what}: ${this.lastError}` : what };
  }

  /** Called at every change of state; returns the unsubscribe. */
  onChange(fn: (s: LinkStatus) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
