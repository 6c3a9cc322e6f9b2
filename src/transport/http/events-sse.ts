/**
 * `GET /events`: the runtime's lifecycle as Server-Sent Events, for dashboards and tests.
 *
 * Events (each `event: NAME`, `id: N`, `data: JSON`): `hello` (the state at connect),
 * `state`, `session.began`, `session.ended`, `request.refused` (by code, fed by the transport:
 * the first refusal of a code at once, the rest of the same second as one event with a count,
 * so a flooding client cannot flood the readers), `worker.restarted`, `journal.written`. No
 * owner ids, tokens or addresses; session ids as the frame metadata has them. Missed events are
 * not replayed (`Last-Event-ID` is ignored): reconnect and read `hello`.
 *
 * Behind the `observe` right (an operator token, or the shared secret) when access is checked, a reader limit, and a reader that does not keep up is
 * disconnected, not buffered for (sse-readers.ts): the server's memory per reader stays bounded
 * whatever the reader does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Runtime } from '../../runtime/runtime.ts';
import type { ErrorCode } from '../../errors.ts';
import { SseReaders } from './sse-readers.ts';
import type { Access } from '../../auth/access.ts';

export interface EventStreamOptions {
  /** Who may read (src/auth/access.ts); everyone when unset. */
  readonly access?: Access;
  /** Concurrent readers; more are answered 503 (default 32). */
  readonly maxClients?: number;
  /** Bytes waiting in one reader's response (past the kernel's socket buffers) before it is dropped (default 256 KiB). */
  readonly maxBufferedBytes?: number;
  /** A comment line this often keeps proxies from closing an idle stream (default 15 s). */
  readonly keepAliveMs?: number;
}

const REFUSAL_WINDOW_MS = 1000;

export const DEFAULT_EVENT_STREAM = { maxClients: 32, maxBufferedBytes: 256 * 1024, keepAliveMs: 15_000 } as const;

/** The `/events` stream of one runtime: its readers, the event ids, and the refusals being coalesced. */
export class EventStream {
  private readonly audience: SseReaders;
  private nextId = 1;
  private workerStarts: number;
  private readonly subscription: { unsubscribe(): void };
  private readonly offs: readonly (() => void)[];
  /** Refusals by code, coalesced per second: `count` is how many the next event stands for. */
  private readonly windows = new Map<ErrorCode, { count: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly runtime: Runtime,
    options: EventStreamOptions,
    log: Logger,
  ) {
    this.audience = new SseReaders(
      {
        ...(options.access ? { access: options.access } : {}),
        maxClients: options.maxClients ?? DEFAULT_EVENT_STREAM.maxClients,
        maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_EVENT_STREAM.maxBufferedBytes,
        keepAliveMs: options.keepAliveMs ?? DEFAULT_EVENT_STREAM.keepAliveMs,
        name: 'events',
      },
      log,
    );
    this.workerStarts = runtime.status().workerStarts;
    this.subscription = runtime.actor.subscribe({
      next: (snapshot) => {
        if (snapshot.context.workerStarts <= this.workerStarts) return;
        this.workerStarts = snapshot.context.workerStarts;
        this.publish('worker.restarted', { workerStarts: this.workerStarts });
      },
      // Required: xstate rethrows an actor's error (killing the process) if any observer lacks an
      // error handler, even though the runtime's own observer handles and logs it.
      error: () => undefined,
    });
    this.offs = [
      runtime.on('phase', ({ phase, previous }) => this.publish('state', { state: phase, from: previous })),
      runtime.on('session.began', ({ id }) => this.publish('session.began', { sessionId: id })),
      runtime.on('session.finished', (e) =>
        this.publish('session.ended', { sessionId: e.sessionId, reason: e.reason, ...(e.error ? { error: e.error } : {}), frames: e.frames, dropped: e.dropped }),
      ),
      runtime.on('journal.written', (j) =>
        this.publish('journal.written', { sessionId: j.sessionId, file: j.path.split(/[\\/]/).pop(), bytes: j.bytes, truncated: j.truncated, failed: j.failed }),
      ),
    ];
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.audience.accept(req, res, () => {
      const s = this.runtime.status();
      return `event: hello\nid: ${this.nextId++}\ndata: ${JSON.stringify({ state: s.phase, model: s.model, workerStarts: s.workerStarts, sessionsStarted: s.sessionsStarted })}\n\n`;
    });
  }

  /** Send an event of another part of the server (its data: JSON, no secrets) to every reader. */
  publish(event: string, data: unknown): void {
    if (this.audience.size() === 0) return;
    this.audience.broadcast(`event: ${event}\nid: ${this.nextId++}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** A request was refused with this code (the transport calls this for every refusal). */
  refused(code: ErrorCode): void {
    const open = this.windows.get(code);
    if (open) return void open.count++;
    this.publish('request.refused', { code, count: 1 });
    const timer = setTimeout(() => {
      const done = this.windows.get(code);
      this.windows.delete(code);
      if (done && done.count > 0) this.publish('request.refused', { code, count: done.count });
    }, REFUSAL_WINDOW_MS);
    timer.unref();
    this.windows.set(code, { count: 0, timer });
  }

  readers(): number {
    return this.audience.size();
  }

  /** End every stream and stop listening to the runtime (before the HTTP server closes). */
  close(): void {
    for (const w of this.windows.values()) clearTimeout(w.timer);
    this.windows.clear();
    this.subscription.unsubscribe();
    for (const off of this.offs) off();
    this.audience.close();
  }
}
