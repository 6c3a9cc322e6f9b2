/**
 * The session journal's file format: one JSON object per line, the first a `session` header,
 * the last an `end` (unless the process died first). Shared by the writer (recorder.ts) and
 * replay (replay-script.ts); docs/journals.md documents it for people who read the files.
 *
 * Points in the loop (`at`, `check`, `read`) are explained in src/actors/loop-points.ts.
 * No tokens, owner ids or network addresses are ever written.
 */
import { createHash } from 'node:crypto';
import type { ErrorValue } from '../errors.ts';
import type { EndReason } from '../machines/types.ts';
import type { InputTrackSpec, JsonValue, PixelFormat } from '../model/api.ts';

export const JOURNAL_FORMAT = 1;

export interface SessionHeader {
  readonly type: 'session';
  readonly format: typeof JOURNAL_FORMAT;
  readonly sessionId: string;
  /** ISO time the session began. */
  readonly startedAt: string;
  /** `source`: how the model was named to framehost (a built-in name, an absolute path or a URL). */
  readonly model: { readonly name: string; readonly version: string; readonly source: string };
  readonly options: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, InputTrackSpec>>;
  /** Every frame whose block holds a multiple of this index is hashed, and the last one. */
  readonly hashEvery: number;
  /** Whether input frames' bytes are in the file (else only their hashes). */
  readonly recordInputs: boolean;
  readonly maxSessionBytes: number;
}

export type JournalLine =
  | SessionHeader
  /** A command as the worker applied it: `n` counts accepted commands (1, 2, …). */
  | { readonly type: 'command'; readonly n: number; readonly name: string; readonly args: Readonly<Record<string, unknown>>; readonly at: number; readonly check: number; readonly ms: number }
  /** Accepted but never applied (the loop ended before its next shouldStop()). */
  | { readonly type: 'command'; readonly n: number; readonly name: string; readonly args: Readonly<Record<string, unknown>>; readonly applied: false; readonly ms: number }
  | { readonly type: 'command.failed'; readonly n: number; readonly error: ErrorValue; readonly ms: number }
  /** An input frame as it arrived (`at`: frames emitted by then); `bytes` (base64) with recordInputs. */
  | { readonly type: 'input'; readonly track: string; readonly seq: number; readonly at: number; readonly t: number; readonly hash: string; readonly bytes?: string; readonly ms: number }
  /** The loop read input frame `seq` of `track` at its `read`-th read. */
  | { readonly type: 'read'; readonly track: string; readonly seq: number; readonly read: number; readonly at: number }
  | { readonly type: 'message'; readonly at: number; readonly data: JsonValue; readonly ms: number }
  | { readonly type: 'frame'; readonly seq: number; readonly count: number; readonly width: number; readonly height: number; readonly format: PixelFormat; readonly hash: string; readonly last?: true }
  /** The size cap was reached: nothing after this point but the end was written. */
  | { readonly type: 'truncated'; readonly at: number; readonly bytes: number; readonly ms: number }
  | {
      readonly type: 'end';
      readonly reason: EndReason;
      readonly error?: ErrorValue;
      readonly frames: number;
      readonly dropped: number;
      /** shouldStop() calls of the loop; absent when the worker died. */
      readonly checks?: number;
      /** The shouldStop() call that first returned true (absent: the loop ended another way). */
      readonly stopCheck?: number;
      readonly ms: number;
    };

/**
 * A frame's or an input's fingerprint: SHA-1 in hex. It detects divergence, it does not
 * authenticate anything, and it is the fastest of Node's hashes here (about 0.25 ms for a
 * 256×256 RGBA frame against 0.35-0.5 ms for SHA-256).
 */
export function hashBytes(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

/** Whether the frame block [seq, seq + count) holds an index the journal hashes. */
export function isHashed(seq: number, count: number, every: number): boolean {
  return Math.ceil(seq / every) * every < seq + count;
}
