/** The fleet's pure parts: tickets, queue positions, lease settings. No Redis, no processes. */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mintTicket, verifyTicket } from '../src/fleet/ticket.ts';
import { positionsOf } from '../src/fleet/positions.ts';
import { connectionOf, leaseSettings, sentinelOptionsOf } from '../src/fleet/options.ts';

const SECRET = 'a-test-secret-of-enough-length';
const claims = { jobId: 'job-1', node: 'node-a', attempt: 2, exp: Date.now() + 60_000 };

describe('tickets', () => {
  it('verify with the secret and give back their claims', () => {
    const v = verifyTicket(mintTicket(claims, SECRET), SECRET);
    expect(v).toEqual({ ok: true, claims });
  });

  it('refuse a forged, altered, malformed or foreign-secret ticket with ticket_invalid', () => {
    const ticket = mintTicket(claims, SECRET);
    const [v, payload, mac] = ticket.split('.') as [string, string, string];
    const altered = Buffer.from(JSON.stringify({ ...claims, node: 'node-b' })).toString('base64url');
    for (const bad of [
      `${v}.${altered}.${mac}`, // claims changed, MAC kept
      `${v}.${payload}.${mac.slice(0, -2)}AA`, // MAC changed
      mintTicket(claims, 'another-secret-entirely-000'),
      'ft1.e30.AAAA',
      'garbage',
      '',
      'x'.repeat(5000),
      42,
      undefined,
      `ft2.${payload}.${mac}`,
    ]) {
      const r = verifyTicket(bad, SECRET);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('ticket_invalid');
    }
  });

  it('refuse a genuine ticket past its expiry with ticket_expired', () => {
    const r = verifyTicket(mintTicket({ ...claims, exp: 1000 }, SECRET), SECRET, 2000);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('ticket_expired');
  });

  it('refuse well-signed claims of the wrong shape', () => {
    // Signed with the right secret but not a claims object: still ticket_invalid.
    const payload = Buffer.from(JSON.stringify({ jobId: 1, node: 'n', attempt: 'x', exp: 1 })).toString('base64url');
    const mac = createHmac('sha256', SECRET).update(`ft1.${payload}`).digest('base64url');
    const r = verifyTicket(`ft1.${payload}.${mac}`, SECRET);
    expect(r.ok).toBe(false);
  });
});

describe('queue positions', () => {
  it('are 1-based from the head of the wait list, for the watched jobs only', () => {
    const wait = ['a', 'b', 'c', 'd', 'e'];
    expect(Object.fromEntries(positionsOf(wait, new Set(['b', 'e', 'z'])))).toEqual({ b: 2, e: 5 });
    expect(positionsOf(wait, new Set()).size).toBe(0);
  });
});

describe('lease settings', () => {
  it('renew several times per lease and fence before it ends', () => {
    const l = leaseSettings(2000);
    expect(l.renewEveryMs).toBeLessThan(l.leaseMs / 2);
    expect(l.fenceMarginMs).toBeGreaterThan(0);
    expect(l.leaseMs - l.fenceMarginMs).toBeGreaterThan(l.renewEveryMs * 2);
  });
});

describe('Redis URLs', () => {
  it('plain URLs go to ioredis as they are; Sentinel URLs become sentinels and a master name', () => {
    expect(connectionOf('redis://127.0.0.1:6379/2')).toEqual({ url: 'redis://127.0.0.1:6379/2' });
    expect(sentinelOptionsOf('redis://x')).toBeNull();
    expect(sentinelOptionsOf('redis-sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2/rides/1')).toEqual({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
      name: 'rides',
      password: 's@cret',
      sentinelPassword: 's@cret',
      db: 1,
    });
    expect(() => sentinelOptionsOf('redis-sentinel://nohost')).toThrow(/Sentinel URL/);
  });
});
