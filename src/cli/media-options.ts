/**
 * `serve`'s media options: who watches (switch or broadcast) and how WebRTC connects (ICE
 * servers, codec, bitrate bounds). Flags win over the environment, then the defaults of
 * src/transport/options.ts and src/transport/webrtc/options.ts.
 */
import type { TransportOptions } from '../transport/options.ts';
import { DEFAULT_VIDEO_RECORD, type VideoRecordOptions } from '../media/video-recorder.ts';
import { DEFAULT_WEBRTC, parseHostAddresses, parseIceServers, type WebRtcOptions } from '../transport/webrtc/options.ts';
import { parsePublishOption } from './publish-option.ts';
import { intOption, stringOption, UsageError, type OptionTable, type OptionValues } from '../util/option-table.ts';

export const MEDIA_OPTIONS = {
  viewers: { type: 'string', valueName: 'MODE', description: 'switch (default: one viewer, a new one takes the stream) or broadcast (spectators) [env FRAMEHOST_VIEWERS]' },
  'max-viewers': { type: 'string', valueName: 'N', description: 'broadcast: viewers at once, the owner watching included (default 16) [env FRAMEHOST_MAX_VIEWERS]' },
  'no-webrtc': { type: 'boolean', description: 'no WebRTC: pages use Socket.IO frames [env FRAMEHOST_WEBRTC=0]' },
  'ice-server': { type: 'string', multiple: true, valueName: 'URL', description: 'STUN/TURN server for WebRTC, e.g. turn:turn.example.com:3478 (repeatable) [env FRAMEHOST_ICE_SERVERS: comma-separated, or a JSON array of { urls, username, credential }]' },
  'ice-username': { type: 'string', valueName: 'NAME', description: 'TURN username for the --ice-server URLs [env FRAMEHOST_ICE_USERNAME]' },
  'ice-credential': { type: 'string', valueName: 'SECRET', description: 'TURN credential for the --ice-server URLs [env FRAMEHOST_ICE_CREDENTIAL]' },
  'ice-host-addresses': { type: 'string', valueName: 'ADDRS', description: 'the only addresses the server offers as ICE host candidates, e.g. 127.0.0.1 (comma-separated; default: every interface) [env FRAMEHOST_ICE_HOST_ADDRESSES]' },
  'webrtc-sender': { type: 'string', valueName: 'NAME', description: 'room (default: one VP8 encode for every viewer; needs the optional node-av) or wrtc (libwebrtc: an encoder per viewer; VP9, AV1) [env FRAMEHOST_WEBRTC_SENDER]' },
  'webrtc-codec': { type: 'string', valueName: 'NAME', description: 'codec to send with: VP8 (default), VP9 or AV1 (what this libwebrtc build encodes; the browser must offer it too) [env FRAMEHOST_WEBRTC_CODEC]' },
  'webrtc-min-kbps': { type: 'string', valueName: 'N', description: 'lowest video bitrate per viewer (default 100) [env FRAMEHOST_WEBRTC_MIN_KBPS]' },
  'webrtc-max-kbps': { type: 'string', valueName: 'N', description: 'highest video bitrate per viewer (default: scaled to the frame, ~1000 at 256², ~2500 at 512²) [env FRAMEHOST_WEBRTC_MAX_KBPS]' },
  publish: { type: 'string', valueName: 'URL', description: "also send the stream to an SFU: a Janus VideoRoom, janus://HOST:PORT[/BASE]/ROOM (REST API, base /janus; janus+https:// for TLS), or a WHIP endpoint (LiveKit, MediaMTX), whip+http://HOST:PORT/PATH or whip+https://…; needs the room sender (the default) [env FRAMEHOST_PUBLISH]" },
  'publish-token': { type: 'string', valueName: 'TOKEN', description: 'bearer token for the --publish WHIP endpoint (Authorization: Bearer) [env FRAMEHOST_PUBLISH_TOKEN]' },
  'max-peers': { type: 'string', valueName: 'N', description: 'WebRTC peer connections on the server (default 32)' },
  'record-video': { type: 'string', valueName: 'DIR', description: "write each session's encoded video into a WebM file in DIR (the room sender's encode, the default: no second encode) [env FRAMEHOST_RECORD_VIDEO]" },
  'record-video-max-mb': { type: 'string', valueName: 'MB', description: `cap on one recording; the file ends there (default ${DEFAULT_VIDEO_RECORD.maxFileBytes / 2 ** 20})` },
  'record-video-folder-mb': { type: 'string', valueName: 'MB', description: `cap on the recordings folder; the oldest go first (default ${DEFAULT_VIDEO_RECORD.maxFolderBytes / 2 ** 20})` },
} as const satisfies OptionTable;

/** `--record-video` and its caps, or undefined without it. A folder cap below a file's is raised to it. */
function recordVideoOptions(v: OptionValues, sender: string): VideoRecordOptions | undefined {
  const dir = stringOption(v, 'record-video');
  const fileMb = intOption(v, 'record-video-max-mb', 1, 1 << 20);
  const folderMb = intOption(v, 'record-video-folder-mb', 1, 1 << 30);
  if (!dir) return undefined;
  if (sender !== 'room') throw new UsageError('--record-video needs the room sender, not --webrtc-sender wrtc (the recording is the room\'s encode)');
  const maxFileBytes = (fileMb ?? DEFAULT_VIDEO_RECORD.maxFileBytes / 2 ** 20) * 2 ** 20;
  return { dir, maxFileBytes, maxFolderBytes: Math.max(maxFileBytes, (folderMb ?? DEFAULT_VIDEO_RECORD.maxFolderBytes / 2 ** 20) * 2 ** 20) };
}

