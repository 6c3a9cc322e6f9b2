/** A real framehost server on 127.0.0.1:0 and real socket.io clients, for transport tests. */
import { FramehostClient, type ClientFrame, type ClientOptions } from '../../src/client/client.ts';
import { listen, type FramehostHttpServer } from '../../src/transport/server.ts';
import type { TransportOptions } from '../../src/transport/options.ts';
import type { Runtime, RuntimeOptions } from '../../src/runtime/runtime.ts';
import { startRuntime, until } from './runtime.ts';

export interface Harness {
  readonly rt: Runtime;
  readonly server: FramehostHttpServer;
  readonly url: string;
  client(options?: ClientOptions): Promise<FramehostClient>;
  close(): Promise<void>;
}

/** The only ICE host address of every test's WebRTC peers (servers and Node viewers). */
export const LOOPBACK: readonly string[] = ['127.0.0.1'];

export async function startServer(runtime: RuntimeOptions = {}, transport: Partial<TransportOptions> = {}): Promise<Harness> {
  const rt = await startRuntime({ modelOptions: { size: 64, fps: 100 }, ...runtime });
  // WebRTC media stays on loopback too: the server offers only its 127.0.0.1 host candidates.
  const webrtc = { iceHostAddresses: LOOPBACK, ...transport.webrtc };
  const server = await listen(rt, { host: '127.0.0.1', port: 0, ...transport, webrtc });
  const clients: FramehostClient[] = [];
  return {
    rt,
    server,
    url: server.url,
    async client(options) {
      const c = await FramehostClient.connect(server.url, { reconnection: false, ...options });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await server.close();
      await rt.shutdown();
    },
  };
}

/** Record a client's frames (copied) from now on. */
export function recordFrames(client: FramehostClient): { frames: ClientFrame[]; stop(): void } {
  const frames: ClientFrame[] = [];
  const stop = client.onFrame((f) => frames.push({ meta: f.meta, data: f.data.slice() }));
  return { frames, stop };
}

export async function framesAtLeast(rec: { frames: ClientFrame[] }, n: number, ms = 10_000): Promise<ClientFrame[]> {
  await until(`${n} frames (have ${rec.frames.length})`, () => rec.frames.length >= n, ms);
  return rec.frames;
}

export function nextEvent<T>(client: FramehostClient, event: 'session:ended' | 'stream:detached' | 'state' | 'message' | 'command:failed', ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const off = client.on(event, ((payload: T) => {
      clearTimeout(timer);
      off();
      resolve(payload);
    }) as never);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
