/**
 * Read a session journal back: its header, the replay script for the worker (commands at their
 * checks, input frames at their reads, where to stop) and the frame hashes to verify.
 */
import { readFile } from 'node:fs/promises';
import type { ReplayCommand, ReplayRead, ReplayScript } from '../actors/loop-points.ts';
import { JOURNAL_FORMAT, type JournalLine, type SessionHeader } from './format.ts';
import type { Capabilities } from '../model/capabilities.ts';
import { FramehostError } from '../errors.ts';

type EndLine = Extract<JournalLine, { type: 'end' }>;
type FrameLine = Extract<JournalLine, { type: 'frame' }>;

export interface ParsedJournal {
  readonly header: SessionHeader;
  readonly script: ReplayScript;
  /** Recorded hashes by frame index (the first frame of a block). */
  readonly hashes: ReadonlyMap<number, FrameLine>;
  /** The last frame the live session delivered, if any. */
  readonly last: FrameLine | null;
  readonly end: EndLine | null;
  /** The frame index at which the size cap cut the journal short, if it did. */
  readonly truncatedAt: number | null;
  /** The frames replay should produce. */
  readonly expectedFrames: number;
  /** Input reads whose bytes are not in the file (recorded without --record-inputs). */
  readonly readsWithoutBytes: number;
  /** Things the reader had to skip (a torn last line). */
  readonly warnings: readonly string[];
}

/** A file that is not a journal this framehost reads: `bad_journal`, from the one table. */
export class JournalError extends FramehostError {
  constructor(message: string) {
    super('bad_journal', message);
    this.name = 'JournalError';
  }
}

const STOPPED: ReadonlySet<string> = new Set(['stopped', 'orphaned', 'shutdown', 'fenced']);

export function parseJournal(text: string): ParsedJournal {
  const warnings: string[] = [];
  const lines: JournalLine[] = [];
  const raw = text.split('\n');
  raw.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      lines.push(JSON.parse(line) as JournalLine);
    } catch {
      // A process that died mid-write leaves a torn last line; anything else is not a journal.
      if (i >= raw.length - 2) warnings.push(`line ${i + 1} is incomplete and was skipped`);
      else throw new JournalError(`line ${i + 1} is not JSON`);
    }
  });
  const header = lines[0];
  if (header?.type !== 'session') throw new JournalError('the first line is not a session header');
  const format: unknown = header.format;
  if (format !== JOURNAL_FORMAT) throw new JournalError(`journal format ${String(format)}; this framehost reads format ${JOURNAL_FORMAT}`);

  const commands: ReplayCommand[] = [];
  const inputs = new Map<string, { t: number; bytes?: string }>();
  const reads: Extract<JournalLine, { type: 'read' }>[] = [];
  const hashes = new Map<number, FrameLine>();
  let last: FrameLine | null = null;
  let end: EndLine | null = null;
  let truncatedAt: number | null = null;
  for (const l of lines) {
    switch (l.type) {
      case 'command':
        if ('check' in l) commands.push({ check: l.check, requestId: `replay-${l.n}`, name: l.name, args: l.args });
        break;
      case 'input':
        inputs.set(`${l.track}\u0000${l.seq}`, { t: l.t, ...(l.bytes ? { bytes: l.bytes } : {}) });
        break;
      case 'read':
        reads.push(l);
        break;
      case 'frame':
        hashes.set(l.seq, l);
        if (l.last) last = l;
        break;
      case 'truncated':
        truncatedAt = l.at;
        break;
      case 'end':
        end = l;
        break;
      default:
        break;
    }
  }
  commands.sort((a, b) => a.check - b.check);
  let readsWithoutBytes = 0;
  const replayReads: ReplayRead[] = reads.map((r) => {
    const input = inputs.get(`${r.track}\u0000${r.seq}`);
    if (!input?.bytes) readsWithoutBytes++;
    return { track: r.track, read: r.read, seq: r.seq, t: input?.t ?? 0, data: input?.bytes ? new Uint8Array(Buffer.from(input.bytes, 'base64')) : null };
  });

  // Where the replayed session stops: at the recorded check for a stopped session; after the
  // recorded frames for a worker that died or a journal cut short; by itself otherwise.
  const lastFrame = last ? last.seq + last.count : Math.max(0, ...[...hashes.values()].map((h) => h.seq + h.count));
  let script: ReplayScript = { commands, reads: replayReads };
  // `end.frames` counts the frames the main thread received; the worker made `dropped` more
  // (the main thread was behind) and replay makes them all, so both count.
  let expectedFrames = end ? end.frames + end.dropped : lastFrame;
  if (truncatedAt !== null) {
    script = { ...script, stopAtFrame: truncatedAt };
    expectedFrames = truncatedAt;
  } else if (end?.stopCheck !== undefined) {
    script = { ...script, stopCheck: end.stopCheck };
  } else if (!end || end.checks === undefined || STOPPED.has(end.reason)) {
    // The worker died, or the loop ended on the abort signal rather than at a check: stop after the frames it made.
    script = { ...script, stopAtFrame: expectedFrames };
    if (!end) warnings.push('the journal has no end line (the process died?); replaying the frames it recorded');
  }
  return { header, script, hashes, last, end, truncatedAt, expectedFrames, readsWithoutBytes, warnings };
}

/**
 * Why a journal cannot be replayed through a model whose capabilities are these, or null when it
 * can: every recorded command and input track must exist there. Said once, before anything runs,
 * rather than as one failed command per recorded command.
 */
export function misfit(journal: ParsedJournal, model: Pick<Capabilities, 'model' | 'commands' | 'inputs'>): string | null {
  const missing = (names: Iterable<string>, has: Readonly<Record<string, unknown>>): string[] => [...new Set(names)].filter((n) => !Object.hasOwn(has, n));
  const commands = missing(journal.script.commands.map((c) => c.name), model.commands);
  const tracks = missing(journal.script.reads.map((r) => r.track), model.inputs);
  if (commands.length === 0 && tracks.length === 0) return null;
  const listed = (kind: string, names: string[]): string => `no ${kind}${names.length > 1 ? 's' : ''} ${names.map((n) => JSON.stringify(n)).join(', ')}`;
  const lacks = [commands.length > 0 ? listed('command', commands) : '', tracks.length > 0 ? listed('input track', tracks) : ''].filter(Boolean).join(' and ');
  const { name, version } = journal.header.model;
  return `${model.model.name} ${model.model.version} has ${lacks}; the journal was recorded with ${name} ${version} (replay it with --model ${journal.header.model.source}); nothing was replayed`;
}

export async function readJournal(path: string): Promise<ParsedJournal> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new JournalError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseJournal(text);
}
