/**
 * Live inspection of the runtime chart with the Stately inspector (`--inspect`).
 *
 * What works offline: framehost sends XState's inspection stream (`@xstate.actor`,
 * `@xstate.event`, `@xstate.snapshot`: the chart's definition, every event, every snapshot)
 * as JSON over a WebSocket with `createWebSocketInspector`. By default it also starts the
 * local relay of `@statelyai/inspect/server` on 127.0.0.1, whose page embeds the hosted
 * Stately inspector UI: that page needs internet. Without internet, any WebSocket client
 * on the relay's port (or `--inspect-url ws://HOST:PORT` pointing at your own receiver) gets the
 * same messages. Frame-level traffic never enters the chart, so inspection costs a few
 * events per session, not per frame.
 */
import type { InspectionEvent } from 'xstate';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { createInspector } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';

export interface Inspection {
  readonly inspect: (event: InspectionEvent) => void;
  /** Where a person should look. */
  readonly describe: string;
  /**
   * Send what is still queued (the chart's final snapshot included), then close the socket and
   * the relay. Resolves once the receiver has the messages, or after `FLUSH_TIMEOUT_MS`.
   */
  stop(): Promise<void>;
}

export interface InspectionOptions {
  /** Where connection failures and recoveries are logged; silent without one. */
  readonly log?: Logger;
}

type Sendable = Parameters<Parameters<typeof createInspector>[0]['send']>[0];

/** How long `stop()` waits to flush to a receiver (a blackholed one must not hold shutdown). */
const FLUSH_TIMEOUT_MS = 2000;
const RETRY_MS = 5000;
const BACKLOG = 200;

/** One macrotask: @statelyai/inspect converts and sends each inspection event in a `setTimeout(0)`. */
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * A WebSocket sender that, unlike @statelyai/inspect 0.7.2's own adapter, stops for good on
 * `stop()` (its adapter retries every 5 s after an error and never cancels the retry, which
 * keeps a process alive forever when the receiver is down), flushes before it closes (a
 * `terminate()` dropped the final snapshot still in the socket's buffer), and says when the
 * receiver cannot be reached instead of looking as if it worked.
 */
class WebSocketSender {
  private ws: WebSocket | undefined;
  private open = false;
  private stopped = false;
  /** Whether the current outage was already logged (one warning per outage, not per retry). */
  private failing = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backlog: string[] = [];

  constructor(
    private readonly url: string,
    private readonly log: Logger | undefined,
  ) {}

  start(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.on('open', () => {
      this.open = true;
      if (this.failing) this.log?.info({ url: this.url }, `inspector: connected to ${this.url} after a failure`);
      else this.log?.info({ url: this.url }, `inspector: connected to ${this.url}`);
      this.failing = false;
      for (const line of this.backlog.splice(0)) ws.send(line);
    });
    ws.on('close', () => {
      this.open = false;
      if (!this.stopped) this.retry = setTimeout(() => this.start(), RETRY_MS).unref();
    });
    ws.on('error', (err) => {
      // 'close' follows and schedules the retry.
      if (this.stopped) return;
      if (!this.failing) this.log?.warn({ url: this.url, err: err.message }, `inspector: cannot reach ${this.url} (${err.message}); inspection events are held (the last ${BACKLOG}) and the connection retried every ${RETRY_MS / 1000} s`);
      else this.log?.debug({ url: this.url, err: err.message }, 'inspector: still unreachable');
      this.failing = true;
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    await nextMacrotask(); // the inspector's pending sends (the final snapshot) run first
    this.stopped = true;
    clearTimeout(this.retry);
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.CONNECTING) {
      // Still connecting: give it the flush timeout to open and take the backlog.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
        ws.once('open', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (ws.readyState !== WebSocket.OPEN) {
      if (this.backlog.length > 0) this.log?.warn({ url: this.url, events: this.backlog.length }, `inspector: ${this.backlog.length} inspection events not delivered (${this.url} unreachable)`);
      this.backlog.length = 0;
      ws.terminate();
      return;
    }
    // A close handshake goes out after the queued messages: once it completes, they were sent.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, FLUSH_TIMEOUT_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(1000, 'inspection stopped');
    });
  }

  send(event: Sendable): void {
    if (this.stopped) return;
    let line: string;
    try {
      line = JSON.stringify(event);
    } catch {
      return; // createInspector already made it JSON-safe; never let inspection break the runtime
    }
    if (this.open) this.ws!.send(line);
    else if (this.backlog.push(line) > BACKLOG) this.backlog.shift();
  }
}

/** `target`: a ws:// URL to send to, or a port for the local relay (default 8080). */
export function startInspection(target: string | number = 8080, options: InspectionOptions = {}): Inspection {
  const relay = typeof target === 'number' ? createInspectorServer({ port: target, autoOpen: false }) : undefined;
  const url = typeof target === 'number' ? `ws://127.0.0.1:${target}` : target;
  const sender = new WebSocketSender(url, options.log);
  const inspector = createInspector(sender);
  sender.start();
  // Where events go, not whether they arrive: the sender logs the connection or its failure.
  const describe = relay
    ? `Stately inspector relay on http://127.0.0.1:${target} (its page embeds stately.ai/inspect and needs internet; offline, read the JSON messages from ${url})`
    : `inspection events go to ${url}`;
  return {
    inspect: (event) => inspector.inspect.next?.(event),
    describe,
    async stop() {
      await sender.stop();
      relay?.stop();
    },
  };
}
