/**
 * WHEP's viewers: peers without a Socket.IO connection, always on the room sender, kept in the
 * same roster as the connections' peers (counted, limited, closed with the server).
 */
import type { Logger } from 'pino';
import { fail, type Result } from '../../errors.ts';
import type { RuntimeFrame } from '../../runtime/runtime.ts';
import type { WebRtcOptions } from './options.ts';
import { WATCHER, type PeerRoster } from './peer-roster.ts';
import { openRoomPeer, type PeerBook, type RoomLoader } from './room-peer.ts';
import { checkOffer, NO_RECEIVE_SECTION, receiveSection } from './sdp.ts';

export type WatcherOpened = Result<{ peerId: string; sdp: string; sink: { offer(frame: RuntimeFrame): void; close(): void } }>;

/** Opens and ends the peers of WHEP's viewers. */
export class WhepWatchers {
  constructor(
    private readonly rooms: RoomLoader,
    private readonly options: WebRtcOptions,
    private readonly roster: PeerRoster,
    private readonly log: Logger,
  ) {}

  async open(sdp: string, closed: (peerId: string) => void): Promise<WatcherOpened> {
    const { options, roster } = this;
    // wrtc and node-datachannel were not cleared to share a process: WHEP needs the room sender.
    if (!options.enabled || options.sender !== 'room') return fail('webrtc_unavailable', options.enabled ? 'WHEP needs the room sender (the default), not --webrtc-sender wrtc' : 'WebRTC is off (--no-webrtc)');
    const checked = checkOffer(sdp, options.maxSdpBytes);
    if (!checked.ok) return fail('bad_sdp', checked.problem);
    if (!receiveSection(checked.sections)) return fail('bad_sdp', NO_RECEIVE_SECTION);
    if (roster.full) return fail('too_many_peers', `limit ${options.maxPeers}`);
    const r = await openRoomPeer(this.rooms, options, this.book(closed), this.log.child({ viewer: 'whep' }), sdp);
    if (!r.ok) return r;
    const peer = roster.get(r.peerId);
    if (!peer) return fail('unknown_peer', 'the peer closed while answering');
    return { ok: true, peerId: r.peerId, sdp: r.sdp, sink: { offer: (frame) => peer.feed(frame), close: () => peer.close('closed') } };
  }

  /** End a watcher's peer; false when there is no such watcher. */
  close(peerId: string): boolean {
    const peer = this.roster.ownedBy(peerId, WATCHER);
    if (!peer) return false;
    peer.close('closed');
    return true;
  }

  /** The book of a watcher's peer: counted like any peer; nobody to tell over Socket.IO when it closes. */
  private book(closed: (peerId: string) => void): PeerBook {
    return {
      add: (peer) => this.roster.add(peer, WATCHER),
      answered: () => this.roster.answered(),
      closed: (peer, reason) => {
        this.roster.forget(peer, WATCHER);
        this.log.info({ peer: peer.id, reason, viewer: 'whep' }, 'peer closed');
        closed(peer.id);
      },
    };
  }
}
