/**
 * The journal's command-line flags (flags.ts) as createRuntime's `record` option.
 */
import { intOption, stringOption, UsageError, type OptionValues } from '../util/option-table.ts';
import { DEFAULT_JOURNAL, type JournalOptions } from './recorder.ts';

/** The `record` option of createRuntime, or undefined without --record. Throws UsageError. */
export function recordOptions(values: OptionValues): JournalOptions | undefined {
  const dir = stringOption(values, 'record');
  const sessionBytes = mibOption(values, 'record-max-mb', 0.01, 1 << 20);
  const folderBytes = mibOption(values, 'record-folder-mb', 0.01, 1 << 30);
  const every = intOption(values, 'record-hash-every', 1, 1_000_000);
  if (!dir) return undefined;
  const maxSessionBytes = sessionBytes ?? DEFAULT_JOURNAL.maxSessionBytes;
  return {
    dir,
    recordInputs: values['record-inputs'] === true,
    maxSessionBytes,
    // A folder cap below one session's cap is raised to it (one journal always fits).
    maxFolderBytes: Math.max(maxSessionBytes, folderBytes ?? DEFAULT_JOURNAL.maxFolderBytes),
    ...(every ? { hashEvery: every } : {}),
  };
}

/**
 * A size in MiB, fractions allowed (`0.5` is 512 KiB), as whole bytes. The smallest, 0.01 MiB
 * (10,486 bytes), still holds a journal's header and end (the recorder needs 8 KiB).
 */
function mibOption(values: OptionValues, name: string, min: number, max: number): number | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return undefined;
  const mb = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || mb < min || mb > max) throw new UsageError(`--${name} must be a number of MiB in ${min}..${max} (fractions allowed: 0.5 is 512 KiB), got ${JSON.stringify(raw)}`);
  return Math.round(mb * 2 ** 20);
}
