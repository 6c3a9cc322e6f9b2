/**
 * The session journal (`--record DIR`, `createRuntime({ record })`): one JSONL file per session
 * (format.ts) with what replay needs to run the session again: the model and its options, each
 * command at the point the worker applied it, each input frame and where the loop read it, the
 * model's messages, hashes of every Nth frame and of the last, and the end.
 *
 * Bounded twice: a session's file stops growing at `maxSessionBytes` (a `truncated` line, then
 * only the end), and before a new file is opened the oldest journals are removed until the
 * folder plus one full session fits in `maxFolderBytes`. Only files named like journals are
 * ever removed. Writing is asynchronous (file-writer.ts); the runtime's frame path only
 * formats lines and, every Nth frame, hashes one.
 */
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ErrorValue } from '../errors.ts';
import type { LoopPoint } from '../actors/loop-points.ts';
import type { EndReason } from '../machines/types.ts';
import type { InputTrackSpec, JsonValue, PixelFormat } from '../model/api.ts';
import { FileWriter } from './file-writer.ts';
import { hashBytes, isHashed, JOURNAL_FORMAT, type JournalLine } from './format.ts';

export interface JournalOptions {
  /** Folder of the journal files (created if missing). */
  readonly dir: string;
  /** Keep input frames' bytes (base64), not only their hashes: needed to replay input tracks. */
  readonly recordInputs?: boolean;
  /** Cap on one session's file (default 64 MiB). */
  readonly maxSessionBytes?: number;
  /** Cap on the folder's journals (default 1 GiB); the oldest are removed first. */
  readonly maxFolderBytes?: number;
  /** Hash every Nth frame (default 10); the last frame is always hashed. */
  readonly hashEvery?: number;
}

export const DEFAULT_JOURNAL = {
  maxSessionBytes: 64 * 1024 * 1024,
  maxFolderBytes: 1024 * 1024 * 1024,
  hashEvery: 10,
} as const;

/** Room kept under the session cap for the lines written after it is reached (truncated, last frame, end). */
const TAIL_RESERVE = 4096;

const JOURNAL_FILE = /^session-\d{8}T\d{9}Z-[0-9a-f]{8}\.jsonl$/;

export interface JournalWritten {
  readonly sessionId: string;
  readonly path: string;
  /** Bytes written; 0 when the file could not be written at all. */
  readonly bytes: number;
  readonly truncated: boolean;
  readonly failed: boolean;
}

export interface RecorderModel {
  readonly name: string;
  readonly version: string;
  readonly source: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, InputTrackSpec>>;
}

export interface FrameFacts {
  readonly seq: number;
  readonly count: number;
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  readonly data: Uint8Array;
}

export interface SessionJournal {
  readonly path: string;
  command(requestId: string, name: string, args: Readonly<Record<string, unknown>>): void;
  commandFailed(requestId: string, error: ErrorValue): void;
  points(points: readonly LoopPoint[]): void;
  input(track: string, seq: number, data: Uint8Array, t: number, at: number): void;
  message(data: JsonValue, at: number): void;
  frame(frame: FrameFacts): void;
  checks(n: number, stopCheck: number | undefined): void;
  /** Write the end and close the file. Never rejects. */
  finish(end: { reason: EndReason; error?: ErrorValue; frames: number; dropped: number }): Promise<JournalWritten>;
}

export interface Recorder {
  open(sessionId: string): SessionJournal;
  /** Resolves when every journal opened so far is closed. */
  idle(): Promise<void>;
}

function fileName(started: Date, sessionId: string): string {
  const stamp = started.toISOString().replace(/[-:.]/g, ''); // 20261201T101500123Z
  const id = sessionId.replace(/[^0-9a-f]/gi, '').slice(0, 8).toLowerCase().padEnd(8, '0');
  return `session-${stamp}-${id}.jsonl`;
}

/** Remove the oldest journals until the folder plus `room` bytes fits in `cap`. */
async function prune(dir: string, cap: number, room: number, log: Logger): Promise<void> {
  const names = (await readdir(dir)).filter((n) => JOURNAL_FILE.test(n)).sort();
  const sizes = await Promise.all(names.map(async (n) => (await stat(join(dir, n)).catch(() => null))?.size ?? 0));
  let total = sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; i < names.length && total + room > cap; i++) {
    try {
      await unlink(join(dir, names[i]!));
      total -= sizes[i]!;
      log.info({ file: names[i], bytes: sizes[i] }, 'journal: removed the oldest journal (folder cap)');
    } catch (err) {
      log.warn({ err, file: names[i] }, 'journal: could not remove an old journal');
    }
  }
}

export function checkJournalOptions(options: JournalOptions): void {
  const s = options.maxSessionBytes ?? DEFAULT_JOURNAL.maxSessionBytes;
  const f = options.maxFolderBytes ?? DEFAULT_JOURNAL.maxFolderBytes;
  const n = options.hashEvery ?? DEFAULT_JOURNAL.hashEvery;
  if (typeof options.dir !== 'string' || options.dir === '') throw new RangeError('record.dir must be a folder path');
  if (!Number.isInteger(s) || s < 2 * TAIL_RESERVE) throw new RangeError(`record.maxSessionBytes must be an integer ≥ ${2 * TAIL_RESERVE}`);
  if (!Number.isInteger(f) || f < s) throw new RangeError('record.maxFolderBytes must be an integer ≥ maxSessionBytes');
  if (!Number.isInteger(n) || n < 1) throw new RangeError('record.hashEvery must be an integer ≥ 1');
}

