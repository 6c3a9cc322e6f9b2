import { describe, expect, it } from 'vitest';
import { ChartReply } from '../src/runtime/chart-reply.ts';

describe('ChartReply', () => {
  it('returns the answer given for the request during its send, and ignores others', () => {
    const reply = new ChartReply();
    const r = reply.ask('a', 'session.start', () => {
      reply.answer('b', { ok: false, error: { code: 'busy', message: 'no' } });
      reply.answer('a', { ok: true, sessionId: 's1' });
    });
    expect(r).toEqual({ ok: true, sessionId: 's1' });
    reply.answer('a', { ok: true }); // after the send: nobody is asking
  });

  it('is internal when the chart said nothing, and refuses a request made during another', () => {
    const reply = new ChartReply();
    expect(reply.ask('a', 'session.stop', () => undefined)).toMatchObject({ ok: false, error: { code: 'internal', message: expect.stringContaining('no answer to session.stop') } });
    let inner: unknown;
    reply.ask('a', 'session.stop', () => {
      inner = reply.ask('b', 'session.start', () => undefined);
    });
    expect(inner).toMatchObject({ ok: false, error: { code: 'internal' } });
    // the outer request's end clears it: the next is answered again
    expect(reply.ask('c', 'x', () => reply.answer('c', { ok: true }))).toEqual({ ok: true });
  });
});
