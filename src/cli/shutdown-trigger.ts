/**
 * What starts a server's shutdown, in one place for `serve` and `gateway`: SIGTERM, SIGINT, or
 * the launching shell gone (src/cli/launcher.ts). The first of them calls `begin`; a second
 * *signal* exits at once with 1 (an operator who means it), or, while the inference worker is
 * inside an ONNX Runtime call, by that signal itself: exit() ends every worker thread, which
 * waits for the native call (seconds) and then aborts the process (SIGABRT; native-calls.ts),
 * while a signal's default action ends the process at once. The shell's going is never counted
 * as a signal: a signal to the whole process group (systemd's control-group kill, Ctrl-C) kills
 * that shell too, in either order with the signal itself, and exiting then would cut the drain
 * short.
 */
import type { Logger } from 'pino';
import { onLauncherGone } from './launcher.ts';
import { nativeCallUnderway } from '../actors/native-calls.ts';

/** `failure`: the server itself cannot go on (its model failed to load, its fleet refused it). */
export type ShutdownCause = NodeJS.Signals | 'launcher-gone' | 'failure';

/** Installs the handlers; returns the function that starts the same shutdown from code. */
export function onShutdownRequest(log: Logger, begin: (cause: ShutdownCause) => void): (cause: ShutdownCause) => void {
  const trigger = new ShutdownTrigger(log, begin);
  process.on('SIGTERM', trigger.request);
  process.on('SIGINT', trigger.request);
  onLauncherGone(() => trigger.request('launcher-gone'));
  return trigger.request;
}

/** Counts the process's shutdown requests: the first begins the drain, a second signal ends it now. */
class ShutdownTrigger {
  private stopping = false;
  private signals = 0;

  constructor(
    private readonly log: Logger,
    private readonly begin: (cause: ShutdownCause) => void,
  ) {}

  readonly request = (cause: ShutdownCause): void => {
    const isSignal = cause !== 'launcher-gone' && cause !== 'failure';
    if (isSignal && ++this.signals > 1) exitNow(this.log, cause);
    if (this.stopping) return;
    this.stopping = true;
    this.begin(cause);
  };
}

/** The second signal: exit 1, or end by the signal where exit() would wait for ONNX Runtime and abort (above). */
function exitNow(log: Logger, signal: NodeJS.Signals): void {
  const bySignal = nativeCallUnderway();
  log.warn({ signal, ...(bySignal ? { by: 'signal', why: 'the inference worker is inside an ONNX Runtime call' } : {}) }, 'second signal: exiting now');
  if (!bySignal) process.exit(1);
  // With no listener left, Node restores the signal's default action: the process ends by it.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}

/**
 * A shutdown that may be asked for before the server it ends exists: the handlers go in first
 * (a SIGTERM with no handler kills Node by the signal, even in the seconds a model takes to
 * import), the server attaches its drain once it has one, and a request that came earlier
 * starts that drain at once.
 */
export class ShutdownLatch {
  private early: ShutdownCause | null = null;
  private drain: ((cause: ShutdownCause) => void) | null = null;

  /** onShutdownRequest's `begin`: called once. */
  readonly request = (cause: ShutdownCause): void => {
    if (this.drain) this.drain(cause);
    else this.early ??= cause;
  };

  /** Whether a shutdown was asked for before the drain was attached. */
  get requested(): boolean {
    return this.early !== null;
  }

  /** Whether the drain is attached (the server it ends exists). */
  get attached(): boolean {
    return this.drain !== null;
  }

  attach(drain: (cause: ShutdownCause) => void): void {
    this.drain = drain;
    if (this.early !== null) drain(this.early);
  }
}
