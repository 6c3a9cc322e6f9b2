/** SDP checks and rewrites of src/transport/webrtc/sdp.ts, on an offer libwebrtc itself made. */
import { describe, expect, it } from 'vitest';
import { boundBitrate, checkOffer, preferCodec, sendingCodec } from '../src/transport/webrtc/sdp.ts';
import { makeOffer, wrtc } from './helpers/webrtc.ts';
import { FramePixels, scaledBitrateKbps } from '../src/media/bitrate.ts';

describe('webrtc sdp', () => {
  it('reads the sections of a real offer, reorders codecs, bounds the bitrate', async () => {
    const { pc, sdp } = await makeOffer(wrtc());
    pc.close();
    const checked = checkOffer(sdp, 32 * 1024);
    expect(checked).toMatchObject({ ok: true, sections: [{ kind: 'video', mid: '0', direction: 'recvonly' }] });
    expect(sendingCodec(sdp)).toBe('VP8'); // libwebrtc lists VP8 first
    const vp9 = preferCodec(sdp, 'VP9');
    expect(sendingCodec(vp9)).toBe('VP9');
    // Every payload type is still there, once.
    const types = (s: string) => /^m=video \S+ \S+ (.*)$/m.exec(s)![1]!.split(' ').sort();
    expect(types(vp9)).toEqual(types(sdp));
    expect(preferCodec(sdp, 'THEORA')).toBe(sdp);
    const bounded = boundBitrate(sdp, 100, 900);
    expect(bounded).toMatch(/^b=AS:900$/m);
    const vp8 = /^a=rtpmap:(\d+) VP8\//m.exec(sdp)![1];
    expect(bounded).toMatch(new RegExp(`^a=fmtp:${vp8} .*x-google-min-bitrate=100;x-google-max-bitrate=900$`, 'm'));
    // A bounded offer is still one libwebrtc applies.
    const answerer = new (wrtc().RTCPeerConnection)({ iceServers: [] });
    await expect(answerer.setRemoteDescription({ type: 'offer', sdp: bounded })).resolves.toBeUndefined();
    answerer.close();
  });

  it('refuses what is not an offer framehost takes', () => {
    expect(checkOffer(1, 100)).toMatchObject({ ok: false });
    expect(checkOffer('x'.repeat(101), 100)).toMatchObject({ ok: false, problem: expect.stringContaining('limit') });
    expect(checkOffer('v=0\r\ns=-\r\n', 100)).toMatchObject({ ok: false, problem: 'the sdp has no media section' });
    expect(checkOffer('v=0\r\nm=audio 9 RTP/AVP 0\r\n', 100)).toMatchObject({ ok: false, problem: 'the sdp has no video section' });
  });
});

describe('default bitrate, scaled to the frame', () => {
  it('is ~1 Mbit/s at 256², 2.5 at 512², grows slower than pixels; a flag replaces it; never under the minimum', () => {
    expect(scaledBitrateKbps(256 * 256)).toBe(1000);
    expect(scaledBitrateKbps(512 * 512)).toBe(2500);
    expect(scaledBitrateKbps(1280 * 720)).toBeGreaterThan(5000);
    expect(scaledBitrateKbps(1280 * 720)).toBeLessThan(6500);
    const p = new FramePixels();
    expect(p.bounds(100, null)).toEqual({ minKbps: 100, maxKbps: 1000 }); // no frame yet: the 256² figure
    p.see({ width: 512, height: 512 });
    expect(p.bounds(100, null)).toEqual({ minKbps: 100, maxKbps: 2500 });
    expect(p.bounds(100, 900)).toEqual({ minKbps: 100, maxKbps: 900 });
    p.see({ width: 32, height: 32 });
    expect(p.bounds(100, null)).toEqual({ minKbps: 100, maxKbps: 100 });
  });
});
