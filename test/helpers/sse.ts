/** A real HTTP client reading a server-sent event stream (`/events`, `/chart/events`), event by event. */
import { get, type IncomingMessage } from 'node:http';
import { until } from './runtime.ts';

export interface Sse {
  readonly status: number;
  readonly events: { event: string; data: Record<string, unknown> }[];
  readonly res: IncomingMessage;
  ended: boolean;
  close(): void;
}

export function openEvents(url: string, headers: Record<string, string> = {}): Promise<Sse> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers }, (res) => {
      const sse: Sse = { status: res.statusCode ?? 0, events: [], res, ended: false, close: () => req.destroy() };
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) sse.events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
      });
      res.on('close', () => (sse.ended = true));
      resolve(sse);
    });
    req.on('error', reject);
  });
}

export function waitEvent(sse: Sse, match: (e: Sse['events'][number]) => boolean, what: string, ms = 20_000) {
  return until(`${what} (have ${sse.events.map((e) => e.event).join(', ')})`, () => sse.events.find(match), ms);
}
