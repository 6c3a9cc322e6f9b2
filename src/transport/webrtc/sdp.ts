/**
 * Session descriptions from clients: checked before libwebrtc sees them (size, shape, the media
 * sections framehost expects), and the server's answer adjusted for the configured codec.
 * Nothing here throws; a problem is a message for a `bad_sdp` error.
 */

export interface MediaSection {
  readonly kind: string;
  readonly mid: string | null;
  /** The offerer's direction: `recvonly` means the browser wants to receive. */
  readonly direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
}

const DIRECTIONS = ['sendrecv', 'sendonly', 'recvonly', 'inactive'] as const;

/** The media sections of an SDP, or why it is not one framehost takes. */
export function checkOffer(sdp: unknown, maxBytes: number): { ok: true; sections: MediaSection[] } | { ok: false; problem: string } {
  if (typeof sdp !== 'string') return { ok: false, problem: 'sdp must be a string' };
  if (sdp.length > maxBytes) return { ok: false, problem: `the sdp is ${sdp.length} bytes; the limit is ${maxBytes}` };
  const lines = sdp.split(/\r?\n/);
  if (lines[0] !== 'v=0') return { ok: false, problem: 'an sdp starts with v=0' };
  const sections: { kind: string; mid: string | null; direction: MediaSection['direction'] }[] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) {
      const kind = line.slice(2).split(' ')[0] ?? '';
      sections.push({ kind, mid: null, direction: 'sendrecv' });
    } else if (sections.length > 0) {
      const s = sections[sections.length - 1]!;
      if (line.startsWith('a=mid:')) s.mid = line.slice(6).trim();
      const d = DIRECTIONS.find((x) => line === `a=${x}`);
      if (d) s.direction = d;
    }
  }
  if (sections.length === 0) return { ok: false, problem: 'the sdp has no media section' };
  if (sections.length > 4) return { ok: false, problem: `${sections.length} media sections; at most 4` };
  if (!sections.some((s) => s.kind === 'video')) return { ok: false, problem: 'the sdp has no video section' };
  return { ok: true, sections };
}

/** The offer's video section the server sends on: one the browser receives on (recvonly or sendrecv). */
export function receiveSection(sections: readonly MediaSection[]): MediaSection | undefined {
  return sections.find((s) => s.kind === 'video' && (s.direction === 'recvonly' || s.direction === 'sendrecv'));
}

export const NO_RECEIVE_SECTION = 'the offer has no video section to receive on (direction recvonly)';

/**
 * Put the payload types of `codec` (and their retransmission types) first on every video
 * m-line of the answer: the answerer sends with the first codec it lists. A codec the offer
 * does not carry leaves the answer as it is (the browser's own order then decides).
 */
export function preferCodec(sdp: string, codec: string): string {
  const lines = sdp.split('\r\n');
  const rtpmap = new Map<string, string>(); // payload type -> codec name
  const apt = new Map<string, string>(); // rtx payload type -> the payload type it repairs
  for (const line of lines) {
    const m = /^a=rtpmap:(\d+) ([^/]+)\//.exec(line);
    if (m) rtpmap.set(m[1]!, m[2]!.toUpperCase());
    const a = /^a=fmtp:(\d+) apt=(\d+)/.exec(line);
    if (a) apt.set(a[1]!, a[2]!);
  }
  const wanted = codec.toUpperCase();
  return lines
    .map((line) => {
      if (!line.startsWith('m=video ')) return line;
      const parts = line.split(' ');
      const head = parts.slice(0, 3);
      const types = parts.slice(3);
      const primary = types.filter((t) => rtpmap.get(t) === wanted);
      if (primary.length === 0) return line;
      const repair = types.filter((t) => primary.includes(apt.get(t) ?? ''));
      const first = [...primary, ...repair];
      return [...head, ...first, ...types.filter((t) => !first.includes(t))].join(' ');
    })
    .join('\r\n');
}

/** The codec an answer sends with: the first payload type of its first video m-line. */
export function sendingCodec(sdp: string): string | null {
  const m = /^m=video \S+ \S+ (\d+)/m.exec(sdp);
  if (!m) return null;
  const r = new RegExp(`^a=rtpmap:${m[1]} ([^/]+)/`, 'm').exec(sdp);
  return r ? r[1]! : null;
}

/**
 * Bound the bitrate the server sends at, in the browser's offer before it is applied: libwebrtc
 * takes a sender's limits from the remote description (`b=AS` on the video section, and the
 * `x-google-min-bitrate`/`x-google-max-bitrate` codec parameters, kbit/s). Setting them on the
 * sender (`setParameters`) fails in wrtc 0.10 with InvalidStateError.
 */
export function boundBitrate(sdp: string, minKbps: number, maxKbps: number): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(eol);
  const out: string[] = [];
  let inVideo = false;
  let videoTypes = new Set<string>();
  const withFmtp = new Set<string>();
  const bounds = `x-google-min-bitrate=${minKbps};x-google-max-bitrate=${maxKbps}`;
  const flush = (): void => {
    // Codecs of the section that had no fmtp line get one.
    for (const pt of videoTypes) if (!withFmtp.has(pt)) out.push(`a=fmtp:${pt} ${bounds}`);
    videoTypes = new Set();
    withFmtp.clear();
  };
  for (const line of lines) {
    if (line.startsWith('m=')) {
      if (inVideo) flush();
      inVideo = line.startsWith('m=video ');
      out.push(line);
      if (inVideo) out.push(`b=AS:${maxKbps}`);
      continue;
    }
    if (inVideo) {
      if (line.startsWith('b=AS:')) continue; // ours replaces the browser's
      const rtpmap = /^a=rtpmap:(\d+) (VP8|VP9|AV1|H264)\//i.exec(line);
      if (rtpmap) videoTypes.add(rtpmap[1]!);
      const fmtp = /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (fmtp && videoTypes.has(fmtp[1]!)) {
        withFmtp.add(fmtp[1]!);
        out.push(`a=fmtp:${fmtp[1]} ${fmtp[2]!.replace(/;?x-google-(min|max)-bitrate=\d+/g, '')};${bounds}`.replace(' ;', ' '));
        continue;
      }
      if (line === '' && videoTypes.size > 0) flush();
    }
    out.push(line);
  }
  if (inVideo) {
    // The last section: its new fmtp lines go before the trailing empty line.
    const trailing = out.length > 0 && out[out.length - 1] === '' ? out.pop() : undefined;
    flush();
    if (trailing !== undefined) out.push(trailing);
  }
  return out.join(eol);
}
