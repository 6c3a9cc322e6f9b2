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
import { WebSocket } from 'ws';
import { createInspector } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';

export interface Inspection {
  readonly inspect: (event: InspectionEvent) => void;
  /** Where a person should look. */
  readonly describe: string;
  stop(): void;
}

type Sendable = Parameters<Parameters<typeof createInspector>[0]['send']>[0];

/**
 * A WebSocket sender that, unlike @statelyai/inspect 0.7.2's own adapter, stops for good on
 * `stop()`: its adapter retries every 5 s after an error and never cancels the retry, which
 * keeps a process alive forever when the receiver is down.
 */
class WebSocketSender {
  private ws: WebSocket | undefined;
  private open = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backlog: string[] = [];

  constructor(private readonly url: string) {}

  start(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.on('open', () => {
      this.open = true;
      for (const line of this.backlog.splice(0)) ws.send(line);
    });
    ws.on('close', () => {
      this.open = false;
      if (!this.stopped) this.retry = setTimeout(() => this.start(), 5000).unref();
    });
    ws.on('error', () => undefined); // 'close' follows and schedules the retry
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.ws?.terminate();
  }

  send(event: Sendable): void {
    let line: string;
    try {
      line = JSON.stringify(event);
    } catch {
      return; // createInspector already made it JSON-safe; never let inspection break the runtime
    }
    if (this.open) this.ws!.send(line);
    else if (this.backlog.push(line) > 200) this.backlog.shift();
  }
}

/** `target`: a ws:// URL to send to, or a port for the local relay (default 8080). */
export function startInspection(target: string | number = 8080): Inspection {
  const relay = typeof target === 'number' ? createInspectorServer({ port: target, autoOpen: false }) : undefined;
  const url = typeof target === 'number' ? `ws://127.0.0.1:${target}` : target;
  const sender = new WebSocketSender(url);
  const inspector = createInspector(sender);
  sender.start();
  const describe = relay
    ? `Stately inspector relay on http://127.0.0.1:${target} (its page embeds stately.ai/inspect and needs internet; offline, read the JSON messages from ${url})`
    : `inspection events sent to ${url}`;
  return {
    inspect: (event) => inspector.inspect.next?.(event),
    describe,
    stop() {
      inspector.stop();
      sender.stop();
      relay?.stop();
    },
  };
}
