/**
 * Light viewers for the room bench (bench/room.ts), in their own process: n framehost clients,
 * each with a node-datachannel (libdatachannel) peer that receives the server's VP8 track over
 * loopback and counts frames as they arrive (RTP packets with the marker bit: a frame's last
 * packet), without decoding. Decoding 32 streams would cost the viewers' processes more CPU than
 * 2 cores have beside the server; what the sender delivers is what is measured here. The first
 * client of the process that `start`s owns the session; the others attach.
 */
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, Track } from 'node-datachannel';
import { FramehostClient } from '../src/client/client.ts';
import type { Result } from '../src/errors.ts';
import { gatheredDescription } from '../src/media/outlet.ts';
import { isRtcp } from '../src/media/vp8-rtp.ts';
import { answerRequests } from './child-rpc.ts';
import type { RtcClientRequest, RtcWindow } from './webrtc-client.ts';

/** A window's counts: these receivers count frames and bytes without decoding (no `changed`). */
export type CountWindow = Omit<RtcWindow, 'changed'>;

/** The same requests as the libwebrtc viewers' (bench/webrtc-client.ts): bench/room.ts drives both alike. */
export type ReceiversRequest = RtcClientRequest;

interface Receiver {
  readonly client: FramehostClient;
  readonly pc: PeerConnection;
  /**
   * Held for as long as the receiver lives: node-datachannel's Track wrapper, once garbage
   * collected, closes its track and drops its onMessage callback (TrackWrapper::~TrackWrapper →
   * doClose), while the peer stays `connected` and the server keeps sending. Unheld, every
   * receiver made before a GC counted no frame (29 of 32, 14 of 32 in the bench; 8 of 8 with a
   * forced gc()).
   */
  readonly track: Track;
  frames: number;
  bytes: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let receivers: Receiver[] = [];

/** A receive-only VP8 peer whose offer carries only its loopback candidates, answered by the server. */
async function receiver(url: string): Promise<Receiver> {
  const client = await FramehostClient.connect(url, { reconnection: false });
  const pc = new nodeDataChannel.PeerConnection('bench-viewer', { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true, enableIceTcp: false });
  const media = new nodeDataChannel.Video('video', 'RecvOnly');
  media.addVP8Codec(96);
  const track = pc.addTrack(media);
  const state = new Promise<string>((resolve) => {
    pc.onStateChange((st) => (st === 'connected' || st === 'failed' || st === 'closed') && resolve(st));
    setTimeout(() => resolve('timeout'), 10_000).unref();
  });
  const r: Receiver = { client, pc, track, frames: 0, bytes: 0 };
  // Never throw back into libdatachannel (an exception there aborts the process): plain counting only.
  track.onMessage((msg) => {
    if (isRtcp(msg) || msg.length < 12) return;
    r.bytes += msg.length;
    if (msg[1]! & 0x80) r.frames++;
  });
  const offer = await gatheredDescription(pc, 'offer', 2000);
  if (!offer) throw new Error('no offer');
  const answer = (await client.request('webrtc:offer', { sdp: offer })) as Result<{ peerId: string; sdp: string }>;
  if (!answer.ok) throw new Error(`offer refused: ${answer.error.code}: ${answer.error.message}`);
  pc.setRemoteDescription(answer.sdp, 'answer');
  const reached = await state;
  if (reached !== 'connected') {
    pc.close();
    client.close();
    throw new Error(`peer ${reached}`);
  }
  return r;
}

/**
 * A receiver, tried up to 3 times: on this shared 2-core machine under heavy load a peer
 * sometimes fails its ICE check (seen once at load average 20); such a try is counted, not hidden.
 */
let retries = 0;
async function connected(url: string): Promise<Receiver> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await receiver(url);
    } catch (err) {
      if (attempt === 3) throw err;
      retries++;
    }
  }
}

async function closeAll(): Promise<void> {
  for (const r of receivers) {
    r.pc.close();
    r.client.close();
  }
  receivers = [];
  await sleep(50);
}

async function handle(m: ReceiversRequest): Promise<unknown> {
  switch (m.type) {
    case 'open':
      await closeAll();
      for (let i = 0; i < m.viewers; i++) receivers.push(await connected(m.url));
      return { ok: true, retries };
    case 'start':
      await receivers[0]!.client.start({ encoding: 'webrtc' });
      for (const r of receivers.slice(1)) await r.client.attach({ encoding: 'webrtc' });
      return { ok: true };
    case 'attach':
      for (const r of receivers) await r.client.attach({ encoding: 'webrtc' });
      return { ok: true };
    case 'stop': {
      const owner = receivers[0]!.client;
      const ended = new Promise((r) => owner.on('session:ended', r));
      await owner.stop();
      await ended;
      while ((await owner.capabilities()).state !== 'idle') await sleep(1);
      return { ok: true };
    }
    case 'window': {
      const f0 = receivers.map((r) => r.frames);
      const b0 = receivers.map((r) => r.bytes);
      const t0 = performance.now();
      await sleep(m.ms);
      const ms = performance.now() - t0;
      return { ms, frames: receivers.map((r, i) => r.frames - f0[i]!), bytes: receivers.map((r, i) => r.bytes - b0[i]!) } satisfies CountWindow;
    }
    case 'close':
      await closeAll();
      // Answered first, then out without libdatachannel's cleanup: called from a timer it failed
      // an assertion in napi_release_threadsafe_function (seen once); the process ends anyway.
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
  }
}

answerRequests<ReceiversRequest>(handle);
