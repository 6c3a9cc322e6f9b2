/**
 * Live inspection of the runtime chart with the Stately inspector (`--inspect`).
 *
 * What works offline: framehost sends XState's inspection stream (`@xstate.actor`,
 * `@xstate.event`, `@xstate.snapshot`: the chart's definition, every event, every snapshot)
 * as JSON over a WebSocket with `createWebSocketInspector`. By default it also starts the
 * local relay of `@statelyai/inspect/server` on 127.0.0.1, whose page embeds the hosted
 * Stately inspector UI: that page needs internet. Without internet, any WebSocket client
 * on the relay's port (or `--inspect ws://HOST:PORT` pointing at your own receiver) gets the
 * same messages. Frame-level traffic never enters the chart, so inspection costs a few
 * events per session, not per frame.
 */
import type { InspectionEvent } from 'xstate';
import { createWebSocketInspector } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';

export interface Inspection {
  readonly inspect: (event: InspectionEvent) => void;
  /** Where a person should look. */
  readonly describe: string;
  stop(): void;
}

/** `target`: a ws:// URL to send to, or a port for the local relay (default 8080). */
export function startInspection(target: string | number = 8080): Inspection {
  const relay = typeof target === 'number' ? createInspectorServer({ port: target, autoOpen: false }) : undefined;
  const url = typeof target === 'number' ? `ws://127.0.0.1:${target}` : target;
  const inspector = createWebSocketInspector({ url });
  const describe = relay
    ? `Stately inspector relay on http://127.0.0.1:${target} (its page embeds stately.ai/inspect and needs internet; offline, read the JSON messages from ${url})`
    : `inspection events sent to ${url}`;
  return {
    inspect: inspector.inspect as (event: InspectionEvent) => void,
    describe,
    stop() {
      inspector.stop();
      relay?.stop();
    },
  };
}
