/**
 * The session's command state as the server last accepted it, for every client's controls: per
 * command, the arguments of its last accepted call, plus what a command declares about the
 * others (`CommandDef.shows`: a preset sets the rates, so the rates' sliders move with it).
 * A page that reloads, a second tab and a spectator read this instead of the schema's defaults.
 */
import type { JsonValue } from './api.ts';

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

  /** An accepted command: its own arguments, then what it declares for the others. */
  accept(name: string, args: Readonly<Record<string, JsonValue>>, patch: ControlPatch | undefined): void {
    this.values.set(name, args);
    for (const [other, value] of Object.entries(patch ?? {})) {
      this.values.set(other, value === null ? null : { ...this.values.get(other), ...value });
    }
  }

  snapshot(): ControlSnapshot {
    return Object.fromEntries(this.values);
  }
}
