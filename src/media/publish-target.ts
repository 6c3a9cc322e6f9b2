/**
 * `--publish URL`'s two forms: a Janus VideoRoom over its REST API (src/media/janus/target.ts)
 * or a WHIP endpoint (src/media/whip/target.ts), told apart by the scheme.
 */
import { parseJanusTarget, type JanusTarget } from './janus/target.ts';
import { parseWhipTarget, type WhipTarget } from './whip/target.ts';

export type PublishTarget = JanusTarget | WhipTarget;

/** The target, or a message for a usage error. The token is WHIP's only: Janus's REST API here takes none. */
export function parsePublishTarget(text: string, token: string | null): PublishTarget | string {
  if (/^whip\+https?:/i.test(text)) return parseWhipTarget(text, token);
  if (token !== null) return '--publish-token is for a WHIP endpoint (whip+http:// or whip+https://), not Janus';
  return parseJanusTarget(text);
}
