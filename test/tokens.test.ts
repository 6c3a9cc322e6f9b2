/**
 * Access tokens: the verifier on its own (what it refuses and why), then a real server on
 * 127.0.0.1:0 with real Socket.IO and HTTP clients (roles, resume by `sub`, limits per `sub`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, exportJWK } from 'jose';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { io as rawIo, type Socket } from 'socket.io-client';
import { createToken, TokenVerifier, type TokenPolicy } from '../src/auth/tokens.ts';
import { loadSigningKey, loadTokenKeys, TokenKeyError, type TokenKeySet } from '../src/auth/keys.ts';
import { FramehostClient } from '../src/client/client.ts';
import { FramehostError } from '../src/errors.ts';
import { SCRIPTED_MODEL } from './helpers/runtime.ts';
import { openEvents } from './helpers/sse.ts';
import { sleep, startServer, type Harness } from './helpers/server.ts';
import { runRaw } from './helpers/cli.ts';

const SECRET_A = 'a'.repeat(16) + 'server-A-secret-0123456789';
const SECRET_B = 'b'.repeat(16) + 'server-B-secret-0123456789';
const DIR = mkdtempSync(join(tmpdir(), 'framehost-tokens-'));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

/** A key pair as PEM files: the private key (for `--token-key`) and the public one (`--token-public-key`). */
function pemPair(name: string, type: 'ed25519' | 'ec' | 'rsa'): { priv: string; pub: string; pubPem: string } {
  const { privateKey, publicKey } =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const priv = join(DIR, `${name}.key.pem`);
  const pub = join(DIR, `${name}.pub.pem`);
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(pub, pubPem);
  return { priv, pub, pubPem };
}

async function verifierOf(settings: { key?: string; publicKeys?: string }, policy?: Partial<TokenPolicy>): Promise<TokenVerifier> {
  const keys = (await loadTokenKeys(settings)) as TokenKeySet;
  return new TokenVerifier(keys, { maxLifetimeS: 86_400, clockSkewS: 30, ...policy });
}

const codeOf = async (v: TokenVerifier, token: string, now?: number): Promise<string> => {
  const r = await v.verify(token, now);
  return r.ok ? 'ok' : `${r.error.code}: ${r.error.message}`;
};

