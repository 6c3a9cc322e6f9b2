/** One `framehost headless` run: stdin's requests against the runtime, frames written as PNG files. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorValue, type Result } from '../../errors.ts';
import type { Runtime, RuntimeEvents, RuntimeFrame } from '../../runtime/runtime.ts';
import { bytesPerPixel } from '../../gpu/frames.ts';
import { encodePng, frameFileName } from '../../util/png.ts';
import { messageOf, type HeadlessEvent } from './events.ts';
import { InputFeeder } from './input-feeder.ts';
import type { InputSource } from './input-sources.ts';
import { MAX_LINE_BYTES, type InputLine } from './lines.ts';
import { parseRequest, type HeadlessRequest } from './request.ts';

interface Waiter {
  readonly target: number;
  readonly resolve: (outcome: Result) => void;
}

export interface HeadlessConfig {
  readonly out: string;
  readonly maxFrames: number | undefined;
  readonly inputs: readonly InputSource[];
  readonly inputFps: number;
}

/** The state of one headless run: the frames written so far, pending waits, the way out. */
export class HeadlessRun {
  private written = 0;
  private waiters: Waiter[] = [];
  private closing = false;
  private exitCode = 0;
  private resolveFinish: () => void = () => {};
  /** Resolves when the run must end before stdin does: frame cap, failed write, signal. */
  readonly finishRequested = new Promise<void>((resolve) => (this.resolveFinish = resolve));

  private readonly feeder: InputFeeder;

  constructor(
    private readonly runtime: Runtime,
    private readonly config: HeadlessConfig,
    private readonly print: (event: HeadlessEvent) => void,
  ) {
    this.feeder = new InputFeeder(runtime, config.inputs, config.inputFps, print);
    runtime.on('phase', ({ phase, previous }) => {
      print({ event: 'state', state: phase, from: previous });
      if (phase === 'running' && !this.closing) this.feeder.start();
      else this.feeder.stop();
    });
    runtime.on('session.began', (s) => {
      this.feeder.sessionBegan();
      print({ event: 'session.began', sessionId: s.id });
    });
    runtime.on('session.finished', (end) => this.onSessionEnd(end));
    runtime.on('message', (m) => print({ event: 'message', sessionId: m.sessionId, data: m.data }));
    runtime.on('command.failed', (f) => print({ event: 'error', type: 'command', requestId: f.requestId, error: f.error }));
    runtime.on('frame', (f) => this.onFrame(f));
  }

  /** Ask the run to end (idempotent: the first code wins). */
  finish(code: number): void {
    if (this.closing) return;
    this.closing = true;
    this.exitCode = code;
    this.resolveFinish();
  }

  /** Handle input lines until stdin ends or the run is finishing. */
  async serve(lines: AsyncIterable<InputLine>): Promise<void> {
    for await (const input of lines) {
      if (this.closing) return;
      if ('tooLong' in input) {
        this.print({ event: 'error', line: input.line, error: errorValue('payload_too_large', `a line may hold at most ${MAX_LINE_BYTES} bytes`) });
        continue;
      }
      // Every line gets one reply, a blank one too: a script that sent one learns it did.
      if (input.text.trim() === '') {
        this.print({ event: 'error', line: input.line, error: errorValue('bad_request', 'blank line: expected a JSON object') });
        continue;
      }
      const parsed = parseRequest(input.text);
      if (parsed.ok) await this.handle(parsed.request, input.line);
      else this.print({ event: 'error', line: input.line, error: parsed.error });
    }
  }

  /**
   * Stdin ended. With `--frames N`, a live session runs on until the cap ends the run or the
   * session ends by itself (or a signal): stdin's end alone would stop it before its first frame.
   */
  async stdinEnded(): Promise<void> {
    if (this.config.maxFrames === undefined || this.closing) return;
    const session = this.runtime.status().session;
    if (!session) return;
    await Promise.race([this.finishRequested, this.runtime.whenSessionOver(session.id)]);
  }

