/**
 * The journal's command-line flags (flags.ts) as createRuntime's `record` option.
 */
import { intOption, stringOption, type OptionValues } from '../util/option-table.ts';
import { DEFAULT_JOURNAL, type JournalOptions } from './recorder.ts';

/** The `record` option of createRuntime, or undefined without --record. Throws UsageError. */
export function recordOptions(values: OptionValues): JournalOptions | undefined {
  const dir = stringOption(values, 'record');
  const sessionMb = intOption(values, 'record-max-mb', 1, 1 << 20);
  const folderMb = intOption(values, 'record-folder-mb', 1, 1 << 30);
  const every = intOption(values, 'record-hash-every', 1, 1_000_000);
  if (!dir) return undefined;
  const maxSessionBytes = (sessionMb ?? DEFAULT_JOURNAL.maxSessionBytes / 2 ** 20) * 2 ** 20;
  return {
    dir,
    recordInputs: values['record-inputs'] === true,
    maxSessionBytes,
    // A folder cap below one session's cap is raised to it (one journal always fits).
    maxFolderBytes: Math.max(maxSessionBytes, (folderMb ?? DEFAULT_JOURNAL.maxFolderBytes / 2 ** 20) * 2 ** 20),
    ...(every ? { hashEvery: every } : {}),
  };
}
