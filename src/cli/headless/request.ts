/** One input line of `framehost headless` to a request (start, command, stop, wait). */
import { errorValue, type Result } from '../../errors.ts';

const MAX_WAIT_FRAMES = 1_000_000;

export type HeadlessRequest =
  | { readonly type: 'start' }
  | { readonly type: 'stop' }
  // Name and args are checked by the runtime against the model's schemas (unknown_command, invalid_args).
  | { readonly type: 'command'; readonly name: unknown; readonly args: unknown }
  | { readonly type: 'wait'; readonly frames: number };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One input line to a request, or why it is not one. Pure. */
export function parseRequest(text: string): Result<{ request: HeadlessRequest }> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: errorValue('bad_request', `not JSON (${err instanceof Error ? err.message : String(err)})`) };
  }
  if (!isRecord(value)) return { ok: false, error: errorValue('bad_request', 'a request must be a JSON object') };
  switch (value.type) {
    case 'start':
    case 'stop':
      return { ok: true, request: { type: value.type } };
    case 'command':
      return { ok: true, request: { type: 'command', name: value.name, args: value.args ?? {} } };
    case 'wait': {
      const frames = value.frames;
      if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < 1 || frames > MAX_WAIT_FRAMES) {
        return { ok: false, error: errorValue('bad_request', `wait needs frames, an integer in 1..${MAX_WAIT_FRAMES}`) };
      }
      return { ok: true, request: { type: 'wait', frames } };
    }
    default:
      return { ok: false, error: errorValue('bad_request', `unknown type ${JSON.stringify(value.type) ?? 'undefined'}; expected start, command, stop or wait`) };
  }
}
