/**
 * The page with access tokens, in a real Chromium against a real server with `--token-key`: the
 * player's token arrives in the URL's fragment (never sent to the server by the browser), leaves
 * the address bar, and is presented at the handshake; a second device of the same user takes the
 * ride back by `sub`; a spectator's page has Start disabled and says why, and may watch; a page
 * with no token is refused with the server's code.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../src/auth/tokens.ts';
import { loadTokenKeys, type TokenKeySet } from '../src/auth/keys.ts';
import { TokenVerifier } from '../src/auth/tokens.ts';
import { BrowserRig, framesAtLeast, startSession } from './helpers/browser.ts';

const KEY = 'browser-test-secret-of-at-least-32-characters';
const rig = new BrowserRig();
beforeAll(() => rig.launch());
afterEach(() => rig.closeContexts());
afterAll(() => rig.close());

async function tokenServer() {
  const keys = (await loadTokenKeys({ key: KEY })) as TokenKeySet;
  const tokens = new TokenVerifier(keys, { maxLifetimeS: 3600, clockSkewS: 30 });
  return rig.server({ modelOptions: { size: 64, fps: 30 } }, { tokens });
}
const mint = (role: 'player' | 'spectator', sub: string): Promise<string> => createToken({ key: KEY, role, sub, ttl: '10m' });

describe('the page with access tokens', { timeout: 90_000 }, () => {
  it('presents the token from the fragment, keeps it out of the address bar, and plays', async () => {
    const h = await tokenServer();
    const page = await rig.openPage(`${h.url}/#token=${await mint('player', 'alice')}`, 'idle');
    expect(new URL(page.url()).hash, 'the token left the address bar').toBe('');
    await startSession(page);
    // A reload has no fragment any more: the tab's sessionStorage still holds the token.
    await page.reload();
    await expect.poll(() => page.textContent('#role'), { timeout: 10_000 }).toBe('owner');
    await rig.expectNoPageErrors(page);
  });

  it('a second device of the same user takes the ride back by sub; another user cannot', async () => {
    const h = await tokenServer();
    const first = await rig.openPage(`${h.url}/#token=${await mint('player', 'alice')}`, 'idle');
    await startSession(first);
    const other = await rig.openPage(`${h.url}/#token=${await mint('player', 'bob')}`, 'running');
    expect(await other.textContent('#role')).toBe('nobody');
    expect(await other.isDisabled('#stop')).toBe(true);
    const second = await rig.openPage(`${h.url}/#token=${await mint('player', 'alice')}`, 'running');
    await expect.poll(() => second.textContent('#role')).toBe('owner');
    await framesAtLeast(second, 5);
    await second.click('#stop');
    await expect.poll(() => second.textContent('#state')).toBe('idle');
    expect(h.rt.status().lastEnd?.reason).toBe('stopped');
  });

  it("a spectator's page may watch but not start, and says why", async () => {
    const h = await tokenServer();
    const player = await rig.openPage(`${h.url}/#token=${await mint('player', 'alice')}`, 'idle');
    const spectator = await rig.openPage(`${h.url}/#token=${await mint('spectator', 'carol')}`, 'idle');
    expect(await spectator.isDisabled('#start')).toBe(true);
    expect(await spectator.getAttribute('#start', 'title')).toMatch(/watch, not play/);
    await startSession(player);
    await expect.poll(() => spectator.isDisabled('#watch')).toBe(false);
    await spectator.click('#watch');
    await expect.poll(() => spectator.textContent('#role')).toBe('spectator');
    await framesAtLeast(spectator, 5);
    await rig.expectNoPageErrors(player, spectator);
  });

  it('a page without a token is refused with the code', async () => {
    const h = await tokenServer();
    const page = await rig.blankPage();
    await page.goto(`${h.url}/`);
    await expect.poll(() => page.textContent('#error'), { timeout: 10_000 }).toMatch(/^cannot connect: .*credentials/);
  });
});
