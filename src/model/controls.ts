/**
 * The session's command state as the server last accepted it, for every client's controls: per
 * command, the arguments of its last accepted call, plus what a command declares about the
 * others (`CommandDef.shows`: a preset sets the rates, so the rates' sliders move with it).
 * A page that reloads, a second tab and a spectator read this instead of the schema's defaults.
 */
import type { Logger } from 'pino';
import type { JsonValue } from './json.ts';

/**
 * Per command: its arguments as the session now has them; null: no value of it describes the
 * session (a preset after the rates were set by hand). A command absent: as the session began.
 */
export type ControlSnapshot = Readonly<Record<string, Readonly<Record<string, JsonValue>> | null>>;

/** What a command's `shows` may return: other commands' arguments, or null when one no longer describes the session. */
export type ControlPatch = Readonly<Record<string, Readonly<Record<string, JsonValue>> | null>>;

/** One session's values; a new session gets a new instance (nothing carries over). */
export class ControlValues {
  private readonly values = new Map<string, Readonly<Record<string, JsonValue>> | null>();

  /**
   * An accepted command: its own arguments, then what its `shows` declares for the others. A
   * `shows` that throws is the model's bug, logged; the command's own arguments still count.
   */
  accept(name: string, args: Readonly<Record<string, unknown>>, def: { shows?(args: never): ControlPatch }, log: Logger): void {
    const values = args as Readonly<Record<string, JsonValue>>; // validated against the schema: JSON scalars
    let patch: ControlPatch | undefined;
    try {
      patch = def.shows?.(values as never);
    } catch (err) {
      log.warn({ err, command: name }, "the command's shows() threw; only its own arguments are recorded");
    }
    this.values.set(name, values);
    for (const [other, value] of Object.entries(patch ?? {})) {
      this.values.set(other, value === null ? null : { ...this.values.get(other), ...value });
    }
  }

  snapshot(): ControlSnapshot {
    return Object.fromEntries(this.values);
  }
}
