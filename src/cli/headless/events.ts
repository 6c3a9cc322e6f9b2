/** The JSON lines `framehost headless` writes on stdout, one per event. */
import type { ErrorValue } from '../../errors.ts';
import type { Phase } from '../../machines/phase.ts';
import type { EndReason, ModelInfo } from '../../machines/types.ts';
import type { JsonValue, PixelFormat } from '../../model/api.ts';

export type HeadlessEvent =
  | { event: 'ready'; model: ModelInfo; commands: string[] }
  | { event: 'state'; state: Phase; from?: Phase }
  | { event: 'session.began'; sessionId: string }
  // `inputs`: frames fed from --input files in this session (present only with --input).
  | { event: 'session.ended'; sessionId: string; reason: EndReason; error?: ErrorValue; frames: number; dropped: number; inputs?: number }
  | { event: 'frame'; index: number; file: string; sessionId: string; seq: number; width: number; height: number; format: PixelFormat }
  | { event: 'message'; sessionId: string; data: JsonValue }
  | { event: 'accepted'; line: number; type: 'start'; sessionId: string }
  | { event: 'accepted'; line: number; type: 'stop' }
  | { event: 'accepted'; line: number; type: 'command'; name: string; requestId: string }
  | { event: 'waited'; line: number; frames: number; written: number }
  | { event: 'error'; line?: number; type?: string; requestId?: string; track?: string; file?: string; error: ErrorValue };

/** A printer of events as JSON lines on `stream`. */
export function jsonLines(stream: NodeJS.WritableStream): (event: HeadlessEvent) => void {
  return (event) => void stream.write(`${JSON.stringify(event)}\n`);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
