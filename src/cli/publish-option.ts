/**
 * `--publish URL` (FRAMEHOST_PUBLISH) and `--publish-token TOKEN` (FRAMEHOST_PUBLISH_TOKEN): where
 * the room's stream also goes (src/media/publish-target.ts says the URL forms: Janus or WHIP). It
 * sends the room's encode, so it needs the room sender: libwebrtc (wrtc) and libdatachannel were
 * not cleared to share a process.
 */
import { parsePublishTarget, type PublishTarget } from '../media/publish-target.ts';
import { UsageError } from '../util/option-table.ts';

export function parsePublishOption(text: string | undefined, token: string | undefined, sender: string): PublishTarget | null {
  if (text === undefined) {
    if (token !== undefined) throw new UsageError('--publish-token needs --publish whip+http://… (or whip+https://…)');
    return null;
  }
  const target = parsePublishTarget(text, token ?? null);
  if (typeof target === 'string') throw new UsageError(target);
  if (sender !== 'room') throw new UsageError('--publish sends the encode-once room\'s stream: leave out --webrtc-sender wrtc (wrtc and node-datachannel do not share a process)');
  return target;
}
