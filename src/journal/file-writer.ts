/**
 * An append-only text file written asynchronously from a queue, so that the caller (the
 * runtime's frame path) never waits for the disk. Any file system error (a folder that cannot
 * be written, a full disk) is logged once and turns the writer into a sink that drops lines:
 * a journal must never affect the session it records.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';

export class FileWriter {
  private queue: string[] = [];
  private handle: FileHandle | null = null;
  private pump: Promise<void> = Promise.resolve();
  private pumping = false;
  private closed = false;
  failed = false;
  /** Bytes handed to the disk so far. */
  written = 0;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    opened: Promise<void>,
  ) {
    this.pump = opened.then(
      () => this.openFile(),
      (err: unknown) => this.fail(err, 'cannot prepare the journal folder'),
    );
  }

  private async openFile(): Promise<void> {
    try {
      this.handle = await open(this.path, 'wx');
    } catch (err) {
      this.fail(err, 'cannot create the journal file');
      return;
    }
    this.kick();
  }

  private fail(err: unknown, what: string): void {
    if (this.failed) return;
    this.failed = true;
    this.queue = [];
    this.log.warn({ err, path: this.path }, `journal: ${what}; this session is not recorded`);
  }

  write(line: string): void {
    if (this.failed || this.closed) return;
    this.queue.push(line);
    this.kick();
  }

  private kick(): void {
    if (this.pumping || !this.handle || this.queue.length === 0) return;
    this.pumping = true;
    this.pump = this.drain().finally(() => {
      this.pumping = false;
      if (this.queue.length > 0 && !this.failed) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && this.handle && !this.failed) {
      const chunk = this.queue.join('');
      this.queue = [];
      try {
        await this.handle.write(chunk);
        this.written += Buffer.byteLength(chunk);
      } catch (err) {
        this.fail(err, 'write failed');
      }
    }
  }

  /** Write what is queued, then close the file. Never rejects. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pump;
    while (this.pumping) await this.pump;
    if (this.queue.length > 0 && this.handle && !this.failed) await this.drain();
    const h = this.handle;
    this.handle = null;
    try {
      await h?.close();
    } catch (err) {
      this.fail(err, 'close failed');
    }
  }
}
