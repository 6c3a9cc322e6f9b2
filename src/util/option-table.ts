/**
 * Command-line option tables and the readers of their raw values. Below both the CLI (src/cli/)
 * and the features that bring their own flags (src/journal/flags.ts, src/cli/media-options.ts),
 * so that those tables need not import the parser that includes them.
 */
import { FramehostError } from '../errors.ts';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly short?: string;
  /** Shown in `--help` after the flag, e.g. `PATH`. */
  readonly valueName?: string;
  readonly description: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** One option's value as node:util `parseArgs` hands it back. */
export type RawValue = string | boolean | string[] | boolean[] | undefined;

/** Every option's raw value, by name. */
export type OptionValues = Readonly<Record<string, RawValue>>;

/**
 * A mistake on the command line: main prints its message (the mistake alone, not the table's
 * generic text) with the usage hint and exits 2. Its code, `bad_usage`, is from the one table.
 */
export class UsageError extends FramehostError {
  constructor(message: string) {
    super('bad_usage', message);
    this.name = 'UsageError';
  }
}

export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** An integer option in [min, max], or undefined when absent. Throws UsageError. */
export function intOption(values: OptionValues, name: string, min: number, max: number): number | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  return n;
}