/** What @roamhq/wrtc 0.10's libwebrtc encodes (RTCRtpSender.getCapabilities: no H264). */
const CODECS = ['VP8', 'VP9', 'AV1'];

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

export function parseMediaOptions(values: OptionValues, env: NodeJS.ProcessEnv): Pick<TransportOptions, 'viewers' | 'maxViewers' | 'webrtc' | 'recordVideo'> {
  const v = { ...values };
  v.viewers ??= nonEmpty(env.FRAMEHOST_VIEWERS);
  v['max-viewers'] ??= nonEmpty(env.FRAMEHOST_MAX_VIEWERS);
  v['ice-username'] ??= nonEmpty(env.FRAMEHOST_ICE_USERNAME);
  v['ice-credential'] ??= nonEmpty(env.FRAMEHOST_ICE_CREDENTIAL);
  v['ice-host-addresses'] ??= nonEmpty(env.FRAMEHOST_ICE_HOST_ADDRESSES);
  v['webrtc-codec'] ??= nonEmpty(env.FRAMEHOST_WEBRTC_CODEC);
  v['webrtc-sender'] ??= nonEmpty(env.FRAMEHOST_WEBRTC_SENDER);
  v['webrtc-min-kbps'] ??= nonEmpty(env.FRAMEHOST_WEBRTC_MIN_KBPS);
  v['webrtc-max-kbps'] ??= nonEmpty(env.FRAMEHOST_WEBRTC_MAX_KBPS);
  v['record-video'] ??= nonEmpty(env.FRAMEHOST_RECORD_VIDEO);

  const viewers = stringOption(v, 'viewers') ?? 'switch';
  if (viewers !== 'switch' && viewers !== 'broadcast') throw new UsageError(`--viewers must be switch or broadcast, got ${JSON.stringify(viewers)}`);
  const maxViewers = intOption(v, 'max-viewers', 1, 1000) ?? 16;
  if (v['max-viewers'] !== undefined && viewers !== 'broadcast') throw new UsageError('--max-viewers needs --viewers broadcast');

  const flags = Array.isArray(v['ice-server']) ? (v['ice-server'] as string[]).join(',') : undefined;
  const ice = parseIceServers(flags ?? env.FRAMEHOST_ICE_SERVERS ?? '', stringOption(v, 'ice-username'), stringOption(v, 'ice-credential'));
  if (typeof ice === 'string') throw new UsageError(ice);
  const hosts = parseHostAddresses(stringOption(v, 'ice-host-addresses') ?? '');
  if (typeof hosts === 'string') throw new UsageError(hosts);
  const sender = stringOption(v, 'webrtc-sender') ?? DEFAULT_WEBRTC.sender;
  if (sender !== 'wrtc' && sender !== 'room') throw new UsageError(`--webrtc-sender must be wrtc or room, got ${JSON.stringify(sender)}`);
  const codec = (stringOption(v, 'webrtc-codec') ?? DEFAULT_WEBRTC.codec).toUpperCase();
  if (!CODECS.includes(codec)) throw new UsageError(`--webrtc-codec must be one of ${CODECS.join(', ')}`);
  if (codec !== 'VP8' && sender === 'room') throw new UsageError(`--webrtc-codec ${codec} needs --webrtc-sender wrtc (the room sender encodes VP8)`);
  const minKbps = intOption(v, 'webrtc-min-kbps', 30, 100_000) ?? DEFAULT_WEBRTC.minBitrateKbps;
  const maxKbps = intOption(v, 'webrtc-max-kbps', 30, 100_000) ?? DEFAULT_WEBRTC.maxBitrateKbps;
  if (maxKbps !== null && minKbps > maxKbps) throw new UsageError('--webrtc-min-kbps must not exceed --webrtc-max-kbps');
  const maxPeers = intOption(v, 'max-peers', 1, 10_000);
  const publish = parsePublishOption(stringOption(v, 'publish') ?? nonEmpty(env.FRAMEHOST_PUBLISH), stringOption(v, 'publish-token') ?? nonEmpty(env.FRAMEHOST_PUBLISH_TOKEN), sender);
  const webrtc: Partial<WebRtcOptions> = {
    enabled: v['no-webrtc'] !== true && env.FRAMEHOST_WEBRTC !== '0',
    iceServers: ice,
    ...(hosts.length > 0 ? { iceHostAddresses: hosts } : {}),
    ...(sender !== DEFAULT_WEBRTC.sender ? { sender } : {}),
    codec,
    minBitrateKbps: minKbps,
    maxBitrateKbps: maxKbps,
    ...(maxPeers ? { maxPeers } : {}),
    ...(publish ? { publish } : {}),
  };
  const recordVideo = recordVideoOptions(v, sender);
  return { viewers, maxViewers, webrtc, ...(recordVideo ? { recordVideo } : {}) };
}
