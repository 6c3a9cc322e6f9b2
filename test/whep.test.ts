/**
 * WHEP over plain HTTP, as curl would do it: an SDP offer POSTed to /whep, the answer and its
 * Location, frames decoded by a libwebrtc viewer (in a child process: this file's server runs
 * node-datachannel), then DELETE. The refusals: bad SDP, unknown resource, the viewer limit, the
 * wrtc sender, and the token rules. Media candidates are 127.0.0.1 only.
 */
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChildRpc } from '../bench/child-rpc.ts';
import { createToken, TokenVerifier } from '../src/auth/tokens.ts';
import { loadTokenKeys, type TokenKeySet } from '../src/auth/keys.ts';
import type { TransportOptions } from '../src/transport/options.ts';
import type { ReceiversRequest, ReceiverStats } from './helpers/wrtc-receivers.ts';
import { startServer, type Harness } from './helpers/server.ts';

const SECRET = 'w'.repeat(16) + 'whep-test-secret-0123456789';
const ROOM: Partial<TransportOptions> = { viewers: 'broadcast', maxViewers: 2, webrtc: { sender: 'room', maxPeers: 8 } };

let rx: ChildRpc<ReceiversRequest>;
const harnesses: Harness[] = [];
beforeAll(() => {
  rx = new ChildRpc<ReceiversRequest>(new URL('./helpers/wrtc-receivers.ts', import.meta.url));
});
afterAll(async () => {
  await rx.close();
});
afterEach(async () => {
  await Promise.allSettled(harnesses.splice(0).map((h) => h.close()));
});

async function server(transport: Partial<TransportOptions> = ROOM): Promise<Harness> {
  const h = await startServer({ modelOptions: { size: 128, fps: 30 } }, transport);
  harnesses.push(h);
  await h.rt.ready();
  return h;
}

const post = (h: Harness, sdp: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${h.url}/whep`, { method: 'POST', headers: { 'content-type': 'application/sdp', ...headers }, body: sdp });

const codeOf = async (r: Response): Promise<string> => ((await r.json()) as { error: { code: string } }).error.code;

const gauge = async (h: Harness, name: string): Promise<number> => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${h.url}/metrics`)).text())?.[1] ?? NaN);

const stats = (): Promise<ReceiverStats[]> => rx.ask<ReceiverStats[]>({ type: 'stats' });

