/**
 * The journals of a check's first load, in a temp folder: which session wrote which file, and
 * the one file kept when a failure points at it (the folder is removed otherwise).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { JournalOptions } from '../journal/recorder.ts';
import type { Runtime } from '../runtime/runtime.ts';

/** One check's journal folder: where sessions are recorded, and what is left of it afterwards. */
export class CheckJournals {
  private readonly files = new Map<string, string>();
  private kept = false;

  private constructor(readonly dir: string | undefined) {}

  /** A fresh temp folder. One that cannot be made costs only the narrowing, never the check. */
  static create(log: Logger): CheckJournals {
    try {
      return new CheckJournals(mkdtempSync(join(tmpdir(), 'framehost-check-')));
    } catch (err) {
      log.warn({ err }, 'check: no temp folder for journals; a failure will not be narrowed down');
      return new CheckJournals(undefined);
    }
  }

  /**
   * createRuntime's `record` option, or none without a folder. Hashes only for input frames: the
   * bytes of a noise track would fill the file in seconds. Every frame hashed, so a replay names
   * the exact frame that differs.
   */
  recordOption(): { record: JournalOptions } | Record<string, never> {
    return this.dir ? { record: { dir: this.dir, recordInputs: false, hashEvery: 1 } } : {};
  }

  /** Note each journal the runtime finishes writing, by session id. */
  listen(runtime: Runtime): void {
    runtime.on('journal.written', (w) => void (w.failed || this.files.set(w.sessionId, w.path)));
  }

  /** A session's journal; its file is written just after the session ends, so wait up to 2 s for it. */
  async of(sessionId: string): Promise<string | undefined> {
    for (let waited = 0; this.dir && !this.files.has(sessionId) && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    return this.files.get(sessionId);
  }

  /** Keep the folder with only this journal in it: the others would only be confusing beside it. */
  keep(journal: string): void {
    if (!this.dir) return;
    this.kept = true;
    for (const f of readdirSync(this.dir)) if (join(this.dir, f) !== journal) rmSync(join(this.dir, f), { force: true });
  }

  /** Remove the folder, unless a journal in it was kept. */
  close(): void {
    if (this.dir && !this.kept) rmSync(this.dir, { recursive: true, force: true });
  }
}
