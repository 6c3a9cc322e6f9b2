/** Time spent in ONNX Runtime `run` calls since it was last taken: each frame reports its own inference time. */
import type { OnnxSession } from '../gpu/session.ts';

export class InferenceTimer {
  private spentMs = 0;

  /** Wraps the session's `run` so that every call is timed. */
  time(s: OnnxSession): void {
    const run = s.session.run.bind(s.session) as (...args: unknown[]) => Promise<unknown>;
    const timed = async (...args: unknown[]): Promise<unknown> => {
      const started = performance.now();
      try {
        return await run(...args);
      } finally {
        this.spentMs += performance.now() - started;
      }
    };
    // Configurable: the worker wraps it once more (native-calls.ts).
    Object.defineProperty(s.session, 'run', { value: timed, configurable: true });
  }

  /** The time spent since the last take, and start counting from zero. */
  take(): number {
    const spent = this.spentMs;
    this.spentMs = 0;
    return spent;
  }
}
