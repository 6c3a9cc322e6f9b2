/** Feeds the `--input` files of `framehost headless` into the model's input tracks while a session runs. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorValue, type ErrorCode, type Result } from '../../errors.ts';
import { LOCAL_OWNER, type Runtime } from '../../runtime/runtime.ts';
import type { InputTrackSpec } from '../../model/api.ts';
import { messageOf, type HeadlessEvent } from './events.ts';
import { decodeInputPng } from './input-png.ts';
import type { InputSource } from './input-sources.ts';

interface FeedTrack {
  readonly source: InputSource;
  readonly spec: InputTrackSpec;
  /** Index of the next file to try. */
  next: number;
  /** Files reported once and skipped since: wrong size, unreadable, undecodable. */
  readonly skipped: Set<string>;
  /** Codes of refusals by the runtime already reported for this track. */
  readonly reported: Set<ErrorCode>;
}

/** Feeds the `--input` files into their tracks while a session runs: one timer for all tracks. */
export class InputFeeder {
  private timer: NodeJS.Timeout | undefined;
  private readonly tracks: FeedTrack[];
  /** Frames accepted by the runtime in the current session, all tracks together. */
  fed = 0;

  constructor(
    private readonly runtime: Runtime,
    sources: readonly InputSource[],
    private readonly fps: number,
    private readonly print: (event: HeadlessEvent) => void,
  ) {
    const specs = runtime.capabilities.inputs;
    this.tracks = sources.map((source) => ({ source, spec: specs[source.track]!, next: 0, skipped: new Set(), reported: new Set() }));
  }

  get enabled(): boolean {
    return this.tracks.length > 0;
  }

  /** A session began: its count starts at 0. */
  sessionBegan(): void {
    this.fed = 0;
  }

  /** The session runs: feed from each track's first file, one frame now and then at the rate. */
  start(): void {
    if (this.timer || !this.enabled) return;
    for (const t of this.tracks) t.next = 0;
    this.tick();
    this.timer = setInterval(() => this.tick(), 1000 / this.fps);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    for (const t of this.tracks) this.feed(t);
  }

  /** Publish the track's next usable file; report (once) and skip those that cannot be used. */
  private feed(t: FeedTrack): void {
    const { files, dir, track } = t.source;
    for (let tries = 0; tries < files.length; tries++) {
      const file = files[t.next]!;
      t.next = (t.next + 1) % files.length;
      if (t.skipped.has(file)) continue;
      let decoded: Result<{ data: Uint8Array }>;
      try {
        decoded = decodeInputPng(readFileSync(join(dir, file)), t.spec);
      } catch (err) {
        decoded = { ok: false, error: errorValue('invalid_input', `cannot read the file (${messageOf(err)})`) };
      }
      if (!decoded.ok) {
        t.skipped.add(file);
        this.print({ event: 'error', type: 'input', track, file, error: { code: decoded.error.code, message: `${decoded.error.message}; ${file} is skipped` } });
        continue;
      }
      const r = this.runtime.publish(track, { data: decoded.data, width: t.spec.width, height: t.spec.height, format: t.spec.format }, { owner: LOCAL_OWNER });
      if (r.ok) this.fed++;
      // no_session: the session is ending between two ticks; the phase listener stops the timer.
      else if (r.error.code !== 'no_session' && !t.reported.has(r.error.code)) {
        t.reported.add(r.error.code);
        this.print({ event: 'error', type: 'input', track, file, error: r.error });
      }
      return;
    }
  }
}
