/**
 * `GET /events` read by a real HTTP client through a whole session, a refused request and a
 * worker crash, behind the shared secret; and a reader that stops reading is dropped.
 */
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, createMachine } from 'xstate';
import type { Runtime } from '../src/runtime/runtime.ts';
import { EventStream } from '../src/transport/http/events-sse.ts';
import { listenOn } from '../src/util/listen.ts';
import { SCRIPTED_MODEL, startRuntime, until, untilPhase } from './helpers/runtime.ts';
import { startServer, type Harness } from './helpers/server.ts';
import { openEvents, waitEvent } from './helpers/sse.ts';

const SECRET = 'a-shared-secret-for-events';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('GET /events', () => {
  it('streams a whole session, a refusal and a worker crash, behind the shared secret', async () => {
    const h: Harness = await startServer({ model: SCRIPTED_MODEL }, { authToken: SECRET });
    cleanups.push(() => h.close());
    await h.rt.ready();

    expect((await openEvents(`${h.url}/events`)).status).toBe(401);
    expect((await openEvents(`${h.url}/events`, { authorization: 'Bearer wrong' })).status).toBe(401);
    const byQuery = await openEvents(`${h.url}/events?token=${SECRET}`);
    expect(byQuery.status).toBe(200);
    byQuery.close();

    const sse = await openEvents(`${h.url}/events`, { authorization: `Bearer ${SECRET}` });
    cleanups.push(() => sse.close());
    expect(sse.status).toBe(200);
    expect(sse.res.headers['content-type']).toContain('text/event-stream');
    await waitEvent(sse, (e) => e.event === 'hello' && e.data.state === 'idle', 'hello');

    const owner = await h.client({ authToken: SECRET });
    const other = await h.client({ authToken: SECRET });
    const { sessionId } = await owner.start();
    await waitEvent(sse, (e) => e.event === 'session.began' && e.data.sessionId === sessionId, 'session.began');
    await waitEvent(sse, (e) => e.event === 'state' && e.data.state === 'running', 'running');
    await expect(other.start()).rejects.toThrow();
    await waitEvent(sse, (e) => e.event === 'request.refused' && e.data.code === 'busy', 'busy refusal');
    await expect(other.command('note', { text: 'x' })).rejects.toThrow();
    await waitEvent(sse, (e) => e.event === 'request.refused' && e.data.code === 'not_owner', 'not_owner refusal');
    // More refusals of the same code within a second come as one event with their count.
    for (let i = 0; i < 5; i++) await expect(other.command('note', { text: 'x' })).rejects.toThrow();
    const notOwner = () => sse.events.filter((e) => e.event === 'request.refused' && e.data.code === 'not_owner');
    await until('6 not_owner refusals counted', () => notOwner().reduce((n, e) => n + Number(e.data.count), 0) === 6, 10_000);
    expect(notOwner().length).toBeLessThan(6);
    await owner.stop();
    const ended = await waitEvent(sse, (e) => e.event === 'session.ended' && e.data.sessionId === sessionId, 'session.ended');
    expect(ended.data).toMatchObject({ reason: 'stopped', frames: expect.any(Number) });
    await waitEvent(sse, (e) => e.event === 'state' && e.data.state === 'idle' && e.data.from === 'cleanup', 'idle again');

    // A worker crash under the next session: the session ends crashed, a new worker loads.
    const second = await owner.start();
    await untilPhase(h.rt, 'running');
    await owner.command('exit');
    const crashed = await waitEvent(sse, (e) => e.event === 'session.ended' && e.data.sessionId === second.sessionId, 'crashed session');
    expect(crashed.data).toMatchObject({ reason: 'crashed', error: { code: 'worker_crashed' } });
    await waitEvent(sse, (e) => e.event === 'worker.restarted' && e.data.workerStarts === 2, 'worker.restarted');
    const loading = await waitEvent(sse, (e) => e.event === 'state' && e.data.state === 'loading', 'loading');
    await waitEvent(sse, (e) => sse.events.indexOf(e) > sse.events.indexOf(loading) && e.event === 'state' && e.data.state === 'idle', 'idle after the restart');

    // No owner ids, tokens or socket ids in the stream.
    const text = JSON.stringify(sse.events);
    for (const secret of [SECRET, owner.socket.id!, other.socket.id!]) expect(text).not.toContain(secret);
    expect(sse.ended).toBe(false);
  });

  it('drops a reader that stops reading instead of buffering for it', async () => {
    const rt = await startRuntime({ model: SCRIPTED_MODEL });
    cleanups.push(() => rt.shutdown());
    await rt.ready();
    const logs: string[] = [];
    const log = pino({ level: 'warn' }, new Writable({ write: (c: Buffer, _e, done) => (logs.push(c.toString()), done()) }));
    const stream = new EventStream(rt, { maxBufferedBytes: 256 * 1024 }, log);
    const server: Server = createServer((req, res) => stream.handle(req, res));
    const { url } = await listenOn(server, '127.0.0.1', 0);
    cleanups.push(() => new Promise<void>((resolve) => (stream.close(), server.close(() => resolve()))));

    const slow = await openEvents(`${url}/events`);
    slow.res.pause(); // reads nothing more: the kernel's buffers fill, then the server's
    const fast = await openEvents(`${url}/events`);
    cleanups.push(() => (slow.close(), fast.close()));
    await until('two readers', () => stream.readers() === 2);

    // Large events, a few per turn of the event loop (a reader that reads keeps up with that),
    // until the kernel's buffers towards the slow reader are full and its response backs up.
    const filler = 'x'.repeat(32 * 1024);
    let sent = 0;
    while (stream.readers() === 2 && sent < 2000) {
      for (let i = 0; i < 2; i++) stream.publish('filler', { n: sent++, filler });
      await new Promise((r) => setImmediate(r));
    }
    expect(stream.readers()).toBe(1);
    if (process.env.TEST_REPORT) console.log(`slow reader dropped after ${sent} events of 32 KiB`);
    expect(logs.join('')).toContain('reader dropped');
    // The fast reader kept everything; the slow one, once it reads again, finds its stream ended.
    await until('fast reader caught up', () => fast.events.filter((e) => e.event === 'filler').length === sent, 20_000);
    slow.res.resume();
    await until('slow reader ended', () => slow.ended, 20_000);
    expect(slow.events.filter((e) => e.event === 'filler').length).toBeLessThan(sent);
    // Lifecycle events still reach the reader that stayed.
    expect(rt.start().ok).toBe(true);
    await until('session.began', () => fast.events.some((e) => e.event === 'session.began'));
    expect(fast.ended).toBe(false);
  });
});

describe('the event stream and the root actor', () => {
  // xstate rethrows an actor's error in a timer when any of its observers has no error handler
  // (reportUnhandledError), whatever the others do: an observer without one would undo the
  // runtime's own error handler and let the error kill the process.
  it('observes the actor with an error handler, so an actor error is not rethrown', () => {
    vi.useFakeTimers();
    try {
      const machine = createMachine({ on: { boom: { actions: () => { throw new Error('an action threw'); } } } });
      const actor = createActor(machine);
      const seen: unknown[] = [];
      actor.subscribe({ error: (err) => seen.push(err) }); // the runtime's own observer
      actor.start();
      const runtime = {
        actor,
        status: () => ({ workerStarts: 1, phase: 'idle', model: null, sessionsStarted: 0 }),
        on: () => () => undefined,
      } as unknown as Runtime;
      const stream = new EventStream(runtime, {}, pino({ level: 'silent' }));
      actor.send({ type: 'boom' });
      expect(seen).toHaveLength(1);
      expect(() => vi.runOnlyPendingTimers()).not.toThrow();
      stream.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