  /** Stop the session if one is live, wait for its end, shut the runtime down. */
  async close(): Promise<number> {
    this.closing = true;
    this.feeder.stop();
    const session = this.runtime.status().session;
    if (session) {
      this.runtime.stop(); // refused only when it is already ending, which is what we want anyway
      await this.runtime.whenSessionOver(session.id);
    }
    await this.runtime.shutdown();
    return this.exitCode;
  }

  private async handle(request: HeadlessRequest, line: number): Promise<void> {
    switch (request.type) {
      case 'start': {
        const r = this.runtime.start();
        if (!r.ok) return this.print({ event: 'error', line, type: 'start', error: r.error });
        this.print({ event: 'accepted', line, type: 'start', sessionId: r.sessionId });
        return this.untilStarted();
      }
      case 'stop': {
        const r = this.runtime.stop();
        return this.print(r.ok ? { event: 'accepted', line, type: 'stop' } : { event: 'error', line, type: 'stop', error: r.error });
      }
      case 'command': {
        const r = this.runtime.command(request.name, request.args);
        if (!r.ok) return this.print({ event: 'error', line, type: 'command', error: r.error });
        return this.print({ event: 'accepted', line, type: 'command', name: String(request.name), requestId: r.requestId });
      }
      case 'wait': {
        const from = this.written;
        const outcome = await this.waitFrames(request.frames);
        return this.print(outcome.ok ? { event: 'waited', line, frames: this.written - from, written: this.written } : { event: 'error', line, type: 'wait', error: outcome.error });
      }
    }
  }

  /** Resolves once the runtime has left `starting`: the session runs, or it ended trying. */
  private untilStarted(): Promise<void> {
    return new Promise((resolve) => {
      if (this.runtime.phase() !== 'starting') return resolve();
      const off = this.runtime.on('phase', ({ phase }) => {
        if (phase === 'starting') return;
        off();
        resolve();
      });
    });
  }

  private waitFrames(frames: number): Promise<Result> {
    const phase = this.runtime.phase();
    if (phase !== 'starting' && phase !== 'running') return Promise.resolve({ ok: false, error: errorValue('no_session', 'nothing to wait for') });
    return new Promise((resolve) => this.waiters.push({ target: this.written + frames, resolve }));
  }

  private settleWaiters(): void {
    const done = this.waiters.filter((w) => w.target <= this.written);
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.target > this.written);
    for (const w of done) w.resolve({ ok: true });
  }

  private onSessionEnd(end: RuntimeEvents['session.finished']): void {
    this.print({ event: 'session.ended', ...end, ...(this.feeder.enabled ? { inputs: this.feeder.fed } : {}) });
    // No more frames will come for the waits still pending.
    const pending = this.waiters;
    this.waiters = [];
    for (const w of pending) {
      w.resolve({ ok: false, error: errorValue('no_session', `the session ended (${end.reason}) ${w.target - this.written} frames short`) });
    }
  }

  private capReached(): boolean {
    return this.config.maxFrames !== undefined && this.written >= this.config.maxFrames;
  }

  private onFrame(frame: RuntimeFrame): void {
    const size = frame.width * frame.height * bytesPerPixel(frame.format);
    for (let i = 0; i < frame.count; i++) {
      if (this.capReached() || this.closing) break;
      const index = this.written + 1;
      const file = frameFileName(index);
      try {
        writeFileSync(join(this.config.out, file), encodePng(frame.data.subarray(i * size, (i + 1) * size), frame.width, frame.height, frame.format));
      } catch (err) {
        this.print({ event: 'error', error: errorValue('internal', `writing ${file}: ${messageOf(err)}`) });
        this.finish(1);
        return;
      }
      this.written = index;
      this.print({ event: 'frame', index, file, sessionId: frame.sessionId, seq: frame.seq + i, width: frame.width, height: frame.height, format: frame.format });
      this.settleWaiters();
    }
    if (this.capReached()) this.finish(0);
  }
}
