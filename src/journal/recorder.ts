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
import { CappedLines, TAIL_RESERVE } from './capped-lines.ts';

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
  return new FolderRecorder(options, model, log.child({ component: 'journal' }));
}

/** The journals of one folder: opens a file per session, keeps the folder under its cap, waits for files to close. */
class FolderRecorder implements Recorder {
  private readonly maxSession: number;
  private readonly maxFolder: number;
  /** Sessions open one after another; the folder work of one waits for the last one's. */
  private folderWork: Promise<void> = Promise.resolve();
  private readonly closing = new Set<Promise<unknown>>();

  constructor(
    private readonly options: JournalOptions,
    private readonly model: RecorderModel,
    private readonly log: Logger,
  ) {
    this.maxSession = options.maxSessionBytes ?? DEFAULT_JOURNAL.maxSessionBytes;
    this.maxFolder = options.maxFolderBytes ?? DEFAULT_JOURNAL.maxFolderBytes;
  }

  open(sessionId: string): SessionJournal {
    const { dir } = this.options;
    const started = new Date();
    const ready = this.folderWork.then(async () => {
      await mkdir(dir, { recursive: true });
      await prune(dir, this.maxFolder, this.maxSession, this.log);
    });
    this.folderWork = ready.catch(() => undefined);
    const file = new FileWriter(join(dir, fileName(started, sessionId)), this.log, ready);
    const settings = { hashEvery: this.options.hashEvery ?? DEFAULT_JOURNAL.hashEvery, recordInputs: this.options.recordInputs === true, maxSession: this.maxSession };
    return new SessionFile(sessionId, started, file, settings, this.log, (done) => this.track(done)).begin(this.model);
  }

  /** Count a file's closing until it is done, for idle(). */
  private async track(done: Promise<unknown>): Promise<void> {
    this.closing.add(done);
    await done;
    this.closing.delete(done);
  }

  async idle(): Promise<void> {
    await Promise.all([...this.closing]);
  }
}

interface SessionFileSettings {
  readonly hashEvery: number;
  readonly recordInputs: boolean;
  readonly maxSession: number;
}

interface PendingCommand {
  readonly n: number;
  readonly name: string;
  readonly args: Readonly<Record<string, unknown>>;
}

/** One session's journal file: its lines as the session goes, the commands until applied, the end. */
class SessionFile implements SessionJournal {
  readonly path: string;
  private readonly t0 = performance.now();
  private readonly lines: CappedLines;
  /** Frames emitted so far (the `at` of a `truncated` line). */
  private frames = 0;
  private checkCount: number | undefined;
  private stopCheck: number | undefined;
  private last: FrameFacts | null = null;
  /** Accepted commands by request id, until the worker reports where it applied them. */
  private readonly pending = new Map<string, PendingCommand>();
  private readonly numbers = new Map<string, number>();
  private commands = 0;

  constructor(
    private readonly sessionId: string,
    private readonly started: Date,
    private readonly file: FileWriter,
    private readonly settings: SessionFileSettings,
    log: Logger,
    private readonly closing: (done: Promise<unknown>) => Promise<void>,
  ) {
    this.path = file.path;
    this.lines = new CappedLines(file, settings.maxSession, log, sessionId, () => ({ at: this.frames, ms: this.ms() }));
  }

  private ms(): number {
    return Math.round(performance.now() - this.t0);
  }

  private put(line: JournalLine, tail = false): void {
    this.lines.put(line, tail);
  }

  /** Writes the first line: the session, its model and the journal's settings. */
  begin(model: RecorderModel): this {
    const { hashEvery, recordInputs, maxSession } = this.settings;
    this.put({
      type: 'session',
      format: JOURNAL_FORMAT,
      sessionId: this.sessionId,
      startedAt: this.started.toISOString(),
      model: { name: model.name, version: model.version, source: model.source },
      options: model.options,
      inputs: model.inputs,
      hashEvery,
      recordInputs,
      maxSessionBytes: maxSession,
    });
    return this;
  }

  command(requestId: string, name: string, args: Readonly<Record<string, unknown>>): void {
    const n = ++this.commands;
    this.pending.set(requestId, { n, name, args });
    this.numbers.set(requestId, n);
  }

  commandFailed(requestId: string, error: ErrorValue): void {
    const n = this.numbers.get(requestId);
    if (n !== undefined) this.put({ type: 'command.failed', n, error, ms: this.ms() });
  }

  points(points: readonly LoopPoint[]): void {
    for (const p of points) {
      if (p.kind === 'read') {
        this.put({ type: 'read', track: p.track, seq: p.seq, read: p.read, at: p.at });
        continue;
      }
      const c = this.pending.get(p.requestId);
      if (!c) continue; // a command of another session (or from replay)
      this.pending.delete(p.requestId);
      this.put({ type: 'command', n: c.n, name: c.name, args: c.args, at: p.at, check: p.check, ms: this.ms() });
    }
  }

  input(track: string, seq: number, data: Uint8Array, t: number, at: number): void {
    if (this.lines.truncated) return; // no hashing or base64 for a line that would be dropped
    const line: JournalLine = { type: 'input', track, seq, at, t, hash: hashBytes(data), ms: this.ms() };
    this.put(this.settings.recordInputs ? { ...line, bytes: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') } : line);
  }

  message(data: JsonValue, at: number): void {
    this.put({ type: 'message', at, data, ms: this.ms() });
  }

  frame(f: FrameFacts): void {
    this.frames = f.seq + f.count;
    this.last = f;
    if (!this.lines.truncated && isHashed(f.seq, f.count, this.settings.hashEvery)) this.put(frameLine(f, false));
  }

  checks(n: number, stopCheck: number | undefined): void {
    this.checkCount = n;
    this.stopCheck = stopCheck;
  }

  async finish(end: { reason: EndReason; error?: ErrorValue; frames: number; dropped: number }): Promise<JournalWritten> {
    for (const c of this.pending.values()) this.put({ type: 'command', n: c.n, name: c.name, args: c.args, applied: false, ms: this.ms() });
    this.pending.clear();
    if (this.last) this.put(frameLine(this.last, true), true);
    const { checkCount: checks, stopCheck } = this;
    this.put({ type: 'end', reason: end.reason, ...(end.error ? { error: end.error } : {}), frames: end.frames, dropped: end.dropped, ...(checks !== undefined ? { checks } : {}), ...(stopCheck !== undefined ? { stopCheck } : {}), ms: this.ms() }, true);
    this.last = null;
    await this.closing(this.file.close());
    return { sessionId: this.sessionId, path: this.path, bytes: this.file.written, truncated: this.lines.truncated, failed: this.file.failed };
  }
}

function frameLine(f: FrameFacts, isLast: boolean): JournalLine {
  return {
    type: 'frame',
    seq: f.seq,
    count: f.count,
    width: f.width,
    height: f.height,
    format: f.format,
    hash: hashBytes(f.data),
    ...(isLast ? { last: true as const } : {}),
  };
}
