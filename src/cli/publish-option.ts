/**
 * `--publish URL` (FRAMEHOST_PUBLISH): where the room's stream also goes (src/media/janus/target.ts
 * says the URL form). It sends the room's encode, so it needs the room sender: libwebrtc (wrtc) and
 * libdatachannel were not cleared to share a process.
 */
import { parseJanusTarget, type JanusTarget } from '../media/janus/target.ts';
import { UsageError } from '../util/option-table.ts';

export function parsePublishOption(text: string | undefined, sender: string): JanusTarget | null {
  if (text === undefined) return null;
  const target = parseJanusTarget(text);
  if (typeof target === 'string') throw new UsageError(target);
  if (sender !== 'room') throw new UsageError('--publish sends the encode-once room\'s stream: leave out --webrtc-sender wrtc (wrtc and node-datachannel do not share a process)');
  return target;
}