export function createRecorder(options: JournalOptions, model: RecorderModel, log: Logger): Recorder {
  checkJournalOptions(options);
  const maxSession = options.maxSessionBytes ?? DEFAULT_JOURNAL.maxSessionBytes;
  const maxFolder = options.maxFolderBytes ?? DEFAULT_JOURNAL.maxFolderBytes;
  const hashEvery = options.hashEvery ?? DEFAULT_JOURNAL.hashEvery;
  const recordInputs = options.recordInputs === true;
  const jlog = log.child({ component: 'journal' });
  // Sessions open one after another; the folder work of one waits for the last one's.
  let folderWork: Promise<void> = Promise.resolve();
  const closing = new Set<Promise<unknown>>();

  function open(sessionId: string): SessionJournal {
    const started = new Date();
    const t0 = performance.now();
    const ms = (): number => Math.round(performance.now() - t0);
    const path = join(options.dir, fileName(started, sessionId));
    const ready = folderWork.then(async () => {
      await mkdir(options.dir, { recursive: true });
      await prune(options.dir, maxFolder, maxSession, jlog);
    });
    folderWork = ready.catch(() => undefined);
    const file = new FileWriter(path, jlog, ready);
    let bytes = 0;
    let truncated = false;
    let frames = 0;
    let checks: number | undefined;
    let stopCheck: number | undefined;
    let last: FrameFacts | null = null;
    // Accepted commands by request id, until the worker reports where it applied them.
    const pending = new Map<string, { n: number; name: string; args: Readonly<Record<string, unknown>> }>();
    const numbers = new Map<string, number>();
    let commands = 0;

    let unwritable = false;
    const put = (line: JournalLine, tail = false): void => {
      let text: string;
      try {
        text = `${JSON.stringify(line)}\n`;
      } catch (err) {
        // A model's message that JSON cannot hold (a BigInt, a cycle): skip it, never throw into the session.
        if (!unwritable) jlog.warn({ err, sessionId, line: line.type }, 'journal: a line could not be written as JSON and was skipped');
        unwritable = true;
        return;
      }
      const size = Buffer.byteLength(text);
      if (!tail) {
        if (truncated) return;
        if (bytes + size > maxSession - TAIL_RESERVE) {
          truncated = true;
          const note = `${JSON.stringify({ type: 'truncated', at: frames, bytes, ms: ms() } satisfies JournalLine)}\n`;
          bytes += Buffer.byteLength(note);
          file.write(note);
          jlog.warn({ sessionId, bytes, maxSessionBytes: maxSession }, 'journal: session size cap reached; the rest of the session is not recorded');
          return;
        }
      } else if (bytes + size > maxSession) return;
      bytes += size;
      file.write(text);
    };

    const frameLine = (f: FrameFacts, isLast: boolean): JournalLine => ({
      type: 'frame',
      seq: f.seq,
      count: f.count,
      width: f.width,
      height: f.height,
      format: f.format,
      hash: hashBytes(f.data),
      ...(isLast ? { last: true as const } : {}),
    });

    put({
      type: 'session',
      format: JOURNAL_FORMAT,
      sessionId,
      startedAt: started.toISOString(),
      model: { name: model.name, version: model.version, source: model.source },
      options: model.options,
      inputs: model.inputs,
      hashEvery,
      recordInputs,
      maxSessionBytes: maxSession,
    });

    return {
      path,
      command(requestId, name, args) {
        const n = ++commands;
        pending.set(requestId, { n, name, args });
        numbers.set(requestId, n);
      },
      commandFailed(requestId, error) {
        const n = numbers.get(requestId);
        if (n !== undefined) put({ type: 'command.failed', n, error, ms: ms() });
      },
      points(points) {
        for (const p of points) {
          if (p.kind === 'read') {
            put({ type: 'read', track: p.track, seq: p.seq, read: p.read, at: p.at });
            continue;
          }
          const c = pending.get(p.requestId);
          if (!c) continue; // a command of another session (or from replay)
          pending.delete(p.requestId);
          put({ type: 'command', n: c.n, name: c.name, args: c.args, at: p.at, check: p.check, ms: ms() });
        }
      },
      input(track, seq, data, t, at) {
        if (truncated) return; // no hashing or base64 for a line that would be dropped
        const line: JournalLine = { type: 'input', track, seq, at, t, hash: hashBytes(data), ms: ms() };
        put(recordInputs ? { ...line, bytes: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') } : line);
      },
      message(data, at) {
        put({ type: 'message', at, data, ms: ms() });
      },
      frame(f) {
        frames = f.seq + f.count;
        last = f;
        if (!truncated && isHashed(f.seq, f.count, hashEvery)) put(frameLine(f, false));
      },
      checks(n, stop) {
        checks = n;
        stopCheck = stop;
      },
      async finish(end) {
        for (const c of pending.values()) put({ type: 'command', n: c.n, name: c.name, args: c.args, applied: false, ms: ms() });
        pending.clear();
        if (last) put(frameLine(last, true), true);
        put({ type: 'end', reason: end.reason, ...(end.error ? { error: end.error } : {}), frames: end.frames, dropped: end.dropped, ...(checks !== undefined ? { checks } : {}), ...(stopCheck !== undefined ? { stopCheck } : {}), ms: ms() }, true);
        last = null;
        const done = file.close();
        closing.add(done);
        await done;
        closing.delete(done);
        return { sessionId, path, bytes: file.written, truncated, failed: file.failed };
      },
    };
  }

  return {
    open,
    async idle() {
      await Promise.all([...closing]);
    },
  };
}
