/**
 * The session as every client sees it, over real sockets: the command state (accepted
 * arguments, and what a command `shows` for the others) in `session:update` and in the
 * capabilities ack, and the owner's presence with the orphan countdown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FramehostClient } from '../src/client/client.ts';
import type { SessionView } from '../src/transport/socket/events.ts';
import { startServer, type Harness } from './helpers/server.ts';
import { until } from './helpers/runtime.ts';

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.allSettled(harnesses.splice(0).map((h) => h.close()));
});

/** Every session:update a client receives, newest last. */
function updates(client: FramehostClient): SessionView[] {
  const seen: SessionView[] = [];
  client.on('session:update', (view) => seen.push(view));
  return seen;
}

describe('session:update', () => {
  it('tells every client a new session and its command state: a preset shows its rates, hand-set rates no preset; the capabilities ack has it too', async () => {
    const h = await startServer();
    harnesses.push(h);
    await h.rt.ready();
    const owner = await h.client();
    const other = await h.client();
    expect((await other.capabilities()).session).toBeNull();
    const seen = updates(other);
    const { sessionId } = await owner.start();
    await until('the new session', () => seen.length >= 1);
    expect(seen[0]).toEqual({ id: sessionId, ownerAway: false, orphanMsLeft: null, controls: {} });
    await owner.command('preset', { name: 'maze' });
    await until('an update', () => seen.length >= 2);
    expect(seen.at(-1)).toEqual({ id: sessionId, ownerAway: false, orphanMsLeft: null, controls: { preset: { name: 'maze' }, rates: { feed: 0.029, kill: 0.057 } } });
    await owner.command('rates', { feed: 0.04, kill: 0.06 });
    await until('a third update', () => seen.length >= 3);
    expect(seen.at(-1)!.controls).toEqual({ preset: null, rates: { feed: 0.04, kill: 0.06 } });
    expect((await other.capabilities()).session?.controls).toEqual({ preset: null, rates: { feed: 0.04, kill: 0.06 } });
    // A refused command (not the owner) changes nothing.
    await expect(other.command('palette', { name: 'neon' })).rejects.toMatchObject({ code: 'not_owner' });
    expect((await other.capabilities()).session?.controls).not.toHaveProperty('palette');
  });

  it('tells every client the owner left, with the time to the orphan timeout, and came back', async () => {
    const h = await startServer({ limits: { orphanTimeoutMs: 20_000 } });
    harnesses.push(h);
    await h.rt.ready();
    const owner = await h.client();
    const other = await h.client();
    const seen = updates(other);
    const { sessionId, token } = await owner.start();
    owner.close();
    await until('the owner away', () => seen.at(-1)?.ownerAway === true);
    const away = seen.at(-1)!;
    expect(away.id).toBe(sessionId);
    expect(away.orphanMsLeft).toBeGreaterThan(15_000);
    expect(away.orphanMsLeft).toBeLessThanOrEqual(20_000);
    expect((await other.capabilities()).session?.ownerAway).toBe(true);
    const back = await h.client();
    await back.resume(token);
    await until('the owner back', () => seen.at(-1)?.ownerAway === false);
    expect(seen.at(-1)!.orphanMsLeft).toBeNull();
  });
});