/** Poll the child's figures for viewer `index` until `check` holds. */
async function viewerUntil(index: number, what: string, check: (s: ReceiverStats) => boolean, ms: number): Promise<ReceiverStats> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = (await stats())[index]!;
    if (check(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${JSON.stringify(s)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('WHEP', { timeout: 60_000 }, () => {
  it('offer → 201 with the answer and a Location → frames decoded → DELETE ends the peer', async () => {
    const h = await server();
    const owner = await h.client();
    await owner.start();
    const offer = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
    const posted = performance.now();
    const r = await post(h, offer.sdp);
    const answerMs = performance.now() - posted;
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toBe('application/sdp');
    const location = r.headers.get('location')!;
    expect(location).toMatch(/^\/whep\/[0-9a-f-]{36}$/);
    const answer = await r.text();
    expect(answer.match(/^a=candidate:.*$/gm)?.map((c) => c.split(' ')[4])).toEqual(['127.0.0.1']);
    await rx.ask({ type: 'answer', index: offer.index, sdp: answer });
    const decoded = await viewerUntil(offer.index, 'the WHEP viewer decodes 20 frames', (s) => s.frames >= 20, 15_000);
    expect(decoded.width).toBe(128);
    console.log(`WHEP: POST → 201 in ${answerMs.toFixed(0)} ms; offer made → first frame decoded in ${decoded.firstFrameMs?.toFixed(0)} ms (this includes the viewer's own ICE gathering, up to 1 s); ${decoded.keyFramesDecoded} keyframes`);
    expect(await gauge(h, 'framehost_webrtc_peers')).toBe(1);

    expect((await fetch(`${h.url}${location}`, { method: 'PATCH', body: 'a=candidate:x' })).status).toBe(405);
    expect((await fetch(`${h.url}${location}`, { method: 'DELETE' })).status).toBe(200);
    expect(await gauge(h, 'framehost_webrtc_peers')).toBe(0);
    const after = (await stats())[offer.index]!.frames;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await stats())[offer.index]!.frames, 'no frame after DELETE').toBeLessThanOrEqual(after + 1);
    // The resource is gone: a second DELETE, and one for an id never made.
    const again = await fetch(`${h.url}${location}`, { method: 'DELETE' });
    expect([again.status, await codeOf(again)]).toEqual([404, 'unknown_peer']);
    const never = await fetch(`${h.url}/whep/not-an-id`, { method: 'DELETE' });
    expect([never.status, await codeOf(never)]).toEqual([404, 'unknown_peer']);
  });

});

describe('WHEP refusals and limits', { timeout: 60_000 }, () => {
  it('refuses bad SDP, a wrong content type and an offer past the viewer limit, making no peer', async () => {
    const h = await server();
    const garbage = await post(h, 'v=0\r\nnot an offer');
    expect([garbage.status, await codeOf(garbage)]).toEqual([400, 'bad_sdp']);
    const json = await fetch(`${h.url}/whep`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect([json.status, await codeOf(json)]).toEqual([400, 'bad_sdp']);
    const big = await post(h, 'x'.repeat(40 * 1024));
    expect([big.status, await codeOf(big)]).toEqual([413, 'payload_too_large']);
    const get = await fetch(`${h.url}/whep`);
    expect([get.status, await codeOf(get)]).toEqual([400, 'bad_request']);
    expect(await gauge(h, 'framehost_webrtc_peers_opened_total')).toBe(0);

    // maxViewers 2: one Socket.IO spectator and one WHEP viewer fill it; the next WHEP offer is refused.
    const spectator = await h.client();
    await spectator.attach();
    const first = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
    expect((await post(h, first.sdp)).status).toBe(201);
    const second = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
    const full = await post(h, second.sdp);
    expect([full.status, await codeOf(full)]).toEqual([503, 'too_many_viewers']);
    expect(await gauge(h, 'framehost_webrtc_peers_opened_total')).toBe(1);
  });

  it('an oversized offer over node:http, declared or chunked, gets its 413 (not a reset); one that never ends is cut off', async () => {
    const h = await server();
    const { port } = new URL(h.url);
    /** POST `chunks` of 16 KiB each (written as fast as the socket takes them), then end; or never end. */
    const send = (chunks: number, headers: Record<string, string | number>, end = true): Promise<{ status?: number; body: string; error?: string }> =>
      new Promise((done) => {
        let status: number | undefined;
        let body = '';
        const req = request({ host: '127.0.0.1', port: Number(port), path: '/whep', method: 'POST', headers: { 'content-type': 'application/sdp', ...headers } });
        req.on('response', (res) => {
          status = res.statusCode;
          res.setEncoding('utf8').on('data', (t: string) => (body += t)).on('end', () => done({ status, body }));
        });
        req.on('error', (err) => done({ ...(status !== undefined ? { status } : {}), body, error: err.message }));
        const chunk = Buffer.alloc(16 * 1024, 0x78);
        let left = chunks;
        const write = (): void => {
          while (left > 0 || !end) {
            left--;
            if (req.destroyed) return;
            if (!req.write(chunk)) return void req.once('drain', write);
          }
          req.end();
        };
        write();
      });
    const declared = await send(20, { 'content-length': 20 * 16 * 1024 }); // 320 KiB, ten times the limit
    expect(declared.error).toBeUndefined();
    expect([declared.status, (JSON.parse(declared.body) as { error: { code: string } }).error.code]).toEqual([413, 'payload_too_large']);
    const chunked = await send(20, {}); // no Content-Length: found too large while it arrives
    expect(chunked.error).toBeUndefined();
    expect([chunked.status, (JSON.parse(chunked.body) as { error: { code: string } }).error.code]).toEqual([413, 'payload_too_large']);
    const endless = await send(0, {}, false); // past the drain bound (1 MiB) the server stops reading
    expect(endless.status === 413 || endless.error !== undefined, JSON.stringify(endless)).toBe(true);
    expect((await fetch(`${h.url}/health`)).status).toBe(200); // and goes on serving
    expect(await gauge(h, 'framehost_webrtc_peers_opened_total')).toBe(0);
  });

  it('a viewer that never connects is ended by the peer chart (connectTimeoutMs): it leaves the viewers and its resource is gone', async () => {
    const h = await server({ ...ROOM, webrtc: { sender: 'room', maxPeers: 8, connectTimeoutMs: 800 } });
    const offer = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' }); // its answer is never applied
    const r = await post(h, offer.sdp);
    expect(r.status).toBe(201);
    expect(await gauge(h, 'framehost_webrtc_peers')).toBe(1);
    await expect.poll(() => gauge(h, 'framehost_webrtc_peers'), { timeout: 5000 }).toBe(0);
    expect((await fetch(`${h.url}${r.headers.get('location')!}`, { method: 'DELETE' })).status).toBe(404);
    // Its place among the viewers is free again: two more fit (maxViewers 2).
    for (let i = 0; i < 2; i++) expect((await post(h, (await rx.ask<{ index: number; sdp: string }>({ type: 'offer' })).sdp)).status).toBe(201);
  });

});

describe('WHEP access', { timeout: 60_000 }, () => {
  it('CORS: a player on an allowed origin gets the preflight and Location exposed; another origin gets no CORS header', async () => {
    const h = await server({ ...ROOM, corsOrigins: ['http://player.example'] });
    const preflight = (origin: string): Promise<Response> =>
      fetch(`${h.url}/whep`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' } });
    const allowed = await preflight('http://player.example');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://player.example');
    expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/Content-Type.*Authorization/);
    expect((await preflight('http://elsewhere.example')).headers.get('access-control-allow-origin')).toBeNull();
    const offer = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
    const r = await post(h, offer.sdp, { origin: 'http://player.example' });
    expect(r.status).toBe(201);
    expect(r.headers.get('access-control-expose-headers')).toBe('Location');
  });

  it('is refused on the wrtc sender and in switch mode (webrtc_unavailable, too_many_viewers)', async () => {
    const offer = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
    const wrtc = await server({ viewers: 'broadcast', webrtc: { sender: 'wrtc' } }); // refused before wrtc is loaded
    const r1 = await post(wrtc, offer.sdp);
    expect([r1.status, await codeOf(r1)]).toEqual([503, 'webrtc_unavailable']);
    const switched = await server({ webrtc: { sender: 'room' } });
    const r2 = await post(switched, offer.sdp);
    expect([r2.status, await codeOf(r2)]).toEqual([503, 'too_many_viewers']);
  });

  it('with access tokens: no token or a bad one → 401, a spectator token watches', async () => {
    const tokens = new TokenVerifier((await loadTokenKeys({ key: SECRET })) as TokenKeySet, { maxLifetimeS: 86_400, clockSkewS: 30 });
    const h = await server({ ...ROOM, tokens });
    const offer = await rx.ask<{ index: number; sdp: string }>({ type: 'offer' });
    const none = await post(h, offer.sdp);
    expect([none.status, none.headers.get('www-authenticate'), await codeOf(none)]).toEqual([401, 'Bearer', 'unauthorized']);
    const bad = await post(h, offer.sdp, { authorization: 'Bearer not.a.token' });
    expect(bad.status).toBe(401);
    const spectator = await createToken({ key: SECRET, role: 'spectator', ttl: 600 });
    const ok = await post(h, offer.sdp, { authorization: `Bearer ${spectator}` });
    expect(ok.status).toBe(201);
    const location = ok.headers.get('location')!;
    expect((await fetch(`${h.url}${location}`, { method: 'DELETE' })).status).toBe(401);
    expect((await fetch(`${h.url}${location}`, { method: 'DELETE', headers: { authorization: `Bearer ${spectator}` } })).status).toBe(200);
  });
});
