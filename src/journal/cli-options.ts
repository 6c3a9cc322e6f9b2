/**
 * The journal's command-line flags, shared by `framehost serve` and `framehost headless`.
 */
import type { OptionTable } from '../cli/args.ts';
import { intOption, stringOption, type ParsedCommandLine } from '../cli/args.ts';
import { DEFAULT_JOURNAL, type JournalOptions } from './recorder.ts';

export const RECORD_OPTIONS = {
  record: { type: 'string', valueName: 'DIR', description: 'write a journal of every session into DIR (one JSONL file each; replay it with framehost replay)' },
  'record-inputs': { type: 'boolean', description: "journal input frames' bytes, not only their hashes (needed to replay input tracks; counts against the size cap)" },
  'record-max-mb': { type: 'string', valueName: 'MB', description: `cap on one session's journal (default ${DEFAULT_JOURNAL.maxSessionBytes / 2 ** 20})` },
  'record-folder-mb': { type: 'string', valueName: 'MB', description: `cap on the journal folder; the oldest journals are removed first (default ${DEFAULT_JOURNAL.maxFolderBytes / 2 ** 20})` },
  'record-hash-every': { type: 'string', valueName: 'N', description: `journal a hash of every Nth frame (default ${DEFAULT_JOURNAL.hashEvery}; the last frame always)` },
} as const satisfies OptionTable;

/** The `record` option of createRuntime, or undefined without --record. Throws UsageError. */
export function recordOptions(values: ParsedCommandLine['values']): JournalOptions | undefined {
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
