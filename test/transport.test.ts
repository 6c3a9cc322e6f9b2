/**
 * The Socket.IO transport over loopback: a real server on 127.0.0.1:0, real socket.io clients,
 * the real runtime and ONNX Runtime behind them.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { io as rawIo, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { FramehostClient } from '../src/client/client.ts';
import { FramehostError } from '../src/errors.ts';
import { listen } from '../src/transport/server.ts';
import { SCRIPTED_MODEL, until } from './helpers/runtime.ts';
import { framesAtLeast, nextEvent, recordFrames, sleep, startServer, type Harness } from './helpers/server.ts';

const harnesses: Harness[] = [];
async function server(...args: Parameters<typeof startServer>): Promise<Harness> {
  const h = await startServer(...args);
  harnesses.push(h);
  await h.rt.ready();
  return h;
}
const raws: Socket[] = [];
afterEach(async () => {
  for (const s of raws.splice(0)) s.close();
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

const metricsText = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();
const connectionsGauge = (metrics: string): number => Number(/^framehost_connections (\d+)/m.exec(metrics)?.[1] ?? NaN);

function refusal(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'accepted',
    (err: unknown) => (err instanceof FramehostError ? err.code : `unexpected ${String(err)}`),
  );
}

describe('session lifecycle over Socket.IO', () => {
  it('starts, streams frames with metadata, takes commands, stops with a reason', async () => {
    const h = await server();
    const a = await h.client();
    const caps = await a.capabilities();
    expect(caps.model.name).toBe('gray-scott');
    expect(caps.commands.stamp?.args).toMatchObject({ type: 'object', required: ['x', 'y'] });
    expect(caps.state).toBe('idle');
    const states: string[] = [];
    a.on('state', ({ state }) => states.push(state));
    const rec = recordFrames(a);
    const { sessionId, token } = await a.start();
    expect(token.length).toBeGreaterThanOrEqual(24);
    const frames = await framesAtLeast(rec, 5);
    const { meta, data } = frames[0]!;
    expect(meta).toMatchObject({ sessionId, width: 64, height: 64, format: 'rgba', count: 1 });
    expect(data.byteLength).toBe(64 * 64 * 4);
    expect(frames.map((f) => f.meta.seq)).toEqual([...frames.map((f) => f.meta.seq)].sort((x, y) => x - y));
    expect(Date.now() - meta.t).toBeLessThan(10_000);
    await expect(a.command('stamp', { x: 5, y: 5 })).resolves.toHaveProperty('requestId');
    const ended = nextEvent<{ sessionId: string; reason: string }>(a, 'session:ended');
    await a.stop();
    expect(await ended).toMatchObject({ sessionId, reason: 'stopped' });
    await until('idle', () => states.includes('idle'));
    expect(states).toEqual(expect.arrayContaining(['starting', 'running', 'stopping', 'cleanup', 'idle']));
  });

  it('refuses a second start with busy and leaves the running session alone', async () => {
    const h = await server();
    const a = await h.client();
    const b = await h.client();
    const rec = recordFrames(a);
    const { sessionId } = await a.start();
    await framesAtLeast(rec, 3);
    expect(await refusal(b.start())).toBe('busy');
    const before = rec.frames.length;
    await until('frames continue', () => rec.frames.length > before + 5);
    expect(rec.frames.at(-1)!.meta.sessionId).toBe(sessionId);
    expect(h.rt.status().session?.id).toBe(sessionId);
  });

  it('switches the stream to a new viewer; the old one is told and gets no more frames; the session goes on', async () => {
    const h = await server();
    const a = await h.client();
    const b = await h.client();
    const recA = recordFrames(a);
    const { sessionId } = await a.start();
    await framesAtLeast(recA, 3);
    const detached = nextEvent<{ reason: string }>(a, 'stream:detached');
    const recB = recordFrames(b);
    await expect(b.attach()).resolves.toEqual({ sessionId });
    expect(await detached).toEqual({ reason: 'superseded' });
    await framesAtLeast(recB, 5);
    expect(recB.frames.every((f) => f.meta.sessionId === sessionId)).toBe(true);
    const aCount = recA.frames.length;
    await sleep(300);
    expect(recA.frames.length).toBe(aCount);
    // The viewer watches; only the owner drives.
    expect(await refusal(b.command('stamp', { x: 1, y: 1 }))).toBe('not_owner');
    expect(await refusal(b.stop())).toBe('not_owner');
    await expect(a.command('stamp', { x: 1, y: 1 })).resolves.toBeDefined();
    expect(h.rt.phase()).toBe('running');
  });

  it('lets a reconnecting owner regain control with its token, and nobody without it', async () => {
    const h = await server();
    const a = await h.client();
    const { token } = await a.start();
    a.close();
    const a2 = await h.client();
    expect(await refusal(a2.command('stamp', { x: 1, y: 1 }))).toBe('not_owner');
    expect(await refusal(a2.resume('not-the-token'))).toBe('bad_token');
    await a2.resume(token);
    await expect(a2.command('stamp', { x: 1, y: 1 })).resolves.toBeDefined();
    await a2.stop();
    await until('idle', () => h.rt.phase() === 'idle');
  });

  it('stops a session whose owner stays away past the orphan timeout', async () => {
    const h = await server({ limits: { orphanTimeoutMs: 300 } });
    const a = await h.client();
    const watcher = await h.client();
    const { sessionId } = await a.start();
    await watcher.attach();
    const ended = nextEvent<{ sessionId: string; reason: string }>(watcher, 'session:ended');
    const t0 = Date.now();
    a.close();
    expect(await ended).toEqual({ sessionId, reason: 'orphaned' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('keeps the session when the owner comes back within the orphan timeout', async () => {
    const h = await server({ limits: { orphanTimeoutMs: 400 } });
    const a = await h.client();
    const { sessionId, token } = await a.start();
    a.close();
    await sleep(150);
    const back = await h.client();
    await back.resume(token);
    await sleep(600);
    expect(h.rt.status().session?.id).toBe(sessionId);
    expect(h.rt.phase()).toBe('running');
  });

  it("isolates users: user B's first frames equal the first session's, whatever user A did", async () => {
    const h = await server();
    const firstFrames = async (client: FramehostClient, n: number, commands: (() => Promise<unknown>)[] = []) => {
      const rec = recordFrames(client);
      await client.start();
      for (const c of commands) await c();
      const frames = await framesAtLeast(rec, n);
      rec.stop();
      const ended = nextEvent(client, 'session:ended');
      await client.stop();
      await ended;
      await until('idle', () => h.rt.phase() === 'idle');
      return frames;
    };
    const c0 = await h.client();
    const baseline = await firstFrames(c0, 5);
    const a = await h.client();
    const aFrames = await firstFrames(a, 30, [() => a.command('preset', { name: 'maze' }), () => a.command('palette', { name: 'neon' }), () => a.command('clear')]);
    expect(Buffer.from(aFrames.at(-1)!.data).equals(Buffer.from(baseline[0]!.data))).toBe(false);
    const b = await h.client();
    const bFrames = await firstFrames(b, 5);
    let compared = 0;
    for (const f of bFrames) {
      const twin = baseline.find((x) => x.meta.seq === f.meta.seq);
      if (!twin) continue;
      compared++;
      expect(Buffer.from(f.data).equals(Buffer.from(twin.data))).toBe(true);
    }
    expect(compared).toBeGreaterThanOrEqual(2);
  });

  it('sends JPEG frames to a viewer that asks for them', async () => {
    const h = await server();
    const a = await h.client();
    const rec = recordFrames(a);
    await a.start({ encoding: 'jpeg', quality: 70 });
    const [f] = await framesAtLeast(rec, 2);
    expect(f!.meta.format).toBe('jpeg');
    expect([f!.data[0], f!.data[1]]).toEqual([0xff, 0xd8]);
    expect(f!.data.byteLength).toBeLessThan(64 * 64 * 4);
  });
});

describe('broadcast viewer limit', () => {
  it('counts the owner (it watches too) toward --max-viewers; a viewer that leaves frees its place', async () => {
    const h = await server({}, { viewers: 'broadcast', maxViewers: 2 });
    const owner = await h.client();
    await owner.start({ encoding: 'raw' });
    const first = await h.client();
    await first.attach({ encoding: 'raw' });
    // The owner and one spectator fill a limit of 2.
    const second = await h.client();
    expect(await refusal(second.attach({ encoding: 'raw' }))).toBe('too_many_viewers');
    first.close();
    let answer = '';
    for (let tries = 0; tries < 50 && answer !== 'accepted'; tries++) {
      if (tries > 0) await sleep(20); // the server sees the disconnect shortly after the close
      answer = await refusal(second.attach({ encoding: 'raw' }));
    }
    expect(answer).toBe('accepted');
  });
});

describe('slow clients', () => {
  it('a viewer that stops reading costs dropped frames, not model speed or memory', async () => {
    const h = await server({ modelOptions: { size: 256, fps: 0 } });
    const a = await h.client();
    await a.start();
    const generated = () => h.rt.status().session!.frames;
    const rate = async (ms: number) => {
      const f0 = generated();
      await sleep(ms);
      return (generated() - f0) / ms;
    };
    // The raw engine.io websocket under the client: pausing its TCP socket stops all reading.
    const tcp = (a.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket;
    const ratios: number[] = [];
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 3; i++) {
      const normal = await rate(700);
      tcp.pause();
      const stalled = await rate(700);
      tcp.resume();
      ratios.push(stalled / normal);
    }
    ratios.sort((x, y) => x - y);
    // Paired phases, median ratio: a stalled viewer must not throttle generation.
    expect(ratios[1]).toBeGreaterThan(0.7);
    const statusDropped = h.rt.status().session!.dropped;
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    const viewerDropped = Number(/framehost_frames_dropped_total\{where="viewer"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(viewerDropped + statusDropped).toBeGreaterThan(0);
    // Thousands of 256 KiB frames went by; holding them would cost gigabytes.
    expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * 1024 * 1024);
  });
});

describe('frame flow control', () => {
  it('with flow ack, a viewer that never acknowledges gets no more than the window', async () => {
    const h = await server({ modelOptions: { size: 64, fps: 200 } });
    const owner = await h.client();
    await owner.start();
    const raw = rawIo(h.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    raws.push(raw);
    await new Promise<void>((r) => raw.once('connect', () => r()));
    let received = 0;
    raw.on('frame', () => received++); // takes frames, never calls the ack
    expect(await raw.timeout(2000).emitWithAck('stream:attach', { flow: 'ack' })).toMatchObject({ ok: true });
    await sleep(800);
    expect(received).toBe(2);
    expect(h.rt.status().session!.frames).toBeGreaterThan(50); // the model ran on regardless
  });

  it('the typed client acknowledges, so frames keep flowing under flow ack', async () => {
    const h = await server({ modelOptions: { size: 64, fps: 200 } });
    const owner = await h.client();
    const rec = recordFrames(owner);
    await owner.start(); // the typed client asks for flow ack
    await framesAtLeast(rec, 40);
    expect(rec.frames.at(-1)!.meta.seq).toBeGreaterThanOrEqual(39);
  });
});

describe('bad input', () => {
  it('answers malformed requests with coded errors and never breaks the session', async () => {
    const h = await server({}, { maxCommandBytes: 1024 });
    const a = await h.client();
    await a.start();
    const raw = rawIo(h.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    raws.push(raw);
    await new Promise<void>((r) => raw.once('connect', () => r()));
    const ask = (event: string, ...args: unknown[]) => raw.timeout(2000).emitWithAck(event, ...args) as Promise<{ ok: boolean; error?: { code: string } }>;
    const cases: [string, unknown, string][] = [
      ['session:command', 'stamp', 'bad_request'],
      ['session:command', { name: 42 }, 'bad_request'],
      ['session:command', { name: 'stamp', args: { x: 'x'.repeat(5000) } }, 'payload_too_large'],
      // Control is checked before the arguments: a stranger learns nothing about the schema's use.
      ['session:command', { name: 'nope', args: {} }, 'not_owner'],
      ['session:command', { name: 'stamp', args: { x: 1, y: 2 } }, 'not_owner'],
      ['session:start', [1, 2], 'bad_request'],
      ['session:start', {}, 'busy'],
      ['session:resume', { token: 5 }, 'bad_request'],
      ['session:resume', { token: 'guess' }, 'bad_token'],
      ['stream:attach', { encoding: 'gif' }, 'bad_request'],
      ['stream:attach', { quality: 1000 }, 'bad_request'],
      ['stream:attach', { flow: 'tcp' }, 'bad_request'],
      ['session:stop', 'now', 'bad_request'],
      ['session:stop', {}, 'not_owner'],
    ];
    for (const [event, payload, code] of cases) {
      const r = await ask(event, payload);
      expect(r, `${event} ${JSON.stringify(payload)?.slice(0, 40)}`).toMatchObject({ ok: false, error: { code } });
    }
    // From the owner: binary where JSON is expected, unknown names, deep nesting, prototype keys.
    expect(await a.request('session:command', { name: 'stamp', args: Buffer.from([1, 2, 3]) as never })).toMatchObject({ ok: false, error: { code: 'invalid_args' } });
    expect(await a.request('session:command', { name: 'nope', args: {} })).toMatchObject({ ok: false, error: { code: 'unknown_command' } });
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = { d: deep };
    expect(await refusal(a.command('stamp', { x: 1, y: 1, nested: deep } as Record<string, unknown>))).toBe('payload_too_large');
    expect(await refusal(a.command('stamp', JSON.parse('{"x":1,"y":1,"__proto__":{"admin":true}}') as Record<string, unknown>))).toBe('invalid_args');
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    // No ack, unknown events: ignored with a log line, no reply and no crash.
    raw.emit('session:stop', {});
    raw.emit('no:such:event', { x: 1 });
    raw.emit('session:command');
    expect((await ask('capabilities', {})).ok).toBe(true);
    expect(h.rt.phase()).toBe('running');
    const rec = recordFrames(a);
    await framesAtLeast(rec, 3);
  });

  // Issue 11: the handler took `(req, ack)`, so a stray second argument was taken for the ack
  // and the request was dropped as ack-less; the client waited for its own timeout.
  it('answers every request event that carries unexpected arguments with bad_request, and does nothing else', async () => {
    const h = await server();
    const raw = rawIo(h.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    raws.push(raw);
    await new Promise<void>((r) => raw.once('connect', () => r()));
    const ask = (event: string, ...args: unknown[]) =>
      (raw.timeout(2000).emitWithAck(event, ...args) as Promise<{ ok: boolean; error?: { code: string; message: string } }>).catch(() => 'no answer');
    const events = ['session:start', 'session:stop', 'session:resume', 'session:command', 'stream:attach', 'stream:detach', 'capabilities'];
    for (const event of events) {
      for (const extra of [['x'], [{}, 'x'], [null], [Buffer.from([1])]]) {
        const r = await ask(event, {}, ...extra);
        expect(r, `${event} with ${extra.length} extra`).toMatchObject({ ok: false, error: { code: 'bad_request', message: expect.stringContaining(`got ${1 + extra.length}`) } });
      }
    }
    // An input frame takes (meta, bytes) and the ack: a third payload argument is refused too.
    expect(await ask('input:frame', { track: 'camera', width: 1, height: 1, format: 'rgba' }, Buffer.alloc(4), 'x')).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    // None of them started a session or attached a viewer, and the connection is still served.
    expect(h.rt.phase()).toBe('idle');
    expect(h.rt.status().sessionsStarted).toBe(0);
    expect(await ask('capabilities', {})).toMatchObject({ ok: true });
    // A request whose last argument is not a function has no ack: ignored, as before.
    raw.emit('session:start', {}, 'not-an-ack');
    expect(await ask('capabilities', {})).toMatchObject({ ok: true, state: 'idle' });
  });

  it('rate-limits a flooding client with rate_limited while others are served', async () => {
    const h = await server({}, { requestsPerSecond: 20, requestBurst: 20 });
    const a = await h.client();
    await a.start();
    const results = await Promise.all(Array.from({ length: 60 }, () => refusal(a.command('stamp', { x: 1, y: 1 }))));
    expect(results.filter((r) => r === 'accepted').length).toBeGreaterThanOrEqual(15);
    expect(results.filter((r) => r === 'rate_limited').length).toBeGreaterThanOrEqual(30);
    const b = await h.client();
    expect((await b.capabilities()).state).toBe('running');
  });

  it('closes the connection of a client that sends more than the payload limit', async () => {
    const h = await server({}, { maxPayloadBytes: 10_000 });
    const raw = rawIo(h.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    raws.push(raw);
    await new Promise<void>((r) => raw.once('connect', () => r()));
    const gone = new Promise<string>((r) => raw.once('disconnect', (reason) => r(reason)));
    raw.emit('session:command', { name: 'x', args: { blob: 'x'.repeat(50_000) } }, () => undefined);
    expect(await gone).toBe('transport close');
    const ok = await h.client();
    expect((await ok.capabilities()).state).toBe('idle');
  });
});

describe('auth and limits at the handshake', () => {
  it('refuses a client without the shared token, and a viewer cannot command', async () => {
    const h = await server({}, { authToken: 's3cret' });
    await expect(FramehostClient.connect(h.url, { reconnection: false })).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(FramehostClient.connect(h.url, { reconnection: false, authToken: 'wrong!' })).rejects.toMatchObject({ code: 'unauthorized' });
    // As many characters as the secret but more bytes: refused, and the server lives on.
    await expect(FramehostClient.connect(h.url, { reconnection: false, authToken: 'é3cret' })).rejects.toMatchObject({ code: 'unauthorized' });
    const a = await h.client({ authToken: 's3cret' });
    await a.start();
    const v = await h.client({ authToken: 's3cret' });
    await v.attach();
    expect(await refusal(v.command('clear'))).toBe('not_owner');
  });

  it('refuses connections past the limit with too_many_connections', async () => {
    const h = await server({}, { maxConnections: 2 });
    await h.client();
    await h.client();
    await expect(FramehostClient.connect(h.url, { reconnection: false })).rejects.toMatchObject({ code: 'too_many_connections' });
  });

  // Issue 11: the limit read io.engine.clientsCount, which counts connections still in their
  // handshake: a burst at an empty server admitted 0 in some runs.
  it('admits a burst exactly up to the limit and refuses only the excess', async () => {
    const max = 20;
    const h = await server({}, { maxConnections: max });
    const open = (): Promise<{ socket: Socket; outcome: string }> => {
      const socket = rawIo(h.url, { transports: ['websocket'], forceNew: true, reconnection: false });
      raws.push(socket);
      return new Promise((resolve) => {
        socket.once('connect', () => resolve({ socket, outcome: 'connected' }));
        socket.once('connect_error', (err: Error & { data?: { code?: string } }) => resolve({ socket, outcome: err.data?.code ?? `error: ${err.message}` }));
      });
    };
    const count = (rs: { outcome: string }[], outcome: string): number => rs.filter((r) => r.outcome === outcome).length;
    for (let round = 0; round < 3; round++) {
      // 30 at once against an empty server: exactly 20 in, 10 refused with the code.
      const burst = await Promise.all(Array.from({ length: 30 }, open));
      expect(count(burst, 'connected'), `round ${round}`).toBe(max);
      expect(count(burst, 'too_many_connections'), `round ${round}`).toBe(30 - max);
      expect(h.server.io.sockets.sockets.size).toBe(max);
      for (const r of burst) r.socket.close();
      await until('every socket gone', () => h.server.io.sockets.sockets.size === 0);
      expect(connectionsGauge(await metricsText(h.url))).toBe(0);
    }
    // With 7 connected, a burst of 25 admits exactly the 13 free slots.
    const held = await Promise.all(Array.from({ length: 7 }, open));
    expect(count(held, 'connected')).toBe(7);
    const burst = await Promise.all(Array.from({ length: 25 }, open));
    expect(count(burst, 'connected')).toBe(max - 7);
    expect(count(burst, 'too_many_connections')).toBe(25 - (max - 7));
    expect(connectionsGauge(await metricsText(h.url))).toBe(max);
  });

  // Issue 11: the gauge was set before the engine dropped the closing connection (it read 256
  // with one connection open after 255 closed).
  it('reports framehost_connections right after clients leave', async () => {
    const h = await server({}, { maxConnections: 40 });
    const sockets: Socket[] = [];
    for (let i = 0; i < 30; i++) {
      const socket = rawIo(h.url, { transports: ['websocket'], forceNew: true, reconnection: false });
      raws.push(socket);
      await new Promise<void>((r) => socket.once('connect', () => r()));
      sockets.push(socket);
    }
    expect(connectionsGauge(await metricsText(h.url))).toBe(30);
    for (const socket of sockets.slice(1)) socket.close();
    await until('the server saw 29 disconnects', () => h.server.io.sockets.sockets.size === 1);
    expect(connectionsGauge(await metricsText(h.url))).toBe(1);
    sockets[0]!.close();
    await until('the last one left', () => h.server.io.sockets.sockets.size === 0);
    expect(connectionsGauge(await metricsText(h.url))).toBe(0);
  });

  // Hanging up right after asking to join races the handshake (the unit test of
  // src/transport/socket/connection-slots.ts covers the close that lands inside it): no slot may leak.
  it('leaves no slot taken by connections that hang up right after asking to connect', async () => {
    const max = 5;
    const h = await server({}, { maxConnections: max });
    const wsUrl = `${h.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
    // Engine.IO by hand: wait for the open packet, ask to join the main namespace, hang up at once.
    const abort = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(wsUrl);
        ws.once('error', reject);
        ws.once('message', () => {
          ws.send('40');
          ws.terminate();
        });
        ws.once('close', () => resolve());
      });
    for (let i = 0; i < 40; i++) await abort();
    await sleep(200);
    expect(connectionsGauge(await metricsText(h.url))).toBe(0);
    // All the slots are still there.
    const clients = await Promise.all(Array.from({ length: max }, () => FramehostClient.connect(h.url, { reconnection: false })));
    expect(clients).toHaveLength(max);
    await expect(FramehostClient.connect(h.url, { reconnection: false })).rejects.toMatchObject({ code: 'too_many_connections' });
    for (const c of clients) c.close();
  });

  it('refuses a browser handshake from an origin that is not allowed', async () => {
    const h = await server({}, { corsOrigins: ['http://allowed.example'] });
    const res = await fetch(`${h.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'http://evil.example' } });
    expect(res.status).toBe(403);
    const ok = await fetch(`${h.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'http://allowed.example' } });
    expect(ok.status).toBe(200);
  });
});

describe('HTTP endpoints', () => {
  it('serves health, readiness, metrics, schema and the page', async () => {
    const h = await server();
    const health = (await (await fetch(`${h.url}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', state: 'idle', model: { name: 'gray-scott' }, session: null });
    expect((await fetch(`${h.url}/ready`)).status).toBe(200);
    const a = await h.client();
    await a.start();
    await until('frames', () => (h.rt.status().session?.frames ?? 0) > 3);
    await a.command('nope').catch(() => undefined);
    const running = (await (await fetch(`${h.url}/health`)).json()) as { state: string; session: Record<string, unknown> };
    expect(running.state).toBe('running');
    expect(running.session).toMatchObject({ active: true });
    expect(JSON.stringify(running)).not.toContain(h.rt.status().session!.id); // no ids to strangers
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/framehost_sessions_started_total 1/);
    expect(metrics).toMatch(/framehost_state\{state="running"\} 1/);
    expect(metrics).toMatch(/framehost_frames_generated_total [1-9]/);
    expect(metrics).toMatch(/framehost_inference_seconds_count [1-9]/);
    expect(metrics).toMatch(/framehost_command_errors_total\{code="unknown_command"\} 1/);
    const schema = (await (await fetch(`${h.url}/schema`)).json()) as { commands: Record<string, unknown> };
    expect(Object.keys(schema.commands)).toEqual(expect.arrayContaining(['stamp', 'preset', 'rates', 'palette', 'clear']));
    const page = await fetch(`${h.url}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<canvas id="view"');
    const script = await fetch(`${h.url}/page.js`);
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(10_000);
    expect((await fetch(`${h.url}/nope`)).status).toBe(404);
  });

  it('answers /ready 503 while the model loads and after it failed', async () => {
    const h = await startServer({ model: SCRIPTED_MODEL, modelOptions: { mode: 'load-hangs' }, limits: { loadTimeoutMs: 600 } });
    harnesses.push(h);
    const loading = await fetch(`${h.url}/ready`);
    expect(loading.status).toBe(503);
    expect(await loading.json()).toEqual({ ready: false, state: 'loading' });
    await until('failed', () => h.rt.phase() === 'failed');
    expect((await fetch(`${h.url}/ready`)).status).toBe(503);
    const health = (await (await fetch(`${h.url}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'failed', loadError: { code: 'load_failed' } });
  });
});

describe('listening fails', () => {
  it('a port in use rejects and leaves no subscription on the runtime', async () => {
    const h = await server();
    const rt = h.rt;
    // Count what a second listen() subscribes to on the runtime, and what it undoes.
    let live = 0;
    const counted = <A extends unknown[]>(subscribe: (...args: A) => () => void) => (...args: A) => {
      const off = subscribe(...args);
      live++;
      let done = false;
      return () => {
        if (!done) live--;
        done = true;
        off();
      };
    };
    const on = rt.on.bind(rt);
    const subscribe = rt.actor.subscribe.bind(rt.actor);
    const spyOn = vi.spyOn(rt, 'on').mockImplementation(counted(on) as typeof rt.on);
    const spySubscribe = vi.spyOn(rt.actor, 'subscribe').mockImplementation(((...args: Parameters<typeof subscribe>) => {
      const sub = subscribe(...args);
      const off = counted(() => () => sub.unsubscribe())();
      return { unsubscribe: off };
    }) as typeof rt.actor.subscribe);
    try {
      await expect(listen(rt, { host: '127.0.0.1', port: h.server.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(spyOn.mock.calls.length + spySubscribe.mock.calls.length).toBeGreaterThan(0);
      expect(live).toBe(0);
    } finally {
      spyOn.mockRestore();
      spySubscribe.mockRestore();
    }
  });
});
