/**
 * The room outlet's playout-delay switch (OutletOptions.playoutDelay, `webrtc.playoutDelay`): on,
 * the answer maps the extension the viewer offered; off, it leaves it out (and the outlet's RTP
 * then carries none). The offer is a real one, made by a node-datachannel receiver on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection } from 'node-datachannel';
import { DEFAULT_OUTLET, gatheredDescription, Outlet } from '../src/media/outlet.ts';
import { PLAYOUT_DELAY_URI } from '../src/media/vp8-rtp.ts';

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

async function offerWithExtension(): Promise<string> {
  const pc: PeerConnection = new nodeDataChannel.PeerConnection('viewer', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true, enableIceTcp: false });
  opened.push(pc);
  const media = new nodeDataChannel.Video('0', 'RecvOnly');
  media.addVP8Codec(96);
  media.parseSdpLine(`a=extmap:3 ${PLAYOUT_DELAY_URI}`);
  pc.addTrack(media);
  const sdp = await gatheredDescription(pc, 'offer', 2000);
  if (!sdp) throw new Error('no offer');
  return sdp;
}

async function answer(playoutDelay: boolean): Promise<string> {
  const events = { opened: () => undefined, keyframeRequest: () => undefined, closed: () => undefined };
  const r = await Outlet.answer(await offerWithExtension(), events, { ...DEFAULT_OUTLET, bindAddress: '127.0.0.1', playoutDelay });
  if (typeof r === 'string') throw new Error(r);
  opened.push(r.outlet);
  return r.sdp;
}

describe('the outlet and the playout-delay extension', () => {
  it('maps the offered extension by default, and leaves it out with playoutDelay false', async () => {
    expect(await answer(true)).toContain(`a=extmap:3 ${PLAYOUT_DELAY_URI}`);
    expect(await answer(false)).not.toContain(PLAYOUT_DELAY_URI);
  });
});
