/** `serve`'s media flags and environment: viewers mode, ICE servers, codec, bitrate bounds. */
import { describe, expect, it } from 'vitest';
import { parseCommandLine, UsageError } from '../src/cli/args.ts';
import { parseMediaOptions } from '../src/cli/media-options.ts';
import { candidateAllowed, DEFAULT_WEBRTC, parseHostAddresses, parseIceServers } from '../src/transport/webrtc/options.ts';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseMediaOptions(parseCommandLine('serve', argv, env).values, env);

describe('serve media options', () => {
  it('--record-video: the folder and its caps (a folder cap below a file cap is raised); only with the room sender', () => {
    expect(parse(['--webrtc-sender', 'room', '--record-video', '/tmp/v', '--record-video-max-mb', '8', '--record-video-folder-mb', '4']).recordVideo).toEqual({ dir: '/tmp/v', maxFileBytes: 8 * 2 ** 20, maxFolderBytes: 8 * 2 ** 20 });
    expect(parse(['--webrtc-sender', 'room'], { FRAMEHOST_RECORD_VIDEO: '/tmp/e' }).recordVideo).toEqual({ dir: '/tmp/e', maxFileBytes: 256 * 2 ** 20, maxFolderBytes: 4 * 2 ** 30 });
    expect(parse(['--record-video', '/tmp/v']).recordVideo?.dir).toBe('/tmp/v'); // the room is the default sender
    expect(() => parse(['--webrtc-sender', 'wrtc', '--record-video', '/tmp/v'])).toThrow(UsageError);
    expect(parse([]).recordVideo).toBeUndefined();
  });

  it('defaults: switch, WebRTC on, VP8, no ICE servers', () => {
    expect(parse([])).toEqual({ viewers: 'switch', maxViewers: 16, webrtc: { enabled: true, iceServers: [], codec: 'VP8', minBitrateKbps: 100, maxBitrateKbps: null } });
  });

  it('flags: broadcast with a limit, TURN with credentials, codec, bitrate bounds, no WebRTC', () => {
    const o = parse(['--viewers', 'broadcast', '--max-viewers', '8', '--ice-server', 'stun:a.example:3478', '--ice-server', 'turn:b.example:3478', '--ice-username', 'u', '--ice-credential', 'p', '--webrtc-sender', 'wrtc', '--webrtc-codec', 'vp9', '--webrtc-min-kbps', '200', '--webrtc-max-kbps', '900', '--max-peers', '4', '--no-webrtc']);
    expect(o).toEqual({
      viewers: 'broadcast',
      maxViewers: 8,
      webrtc: {
        enabled: false,
        iceServers: [
          { urls: 'stun:a.example:3478', username: 'u', credential: 'p' },
          { urls: 'turn:b.example:3478', username: 'u', credential: 'p' },
        ],
        sender: 'wrtc',
        codec: 'VP9',
        minBitrateKbps: 200,
        maxBitrateKbps: 900,
        maxPeers: 4,
      },
    });
  });

  it('environment, flags winning', () => {
    const env = { FRAMEHOST_VIEWERS: 'broadcast', FRAMEHOST_ICE_SERVERS: '[{"urls":["turn:t.example:3478"],"username":"x","credential":"y"}]', FRAMEHOST_WEBRTC: '0' };
    const o = parse([], env);
    expect(o.viewers).toBe('broadcast');
    expect(o.webrtc?.enabled).toBe(false);
    expect(o.webrtc?.iceServers).toEqual([{ urls: ['turn:t.example:3478'], username: 'x', credential: 'y' }]);
    expect(parse(['--viewers', 'switch'], env).viewers).toBe('switch');
  });

  it('ICE host addresses: flag, environment, validation, and which candidates they let through', () => {
    expect(parse(['--ice-host-addresses', '127.0.0.1, ::1']).webrtc?.iceHostAddresses).toEqual(['127.0.0.1', '::1']);
    expect(parse([], { FRAMEHOST_ICE_HOST_ADDRESSES: '127.0.0.1' }).webrtc?.iceHostAddresses).toEqual(['127.0.0.1']);
    expect(parse(['--ice-host-addresses', '10.0.0.1'], { FRAMEHOST_ICE_HOST_ADDRESSES: '127.0.0.1' }).webrtc?.iceHostAddresses).toEqual(['10.0.0.1']);
    expect(() => parse(['--ice-host-addresses', 'localhost'])).toThrow(/not an IP address/);
    expect(parseHostAddresses('')).toEqual([]);
    const host = (address: string): string => `candidate:1510613869 1 udp 2122063615 ${address} 36066 typ host generation 0`;
    expect(candidateAllowed(host('127.0.0.1'), ['127.0.0.1'])).toBe(true);
    expect(candidateAllowed(host('192.0.2.2'), ['127.0.0.1'])).toBe(false);
    expect(candidateAllowed(`a=${host('::1')}`, ['127.0.0.1'])).toBe(false);
    expect(candidateAllowed(host('192.0.2.2'), [])).toBe(true);
    // Server-reflexive and relay candidates come from the configured STUN/TURN servers: kept.
    expect(candidateAllowed('candidate:9 1 udp 1686052607 203.0.113.7 50000 typ srflx raddr 192.0.2.2 rport 36066', ['127.0.0.1'])).toBe(true);
  });

  it('the sender: room by default, wrtc by flag or environment, nothing else; VP9 and AV1 only on wrtc', () => {
    expect(parse([]).webrtc?.sender).toBeUndefined(); // the default of src/transport/webrtc/options.ts: room
    expect(DEFAULT_WEBRTC.sender).toBe('room');
    expect(parse(['--webrtc-sender', 'wrtc']).webrtc?.sender).toBe('wrtc');
    expect(parse([], { FRAMEHOST_WEBRTC_SENDER: 'wrtc' }).webrtc?.sender).toBe('wrtc');
    expect(() => parse(['--webrtc-codec', 'VP9'])).toThrow(/needs --webrtc-sender wrtc/);
    expect(() => parse(['--webrtc-sender', 'gstreamer'])).toThrow(/wrtc or room/);
  });

  it('mistakes are usage errors', () => {
    expect(() => parse(['--viewers', 'many'])).toThrow(UsageError);
    expect(() => parse(['--max-viewers', '3'])).toThrow(/needs --viewers broadcast/);
    expect(() => parse(['--ice-server', 'http://x'])).toThrow(/not a stun: or turn: URL/);
    expect(() => parse(['--webrtc-codec', 'theora'])).toThrow(UsageError);
    expect(() => parse(['--webrtc-min-kbps', '900', '--webrtc-max-kbps', '100'])).toThrow(UsageError);
    expect(parseIceServers('[1]')).toMatch(/each entry/);
    expect(parseIceServers('[{')).toMatch(/invalid JSON/);
  });
});
