/**
 * Recordings (`--record-video DIR`): each session's stream, as the media room encodes it for its
 * viewers, goes into one WebM file (src/media/webm.ts) while it is sent: no second encode. While
 * a recording runs the room encodes every frame of the session, watched or not; a viewer's
 * delivery of the same frame reuses that encode. The file starts at a keyframe and is closed
 * (sizes and duration written) when the session ends, whatever the reason, a crash included.
 *
 * Caps as the journal has them: a file stops taking frames at `maxFileBytes` (it stays a valid,
 * shorter recording); before a new file the oldest recordings are removed until the folder plus
 * one full file fits in `maxFolderBytes`. Only files named like recordings are counted or removed.
 */
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/runtime.ts';
import type { EncodedVideo, MediaRoom } from './room.ts';
import { WebmWriter } from './webm.ts';

export interface VideoRecordOptions {
  readonly dir: string;
  /** One recording's cap (bytes); the file ends there and stays valid. */
  readonly maxFileBytes: number;
  /** The folder's cap (bytes, ≥ maxFileBytes); the oldest recordings go first. */
  readonly maxFolderBytes: number;
}

export const DEFAULT_VIDEO_RECORD = { maxFileBytes: 256 * 2 ** 20, maxFolderBytes: 4 * 2 ** 30 } as const;

/** Why the options cannot be used, or null. */
export function videoRecordProblem(o: VideoRecordOptions): string | null {
  if (typeof o.dir !== 'string' || o.dir === '') return 'recordVideo.dir must be a folder path';
  if (!Number.isInteger(o.maxFileBytes) || o.maxFileBytes < 64 * 1024) return 'recordVideo.maxFileBytes must be an integer ≥ 65536';
  if (!Number.isInteger(o.maxFolderBytes) || o.maxFolderBytes < o.maxFileBytes) return 'recordVideo.maxFolderBytes must be an integer ≥ maxFileBytes';
  return null;
}

const RECORDING_FILE = /^session-[0-9TZ-]+-[A-Za-z0-9-]+\.webm$/;

export interface RecordingEntry {
  readonly name: string;
  readonly bytes: number;
  /** Last written, ms since the epoch. */
  readonly modified: number;
}

/** The folder's recordings, oldest first (what `GET /recordings` lists). */
export async function listRecordings(dir: string): Promise<RecordingEntry[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => RECORDING_FILE.test(n)).sort();
  const entries = await Promise.all(
    names.map(async (name) => {
      const s = await stat(join(dir, name)).catch(() => null);
      return s ? { name, bytes: s.size, modified: Math.round(s.mtimeMs) } : null;
    }),
  );
  return entries.filter((e): e is RecordingEntry => e !== null);
}

/** Remove the oldest recordings until the folder plus `room` bytes fits in `cap`. Synchronous: once per session. */
function prune(dir: string, cap: number, room: number, log: Logger): void {
  const names = readdirSync(dir).filter((n) => RECORDING_FILE.test(n)).sort();
  const sizes = names.map((n) => statSync(join(dir, n), { throwIfNoEntry: false })?.size ?? 0);
  let total = sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; i < names.length && total + room > cap; i++) {
    try {
      unlinkSync(join(dir, names[i]!));
      total -= sizes[i]!;
      log.info({ file: names[i], bytes: sizes[i] }, 'recording: removed the oldest recording (folder cap)');
    } catch (err) {
      log.warn({ err, file: names[i] }, 'recording: could not remove an old recording');
    }
  }
}

/** One session's file: opened at its first keyframe, closed once. */
class SessionVideo {
  private writer: WebmWriter | null = null;
  private startedAt = 0;
  capped = false;

  constructor(
    readonly sessionId: string,
    readonly path: string,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  take(e: EncodedVideo): void {
    if (this.capped) return;
    if (!this.writer) {
      if (!e.key) return; // a recording cannot start on a delta frame; the room was asked for a key
      this.writer = WebmWriter.create(this.path, e.width, e.height);
      this.startedAt = performance.now();
    }
    if (this.writer.bytes + e.data.length + 32 > this.maxBytes) {
      this.capped = true;
      this.log.warn({ sessionId: this.sessionId, bytes: this.writer.bytes }, 'recording: file cap reached; the rest of the session is not recorded');
      return;
    }
    try {
      this.writer.write(e.data, performance.now() - this.startedAt, e.key);
    } catch (err) {
      // A full disk must not reach the encoder's loop (and the viewers): the recording stops here.
      this.capped = true;
      this.log.error({ err, sessionId: this.sessionId }, 'recording: write failed; the rest of the session is not recorded');
    }
  }

  /** Close the file; its frames and bytes (null when no frame came). */
  close(): { frames: number; bytes: number } | null {
    const w = this.writer;
    if (!w) return null;
    w.close();
    return { frames: w.frames, bytes: w.bytes };
  }
}

/** Records each session of the runtime from the media room; `close()` ends the one running. */
export class VideoRecorder {
  private current: { video: SessionVideo; untap: () => void } | null = null;
  private readonly offs: (() => void)[];

  constructor(
    private readonly options: VideoRecordOptions,
    private readonly room: MediaRoom,
    runtime: Pick<Runtime, 'on'>,
    private readonly log: Logger,
  ) {
    mkdirSync(options.dir, { recursive: true });
    this.offs = [
      runtime.on('session.began', (s) => this.began(s.id)),
      runtime.on('frame', (f) => this.current?.video.sessionId === f.sessionId && this.room.record(f)),
      runtime.on('session.finished', (e) => this.finished(e.sessionId, e.reason)),
    ];
  }

  private began(sessionId: string): void {
    this.finish('superseded'); // a session's end always comes first; this is a guard, not a path
    try {
      prune(this.options.dir, this.options.maxFolderBytes, this.options.maxFileBytes, this.log);
    } catch (err) {
      this.log.warn({ err }, 'recording: could not read the folder to prune it');
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const video = new SessionVideo(sessionId, join(this.options.dir, `session-${stamp}-${sessionId}.webm`), this.options.maxFileBytes, this.log);
    this.current = { video, untap: this.room.tap((e) => video.take(e)) };
  }

  private finished(sessionId: string, reason: string): void {
    if (this.current?.video.sessionId === sessionId) this.finish(reason);
  }

  private finish(reason: string): void {
    const c = this.current;
    if (!c) return;
    this.current = null;
    c.untap();
    try {
      const done = c.video.close();
      this.log.info({ sessionId: c.video.sessionId, reason, file: c.video.path, ...done, capped: c.video.capped }, 'recording: written');
    } catch (err) {
      this.log.error({ err, sessionId: c.video.sessionId }, 'recording: could not close the file');
    }
  }

  /** The server closes: the running recording is closed cleanly. */
  close(): void {
    this.offs.forEach((off) => off());
    this.finish('shutdown');
  }
}