describe('the verifier', () => {
  it('accepts a token it can check, with its claims', async () => {
    const v = await verifierOf({ key: SECRET_A });
    const r = await v.verify(await createToken({ key: SECRET_A, role: 'player', sub: 'user-1', ttl: '10m' }));
    expect(r).toMatchObject({ ok: true, claims: { sub: 'user-1', role: 'player' } });
    if (r.ok) {
      expect(r.claims.exp - r.claims.iat).toBe(600);
      expect(r.claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('refuses an expired token with token_expired, after the clock-skew allowance only', async () => {
    const v = await verifierOf({ key: SECRET_A }, { clockSkewS: 30 });
    const minted = Date.now() - 120_000;
    const token = await createToken({ key: SECRET_A, role: 'player', ttl: 60, now: minted }); // exp 60 s ago
    expect(await codeOf(v, token)).toBe('token_expired: the access token has expired; get a new one');
    // 20 s past exp is within the allowance.
    expect(await codeOf(v, token, minted + 80_000)).toBe('ok');
  });

  it('refuses a token that is not valid yet (nbf beyond the skew)', async () => {
    const v = await verifierOf({ key: SECRET_A }, { clockSkewS: 30 });
    const token = await createToken({ key: SECRET_A, role: 'player', ttl: 600, now: Date.now() + 120_000 });
    expect(await codeOf(v, token)).toMatch(/^unauthorized: .*not valid yet/);
    expect(await codeOf(v, await createToken({ key: SECRET_A, role: 'player', now: Date.now() + 10_000 }))).toBe('ok');
  });

  it('refuses a wrong signature, and a payload changed after signing', async () => {
    const v = await verifierOf({ key: SECRET_A });
    const token = await createToken({ key: SECRET_A, role: 'spectator', sub: 'u' });
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = `${h}.${p}.${(s[0] === 'A' ? 'B' : 'A') + s.slice(1)}`;
    expect(await codeOf(v, flipped)).toBe('unauthorized: missing or invalid credentials: bad signature');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const promoted = Buffer.from(JSON.stringify({ ...claims, role: 'operator' })).toString('base64url');
    expect(await codeOf(v, `${h}.${promoted}.${s}`)).toMatch(/^unauthorized: .*bad signature/);
  });

  it('refuses a key id it does not know, even when the key itself is right', async () => {
    const v = await verifierOf({ key: SECRET_A });
    const key = await loadSigningKey(SECRET_A);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ role: 'player' })
      .setProtectedHeader({ alg: 'HS256', kid: 'some-other-kid' })
      .setSubject('u')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti('j')
      .sign(key.signKey);
    expect(await codeOf(v, token)).toMatch(/^unauthorized: .*unknown key id/);
  });

  it('refuses alg: none', async () => {
    const v = await verifierOf({ key: SECRET_A });
    const now = Math.floor(Date.now() / 1000);
    const unsecured = new UnsecuredJWT({ role: 'operator' }).setSubject('u').setIssuedAt(now).setExpirationTime(now + 60).setJti('j').encode();
    expect(await codeOf(v, unsecured)).toMatch(/^unauthorized: /);
    // Also with the server's kid in the header.
    const kid = (await loadSigningKey(SECRET_A)).kid;
    const [, p] = unsecured.split('.') as [string, string];
    const header = Buffer.from(JSON.stringify({ alg: 'none', kid })).toString('base64url');
    expect(await codeOf(v, `${header}.${p}.`)).toMatch(/^unauthorized: /);
  });

  it('refuses HS256 tokens keyed with the public key (HS/RS and HS/EdDSA confusion)', async () => {
    for (const type of ['rsa', 'ed25519'] as const) {
      const pair = pemPair(`confusion-${type}`, type);
      const v = await verifierOf({ publicKeys: pair.pub });
      const honest = await createToken({ key: pair.priv, role: 'player' });
      expect(await codeOf(v, honest)).toBe('ok');
      const kid = JSON.parse(Buffer.from(honest.split('.')[0]!, 'base64url').toString()).kid as string;
      const now = Math.floor(Date.now() / 1000);
      const forged = await new SignJWT({ role: 'operator' })
        .setProtectedHeader({ alg: 'HS256', kid })
        .setSubject('attacker')
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .setJti('j')
        .sign(new TextEncoder().encode(pair.pubPem));
      expect(await codeOf(v, forged), type).toMatch(/^unauthorized: .*algorithm not allowed/);
    }
  });

  it('refuses a token signed with another server key', async () => {
    const b = await verifierOf({ key: SECRET_B });
    expect(await codeOf(b, await createToken({ key: SECRET_A, role: 'player' }))).toMatch(/^unauthorized: .*unknown key id/);
  });

  it('accepts tokens of both keys during a rotation (PEM list and a JWK Set with the old HS256 secret), and no third', async () => {
    const oldPair = pemPair('rotation-old', 'ed25519');
    const newPair = pemPair('rotation-new', 'ec');
    const jwks = join(DIR, 'old-secret.jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(new TextEncoder().encode(SECRET_B))), kid: 'hs-2026-11' }] }));
    const v = await verifierOf({ key: newPair.priv, publicKeys: `${oldPair.pub}, ${jwks}` });
    expect(await codeOf(v, await createToken({ key: newPair.priv, role: 'player' }))).toBe('ok');
    expect(await codeOf(v, await createToken({ key: oldPair.priv, role: 'player' }))).toBe('ok');
    const oldHs = await loadSigningKey(SECRET_B);
    expect(await codeOf(v, await createToken({ key: { ...oldHs, kid: 'hs-2026-11' }, role: 'player' }))).toBe('ok');
    expect(await codeOf(v, await createToken({ key: SECRET_A, role: 'player' }))).toMatch(/^unauthorized: .*unknown key id/);
    // A verify-only node holding just the public keys checks what it cannot mint.
    const node = await verifierOf({ publicKeys: `${newPair.pub},${oldPair.pub}` });
    expect(await codeOf(node, await createToken({ key: newPair.priv, role: 'spectator' }))).toBe('ok');
  });

  it('refuses a lifetime over the maximum, a missing exp, and an unknown role', async () => {
    const v = await verifierOf({ key: SECRET_A }, { maxLifetimeS: 3600 });
    expect(await codeOf(v, await createToken({ key: SECRET_A, role: 'player', ttl: '2h' }))).toMatch(/^unauthorized: .*lifetime over/);
    const key = await loadSigningKey(SECRET_A);
    const now = Math.floor(Date.now() / 1000);
    const noExp = await new SignJWT({ role: 'player' }).setProtectedHeader({ alg: 'HS256', kid: key.kid }).setSubject('u').setIssuedAt(now).setJti('j').sign(key.signKey);
    expect(await codeOf(v, noExp)).toMatch(/^unauthorized: .*exp/);
    const admin = await new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: key.kid }).setSubject('u').setIssuedAt(now).setExpirationTime(now + 60).setJti('j').sign(key.signKey);
    expect(await codeOf(v, admin)).toMatch(/^unauthorized: .*role must be/);
  });

  it('refuses short HS256 secrets and files that are not keys', async () => {
    await expect(loadTokenKeys({ key: 'short' })).rejects.toBeInstanceOf(TokenKeyError);
    const notKey = join(DIR, 'not-a-key.pem');
    writeFileSync(notKey, 'hello');
    await expect(loadTokenKeys({ key: notKey })).rejects.toThrow(/not a PEM private key/);
    await expect(loadTokenKeys({ publicKeys: join(DIR, 'missing.pem') })).rejects.toThrow(/no such file/);
    expect(await loadTokenKeys({})).toBeNull();
  });
});

describe('framehost token', () => {
  it('prints a token a verify-only server accepts, with the role, sub and lifetime asked for; refuses without a signing key or past the maximum', { timeout: 60_000 }, async () => {
    const pair = pemPair('cli', 'ed25519');
    const r = await runRaw(['token', '--role', 'spectator', '--ttl', '90s', '--sub', 'cli-user', '--token-key', pair.priv]);
    expect(r.code, r.stderr).toBe(0);
    const checked = await (await verifierOf({ publicKeys: pair.pub })).verify(r.stdout.trim());
    expect(checked).toMatchObject({ ok: true, claims: { sub: 'cli-user', role: 'spectator' } });
    if (checked.ok) expect(checked.claims.exp - checked.claims.iat).toBe(90);
    const verifyOnly = await runRaw(['token', '--role', 'player', '--token-public-key', pair.pub]);
    expect(verifyOnly.code).toBe(2);
    expect(verifyOnly.stderr).toMatch(/needs a signing key/);
    const tooLong = await runRaw(['token', '--role', 'player', '--ttl', '2h', '--token-max-ttl', '1h', '--token-key', SECRET_A]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/ttl must be 1 to 3600 seconds/);
  });
});

// ── a real server ───────────────────────────────────────────────────────────────────────────

const harnesses: Harness[] = [];
const raws: Socket[] = [];
afterEach(async () => {
  for (const s of raws.splice(0)) s.close();
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function tokenServer(transport: Parameters<typeof startServer>[1] = {}, policy?: Partial<TokenPolicy>): Promise<Harness> {
  const h = await startServer({ model: SCRIPTED_MODEL, limits: { orphanTimeoutMs: 30_000 } }, { tokens: await verifierOf({ key: SECRET_A }, policy), ...transport });
  harnesses.push(h);
  await h.rt.ready();
  return h;
}

const mint = (role: 'player' | 'spectator' | 'operator', sub: string, ttl: string | number = '10m'): Promise<string> => createToken({ key: SECRET_A, role, sub, ttl });

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof FramehostError ? err.code : String(err);
  }
}

describe('a server with access tokens', () => {
  it('refuses a handshake without a token, with a bad one, with an expired one and with another server key', async () => {
    const h = await tokenServer();
    expect(await refusal(FramehostClient.connect(h.url, { reconnection: false }))).toBe('unauthorized');
    expect(await refusal(FramehostClient.connect(h.url, { reconnection: false, authToken: 'x.y.z' }))).toBe('unauthorized');
    const expired = await createToken({ key: SECRET_A, role: 'player', ttl: 60, now: Date.now() - 600_000 });
    expect(await refusal(FramehostClient.connect(h.url, { reconnection: false, authToken: expired }))).toBe('token_expired');
    const foreign = await createToken({ key: SECRET_B, role: 'player' });
    expect(await refusal(FramehostClient.connect(h.url, { reconnection: false, authToken: foreign }))).toBe('unauthorized');
    const ok = await h.client({ authToken: await mint('player', 'u1') });
    expect((await ok.capabilities()).state).toBe('idle');
  });

  it('lets a spectator watch but not start a session (forbidden), and a player start one', async () => {
    const h = await tokenServer();
    const spectator = await h.client({ authToken: await mint('spectator', 'viewer-1') });
    expect(await refusal(spectator.start())).toBe('forbidden');
    expect(h.rt.status().session).toBeNull();
    const player = await h.client({ authToken: await mint('player', 'u1') });
    await player.start({ encoding: 'raw' });
    expect((await spectator.attach()).sessionId).toBe(h.rt.status().session?.id);
    expect(await refusal(spectator.command('note', { text: 'hi' }))).toBe('forbidden');
    expect(await refusal(spectator.stop())).toBe('forbidden');
    expect(h.rt.status().session).not.toBeNull();
  });

  it('keeps /events for operators: 401 without a token, 403 for a player, 200 for an operator (header or ?token=)', async () => {
    const h = await tokenServer();
    expect((await fetch(`${h.url}/events`)).status).toBe(401);
    const asPlayer = await fetch(`${h.url}/events`, { headers: { authorization: `Bearer ${await mint('player', 'u1')}` } });
    expect(asPlayer.status).toBe(403);
    expect(((await asPlayer.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const operator = await mint('operator', 'ops-1');
    const byHeader = await openEvents(`${h.url}/events`, { authorization: `Bearer ${operator}` });
    byHeader.close();
    expect(byHeader.status).toBe(200);
    const byQuery = await openEvents(`${h.url}/chart/events?token=${encodeURIComponent(operator)}`);
    byQuery.close();
    expect(byQuery.status).toBe(200);
    // The query parameter is only for EventSource's streams, not for /metrics.
    expect((await fetch(`${h.url}/metrics?token=${encodeURIComponent(operator)}`)).status).toBe(401);
    expect((await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${operator}` } })).status).toBe(200);
  });

  it('serves /metrics without credentials on its own listener', async () => {
    const h = await tokenServer({ metricsPort: 0 });
    expect((await fetch(`${h.url}/metrics`)).status).toBe(401);
    const scrape = await fetch(`${h.server.metricsUrl}/metrics`);
    expect(scrape.status).toBe(200);
    expect(await scrape.text()).toMatch(/^framehost_connections /m);
    expect((await fetch(`${h.server.metricsUrl}/events`)).status).toBe(404);
  });

  it('lets the same sub resume its session after a reconnect, without the session token; another sub may not', async () => {
    const h = await tokenServer();
    const first = await h.client({ authToken: await mint('player', 'alice') });
    const { sessionId, token } = await first.start({ encoding: 'raw' });
    first.close();
    // A fresh token of the same user, a new connection: the session is hers.
    const back = await h.client({ authToken: await mint('player', 'alice') });
    expect(await back.resume()).toEqual({ sessionId });
    await back.command('note', { text: 'hi' });
    // Bob holds the session token, but the session is not his.
    const bob = await h.client({ authToken: await mint('player', 'bob') });
    expect(await refusal(bob.resume(token))).toBe('not_owner');
    expect(await refusal(bob.resume())).toBe('not_owner');
    expect(await refusal(bob.command('note', { text: 'hi' }))).toBe('not_owner');
    await back.stop();
  });

  it('a token that expires mid-session keeps the session, but starts no new one', async () => {
    const h = await tokenServer({}, { clockSkewS: 0 });
    // exp is whole seconds: 2 s from a minting at x.999 s still leaves a second to connect and start.
    const player = await h.client({ authToken: await mint('player', 'carol', 2) });
    await player.start({ encoding: 'raw' });
    await sleep(2_200);
    await player.command('note', { text: 'hi' }); // the session goes on
    await player.stop();
    await until(() => h.rt.phase() === 'idle');
    expect(await refusal(player.start())).toBe('token_expired');
  });

  it('limits connections and requests per sub, whatever the number of sockets', async () => {
    // Refilled at 0.5/s: the burst of 12 requests below may take up to 2 s on a busy machine and still meet the bound.
    const h = await tokenServer({ maxConnectionsPerSub: 3, requestsPerSecondPerSub: 0.5, requestBurstPerSub: 6 });
    const token = await mint('player', 'many');
    const mine = [await h.client({ authToken: token }), await h.client({ authToken: token }), await h.client({ authToken: await mint('player', 'many') })];
    expect(await refusal(FramehostClient.connect(h.url, { reconnection: false, authToken: token }))).toBe('too_many_connections');
    const other = await h.client({ authToken: await mint('player', 'someone-else') });
    // 3 sockets × 4 requests at once: the user's bucket (burst 6) lets about 6 through, not 12.
    const results = await Promise.all(mine.flatMap((c) => [0, 1, 2, 3].map(() => c.request('capabilities', {}))));
    const passed = results.filter((r) => r.ok).length;
    expect(passed).toBeGreaterThanOrEqual(6);
    expect(passed).toBeLessThanOrEqual(7);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.error.code === 'rate_limited')).toBe(true);
    expect((await other.request('capabilities', {})).ok).toBe(true);
    // A socket that leaves frees its place for the same user.
    mine[0]!.close();
    await until(async () => {
      const c = await FramehostClient.connect(h.url, { reconnection: false, authToken: token }).catch(() => null);
      c?.close();
      return c !== null;
    });
  });

  it('still takes the shared secret beside tokens (LAN tools), and a raw socket.io client presents a token as auth.token', async () => {
    const h = await tokenServer({ authToken: 'lan-secret' });
    const lan = await h.client({ authToken: 'lan-secret' });
    expect((await lan.capabilities()).state).toBe('idle');
    const raw = rawIo(h.url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: await mint('spectator', 'v') } });
    raws.push(raw);
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', () => resolve());
      raw.once('connect_error', reject);
    });
    const ack = await raw.timeout(5000).emitWithAck('session:start', {});
    expect(ack).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });
});

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(50);
  }
}
