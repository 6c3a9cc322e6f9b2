/**
 * A WHEP player written by someone else (`whip-whep` 1.2.0, MIT, Medooze's WHEPClient, bundled
 * with esbuild) plays the session in a real headless Chromium: a spectator token, POST /whep, the
 * room's VP8 in a <video> whose picture changes, then its stop() DELETEs the resource. Its own
 * file (its own process): this server runs node-datachannel.
 */
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createToken, TokenVerifier } from '../src/auth/tokens.ts';
import { loadTokenKeys, type TokenKeySet } from '../src/auth/keys.ts';
import { ROOT } from './helpers/child.ts';
import { BrowserRig } from './helpers/browser.ts';
import { startServer, type Harness } from './helpers/server.ts';

const SECRET = 'b'.repeat(16) + 'browser-whep-secret-0123456';
const rig = new BrowserRig();
beforeAll(() => rig.launch());
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());
const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.allSettled(harnesses.splice(0).map((h) => h.close()));
});

/** The player's page: the package bundled as it ships, and a <video> it plays into. */
async function playerPage(): Promise<string> {
  const bundle = await build({
    stdin: { contents: "import { WHEPClient } from 'whip-whep/whep.js'; globalThis.WHEPClient = WHEPClient;", resolveDir: ROOT, loader: 'js' },
    bundle: true,
    write: false,
    format: 'iife',
    logLevel: 'silent',
  });
  return `<!doctype html><meta charset="utf-8"><video id="v" autoplay muted playsinline width="128" height="128"></video><canvas id="c" width="128" height="128"></canvas><script>${bundle.outputFiles[0]!.text}</script>`;
}

/** What the page's functions see (no DOM lib in the tests' types). */
interface PlayerWindow {
  play(url: string, token: string): Promise<void>;
  stop(): Promise<void>;
  shown(): { frames: number; width: number; sum: number };
}

describe('a third-party WHEP player in Chromium', { timeout: 90_000 }, () => {
  it('plays the session with a spectator token; its stop() ends the resource', async () => {
    const tokens = new TokenVerifier((await loadTokenKeys({ key: SECRET })) as TokenKeySet, { maxLifetimeS: 86_400, clockSkewS: 30 });
    const h = await startServer({ modelOptions: { size: 128, fps: 30 } }, { viewers: 'broadcast', webrtc: { sender: 'room' }, tokens });
    harnesses.push(h);
    await h.rt.ready();
    const owner = await h.client({ authToken: await createToken({ key: SECRET, role: 'player', ttl: 600 }) });
    await owner.start();

    const html = await playerPage();
    const page = await rig.blankPage();
    await page.route(`${h.url}/player.html`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: html }));
    await page.goto(`${h.url}/player.html`);
    await page.evaluate(() => {
      const w = globalThis as unknown as PlayerWindow & Record<string, never> & { WHEPClient: new () => { view(pc: unknown, url: string, token: string): Promise<void>; stop(): Promise<void> } };
      const doc = (globalThis as unknown as { document: { getElementById(id: string): { srcObject: unknown; getVideoPlaybackQuality(): { totalVideoFrames: number }; videoWidth: number; getContext(k: '2d'): { drawImage(v: unknown, x: number, y: number): void; getImageData(x: number, y: number, a: number, b: number): { data: Uint8ClampedArray } } } } }).document;
      const Rtc = (globalThis as unknown as { RTCPeerConnection: new () => { addTransceiver(k: string, o: object): void; ontrack: (e: { streams: unknown[] }) => void } }).RTCPeerConnection;
      const client = new w.WHEPClient();
      const video = doc.getElementById('v');
      (w as PlayerWindow).play = async (url, token) => {
        const pc = new Rtc();
        pc.addTransceiver('video', { direction: 'recvonly' });
        pc.ontrack = (e) => (video.srcObject = e.streams[0]);
        await client.view(pc, url, token);
      };
      (w as PlayerWindow).stop = () => client.stop();
      (w as PlayerWindow).shown = () => {
        const ctx = doc.getElementById('c').getContext('2d');
        ctx.drawImage(video, 0, 0);
        const d = ctx.getImageData(0, 0, 128, 128).data;
        let sum = 0;
        for (let i = 0; i < d.length; i += 4) sum += d[i]! * (i % 97);
        return { frames: video.getVideoPlaybackQuality().totalVideoFrames, width: video.videoWidth, sum };
      };
    });
    const token = await createToken({ key: SECRET, role: 'spectator', ttl: 600 });
    await page.evaluate(([url, t]) => (globalThis as unknown as PlayerWindow).play(url, t), [`${h.url}/whep`, token] as const);
    const shown = () => page.evaluate(() => (globalThis as unknown as PlayerWindow).shown());
    await expect.poll(async () => (await shown()).frames, { timeout: 15_000 }).toBeGreaterThan(20);
    const a = await shown();
    expect(a.width).toBe(128);
    await new Promise((r) => setTimeout(r, 500));
    const b = await shown();
    expect(b.frames).toBeGreaterThan(a.frames);
    expect(b.sum, 'the picture changes').not.toBe(a.sum);
    const peers = async (): Promise<string | undefined> => /^framehost_webrtc_peers (\S+)$/m.exec(await (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${await createToken({ key: SECRET, role: 'operator', ttl: 600 })}` } })).text())?.[1];
    expect(await peers()).toBe('1');
    await page.evaluate(() => (globalThis as unknown as PlayerWindow).stop());
    await expect.poll(peers, { timeout: 5000 }).toBe('0');
    // The player trickles its candidates by PATCH; the server answers 405 (the draft's "no trickle"), which the player expects.
    const patch405 = /405.*\/whep\/[0-9a-f-]{36}\)?$/;
    expect(rig.pageErrors.filter((e) => !patch405.test(e))).toEqual([]);
  });
});
