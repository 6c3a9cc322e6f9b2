/**
 * The roster of peers (src/transport/webrtc/peer-roster.ts) on stand-in peers: who owns each, the
 * one-peer-per-connection lookup, the `maxPeers` count, the gauge after every change, and close.
 * Over real peers: test/webrtc.test.ts, test/webrtc-room.test.ts and test/whep.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_WEBRTC } from '../src/transport/webrtc/options.ts';
import { PeerRoster, WATCHER, type AnyPeer } from '../src/transport/webrtc/peer-roster.ts';
import type { WebRtcMetrics } from '../src/transport/webrtc/metrics.ts';

/** A peer as far as the roster uses it: its id, and close. */
function fakePeer(id: string, closed: string[]): AnyPeer {
  return { id, close: (reason: string) => closed.push(`${id}:${reason}`), readStats: async () => null } as unknown as AnyPeer;
}

function recordingMetrics(): { metrics: WebRtcMetrics; gauge: number[]; opened: number[]; forgotten: string[] } {
  const gauge: number[] = [];
  const opened: number[] = [];
  const forgotten: string[] = [];
  return {
    metrics: { peers: (n) => gauge.push(n), opened: () => opened.push(1), peerStats: () => undefined, forget: (id) => forgotten.push(id) },
    gauge,
    opened,
    forgotten,
  };
}

describe('PeerRoster', () => {
  it('finds a peer by its connection and by id for its owner only; a watcher has no connection', () => {
    const { metrics, gauge, forgotten } = recordingMetrics();
    const roster = new PeerRoster({ ...DEFAULT_WEBRTC, maxPeers: 2 }, metrics);
    const a = fakePeer('a', []);
    const w = fakePeer('w', []);
    roster.add(a, 'socket-1');
    roster.add(w, WATCHER);
    expect(roster.of('socket-1')).toBe(a);
    expect(roster.of(WATCHER)).toBeUndefined();
    expect(roster.ownedBy('a', 'socket-1')).toBe(a);
    expect(roster.ownedBy('a', 'socket-2')).toBeUndefined();
    expect(roster.ownedBy('w', WATCHER)).toBe(w);
    expect(roster.full).toBe(true);
    roster.forget(a, 'socket-1');
    expect(roster.of('socket-1')).toBeUndefined();
    expect(roster.get('a')).toBeUndefined();
    expect(roster.full).toBe(false);
    expect(gauge).toEqual([1, 2, 1]);
    expect(forgotten).toEqual(['a']);
  });

  it('forgets a connection\'s lookup only for the peer it still points to', () => {
    const roster = new PeerRoster(DEFAULT_WEBRTC, recordingMetrics().metrics);
    const old = fakePeer('old', []);
    const next = fakePeer('next', []);
    roster.add(old, 'socket-1');
    roster.add(next, 'socket-1');
    roster.forget(old, 'socket-1');
    expect(roster.of('socket-1')).toBe(next);
    expect(roster.size).toBe(1);
  });

  it('counts an answered peer as opened; close shuts every peer and refuses new ones', () => {
    const { metrics, opened } = recordingMetrics();
    const roster = new PeerRoster(DEFAULT_WEBRTC, metrics);
    const closed: string[] = [];
    roster.add(fakePeer('a', closed), 'socket-1');
    roster.add(fakePeer('b', closed), WATCHER);
    roster.answered();
    expect(opened).toEqual([1]);
    roster.close();
    expect(closed).toEqual(['a:shutdown', 'b:shutdown']);
    expect(roster.full).toBe(true);
  });
});
