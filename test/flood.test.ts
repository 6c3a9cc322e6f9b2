/**
 * Floods over the wire, against a real server on 127.0.0.1 with the real worker and ONNX Runtime:
 * (a) the session owner floods commands that are expensive in the worker (`slow`, 5 ms each):
 *     the rate limiter answers `rate_limited` on the main thread, so the model's frame rate during
 *     the flood stays close to the calm rate next to it (5 pairs of adjacent calm and flood
 *     phases, median ratio); without the limiter the worker would spend all its time in `slow`;
 * (b) a connection flood past `maxConnections`: a burst takes exactly the free slots, only the
 *     extra handshakes fail with `too_many_connections`, the owner's session runs on, and closed
 *     slots are reusable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { io as rawIo, type Socket } from 'socket.io-client';
import { SCRIPTED_MODEL, until } from './helpers/runtime.ts';
import { framesAtLeast, recordFrames, sleep, startServer, type Harness } from './helpers/server.ts';

const harnesses: Harness[] = [];
const raws: Socket[] = [];
afterEach(async () => {
  for (const s of raws.splice(0)) s.close();
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

type Ack = { ok: boolean; error?: { code: string } };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

describe('command flood', () => {
  it('answers a flooding client with rate_limited while the frame rate stays >= 0.7 of the calm rate next to it', async () => {
    const rps = 10;
    const h = await startServer({ model: SCRIPTED_MODEL }, { requestsPerSecond: rps, requestBurst: rps });
    harnesses.push(h);
    await h.rt.ready();
    const owner = await h.client();
    await owner.start();
    await until('frames', () => (h.rt.status().session?.frames ?? 0) > 20);
    const frames = (): number => h.rt.status().session!.frames;

    /** Keep `window` commands in flight from the owner until `ms` have passed; count the answers. */
    async function flood(ms: number, window = 48): Promise<{ sent: number; ok: number; limited: number; other: number }> {
      const counts = { sent: 0, ok: 0, limited: 0, other: 0 };
      const end = Date.now() + ms;
      const lane = async (): Promise<void> => {
        while (Date.now() < end) {
          counts.sent++;
          const r = (await owner.request('session:command', { name: 'slow', args: { ms: 5 } })) as Ack;
          if (r.ok) counts.ok++;
          else if (r.error?.code === 'rate_limited') counts.limited++;
          else counts.other++;
        }
      };
      await Promise.all(Array.from({ length: window }, lane));
      return counts;
    }

    await flood(600); // warm-up: the first flood pays for compiling the server's hot paths
    await sleep(300);
    const phaseMs = 600;
    const ratios: number[] = [];
    const floods: Awaited<ReturnType<typeof flood>>[] = [];
    for (let pair = 0; pair < 5; pair++) {
      let f0 = frames();
      let t0 = performance.now();
      await sleep(phaseMs);
      const calm = (frames() - f0) / (performance.now() - t0);
      f0 = frames();
      t0 = performance.now();
      const counts = await flood(phaseMs);
      const flooded = (frames() - f0) / (performance.now() - t0);
      floods.push(counts);
      expect(calm).toBeGreaterThan(0.05); // > 50 frames/s: there is a rate to compare with
      ratios.push(flooded / calm);
    }
    console.log(`[flood] commands: ${floods.map((c) => `${c.sent} sent/${c.ok} accepted/${c.limited} rate_limited`).join('; ')}; frame-rate ratios flood/calm ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`);
    for (const c of floods) {
      // A flood indeed, answered: every request got an answer, nearly all of them rate_limited.
      expect(c.sent).toBeGreaterThan(10 * rps);
      expect(c.ok + c.limited + c.other).toBe(c.sent);
      expect(c.other).toBe(0);
      expect(c.limited).toBeGreaterThan(0);
      // The bucket: a burst of `rps`, then `rps` per second.
      expect(c.ok).toBeLessThanOrEqual(rps + Math.ceil((rps * phaseMs) / 1000) + 2);
    }
    expect(median(ratios)).toBeGreaterThanOrEqual(0.7);
    expect(h.rt.phase()).toBe('running');
    await sleep(300); // let the bucket refill: the owner's stop is a request like any other
    await owner.stop();
  });
});

describe('connection flood', () => {
  function open(url: string): Promise<{ socket: Socket; outcome: string }> {
    const socket = rawIo(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    raws.push(socket);
    return new Promise((resolve) => {
      socket.once('connect', () => resolve({ socket, outcome: 'connected' }));
      socket.once('connect_error', (err: Error & { data?: { code?: string } }) => resolve({ socket, outcome: err.data?.code ?? `error: ${err.message}` }));
    });
  }
  const tally = (rs: { outcome: string }[]): Record<string, number> => {
    const t: Record<string, number> = {};
    for (const r of rs) t[r.outcome] = (t[r.outcome] ?? 0) + 1;
    return t;
  };

  it('refuses connections past maxConnections with too_many_connections, keeps the session, and accepts again once they close', async () => {
    const max = 20;
    const h = await startServer({ model: SCRIPTED_MODEL }, { maxConnections: max });
    harnesses.push(h);
    await h.rt.ready();
    const owner = await h.client();
    const rec = recordFrames(owner);
    const { sessionId } = await owner.start();
    await framesAtLeast(rec, 5);
    const engine = h.server.io.engine;

    // A burst of 30 at once with the owner connected: exactly the 19 free slots are taken, and
    // only the excess is refused with the code (a burst never locks out a legitimate user).
    const burst = await Promise.all(Array.from({ length: 30 }, () => open(h.url)));
    const t = tally(burst);
    expect(t).toEqual({ connected: max - 1, too_many_connections: 30 - (max - 1) });
    await until(`refused handshakes closed (engine has ${engine.clientsCount})`, () => engine.clientsCount === 1 + t.connected!);
    const framesBefore = rec.frames.length;

    // Fill up to exactly the limit, one by one; then everything past it is refused.
    const fill: { socket: Socket; outcome: string }[] = [];
    while (engine.clientsCount < max) fill.push(await open(h.url));
    expect(fill.every((r) => r.outcome === 'connected')).toBe(true);
    expect(h.server.io.sockets.sockets.size).toBe(max);
    const extra = await Promise.all(Array.from({ length: 10 }, () => open(h.url)));
    expect(tally(extra)).toEqual({ too_many_connections: 10 });
    await until('refused handshakes closed', () => engine.clientsCount === max);

    // The owner's session ran on through all this, and its owner still drives it.
    await framesAtLeast(rec, framesBefore + 10);
    expect(rec.frames.at(-1)!.meta.sessionId).toBe(sessionId);
    await expect(owner.command('note', { text: 'still here' })).resolves.toHaveProperty('requestId');
    expect(h.rt.status().session?.id).toBe(sessionId);
    const health = (await (await fetch(`${h.url}/health`)).json()) as { state: string };
    expect(health.state).toBe('running');

    // Close every socket but the owner's: their slots are free again, and the limit still holds.
    for (const r of [...burst, ...fill, ...extra]) r.socket.close();
    await until(`connections closed (engine has ${engine.clientsCount})`, () => engine.clientsCount === 1);
    const again: { socket: Socket; outcome: string }[] = [];
    for (let i = 0; i < max - 1; i++) again.push(await open(h.url));
    expect(tally(again)).toEqual({ connected: max - 1 });
    expect((await open(h.url)).outcome).toBe('too_many_connections');
    expect(h.rt.status().session?.id).toBe(sessionId);
    await owner.stop();
    await until('idle', () => h.rt.phase() === 'idle');
  });
});
