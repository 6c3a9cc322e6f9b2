/**
 * The publisher chart (src/machines/publisher.machine.ts) with fake Janus actors and a fake clock:
 * retries that back off, a connection that does not come in time, keep-alives, Janus going away,
 * a bounded stop, and giving up after `maxAttempts`.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise } from 'xstate';
import { FramehostError } from '../src/errors.ts';
import { DEFAULT_PUBLISHER_TIMINGS, publisherMachine, type PublisherEvent, type PublisherLink, type PublisherTimings } from '../src/machines/publisher.machine.ts';

class FakeLink implements PublisherLink {
  readonly session = 1;
  readonly handle = 2;
  readonly feed = 3;
  closed = 0;
  close(): void {
    this.closed++;
  }
}

/** What the fake Janus does: each connect's outcome in turn, and the calls it saw. */
class FakeJanus {
  connects = 0;
  keepalives = 0;
  hangups = 0;
  released: PublisherLink[] = [];
  keepaliveFails = false;
  hangupHangs = false;
  watchers: ((e: PublisherEvent) => void)[] = [];
  constructor(readonly outcomes: (FakeLink | FramehostError | 'hang')[]) {}

  machine(): typeof publisherMachine {
    return publisherMachine.provide({
      actors: {
        connect: fromPromise(async () => {
          const next = this.outcomes[this.connects++] ?? new FramehostError('sfu_unreachable', 'no more outcomes');
          if (next === 'hang') return new Promise<PublisherLink>(() => undefined);
          if (next instanceof FramehostError) throw next;
          return next;
        }),
        watch: fromCallback<PublisherEvent, { link: PublisherLink }>(({ sendBack }) => {
          this.watchers.push(sendBack);
        }),
        keepalive: fromPromise(async () => {
          this.keepalives++;
          if (this.keepaliveFails) throw new FramehostError('sfu_unreachable', 'Janus lost the session: 458');
        }),
        hangup: fromPromise(async ({ input }) => {
          this.hangups++;
          input.link.close();
          if (this.hangupHangs) await new Promise(() => undefined);
        }),
      },
      actions: { releaseLink: (_, params) => void (params.link && (params.link.close(), this.released.push(params.link))) },
    });
  }
}

function run(janus: FakeJanus, timings: Partial<PublisherTimings> = {}) {
  const actor = createActor(janus.machine(), { input: { timings: { ...DEFAULT_PUBLISHER_TIMINGS, ...timings } } });
  actor.start();
  const state = (): string => {
    const v = actor.getSnapshot().value;
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
  return { actor, state };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('publisher chart', () => {
  it('a refusal waits retryMs, then twice as long, and publishes once Janus takes it', async () => {
    const link = new FakeLink();
    const janus = new FakeJanus([new FramehostError('sfu_refused', 'VideoRoom create: 403'), new FramehostError('sfu_unreachable', 'ECONNREFUSED'), link]);
    const { actor, state } = run(janus);
    await vi.advanceTimersByTimeAsync(0);
    expect(state()).toBe('retrying');
    expect(actor.getSnapshot().context.lastError?.code).toBe('sfu_refused');
    await vi.advanceTimersByTimeAsync(1000);
    expect(janus.connects).toBe(2);
    expect(state()).toBe('retrying');
    await vi.advanceTimersByTimeAsync(1999);
    expect(janus.connects).toBe(2); // the second pause is 2 s
    await vi.advanceTimersByTimeAsync(1);
    expect(state()).toBe('{"publishing":"steady"}');
    expect(actor.getSnapshot().context).toMatchObject({ attempts: 0, lastError: null, link });
  });

  it('a connection that does not come within connectTimeoutMs is retried as a timeout', async () => {
    const { actor, state } = run(new FakeJanus(['hang']), { connectTimeoutMs: 500 });
    await vi.advanceTimersByTimeAsync(499);
    expect(state()).toBe('connecting');
    await vi.advanceTimersByTimeAsync(1);
    expect(state()).toBe('retrying');
    expect(actor.getSnapshot().context.lastError?.code).toBe('timeout');
  });

  it('keeps the session alive every keepaliveMs; Janus going away (hangup, or a failed keep-alive) releases the link and connects again', async () => {
    const first = new FakeLink();
    const janus = new FakeJanus([first, new FakeLink()]);
    const { actor, state } = run(janus, { keepaliveMs: 100 });
    await vi.advanceTimersByTimeAsync(350);
    expect(janus.keepalives).toBe(3);
    janus.watchers[0]!({ type: 'janus.gone', error: { code: 'sfu_unreachable', message: 'Janus hung up the publisher' } });
    expect(state()).toBe('retrying');
    expect(janus.released).toEqual([first]);
    expect(first.closed).toBe(1);
    expect(actor.getSnapshot().context.link).toBeNull();
    await vi.advanceTimersByTimeAsync(1000);
    expect(state()).toBe('{"publishing":"steady"}');
    janus.keepaliveFails = true;
    await vi.advanceTimersByTimeAsync(100);
    expect(state()).toBe('retrying');
    expect(actor.getSnapshot().context.lastError?.message).toMatch(/458/);
  });

  it('our peer failing is retried like Janus going away', async () => {
    const janus = new FakeJanus([new FakeLink()]);
    const { actor, state } = run(janus);
    await vi.advanceTimersByTimeAsync(0);
    actor.send({ type: 'media.failed' });
    expect(state()).toBe('retrying');
    expect(actor.getSnapshot().context.lastError?.code).toBe('sfu_unreachable');
  });

  it('stop hangs up, and goes anyway after stopTimeoutMs when Janus does not answer', async () => {
    const link = new FakeLink();
    const janus = new FakeJanus([link]);
    janus.hangupHangs = true;
    const { actor, state } = run(janus, { stopTimeoutMs: 300 });
    await vi.advanceTimersByTimeAsync(0);
    actor.send({ type: 'publisher.stop' });
    expect(state()).toBe('stopping');
    expect(janus.hangups).toBe(1);
    expect(link.closed).toBe(1);
    await vi.advanceTimersByTimeAsync(300);
    expect(state()).toBe('stopped');
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('stop while connecting or waiting to retry ends at once', async () => {
    const a = run(new FakeJanus(['hang']));
    a.actor.send({ type: 'publisher.stop' });
    expect(a.state()).toBe('stopped');
    const b = run(new FakeJanus([new FramehostError('sfu_unreachable', 'down')]));
    await vi.advanceTimersByTimeAsync(0);
    b.actor.send({ type: 'publisher.stop' });
    expect(b.state()).toBe('stopped');
  });

  it('gives up after maxAttempts failures in a row (0, the default, never does)', async () => {
    const down = () => new FramehostError('sfu_unreachable', 'down');
    const { actor, state } = run(new FakeJanus([down(), down(), down()]), { maxAttempts: 3 });
    await vi.advanceTimersByTimeAsync(1000 + 2000);
    expect(state()).toBe('failed');
    expect(actor.getSnapshot().context.attempts).toBe(3);
    const forever = run(new FakeJanus(Array.from({ length: 8 }, down)), { maxRetryMs: 1000 });
    await vi.advanceTimersByTimeAsync(7 * 1000);
    expect(forever.state()).toBe('retrying');
    expect(forever.actor.getSnapshot().context.attempts).toBe(8);
  });
});
