/**
 * The journal's command-line flags, shared by `framehost serve` and `framehost headless`.
 */
import type { OptionTable } from '../util/option-table.ts';
import { DEFAULT_JOURNAL } from './recorder.ts';

export const RECORD_OPTIONS = {
  record: { type: 'string', valueName: 'DIR', description: 'write a journal of every session into DIR (one JSONL file each; replay it with framehost replay)' },
  'record-inputs': { type: 'boolean', description: "journal input frames' bytes, not only their hashes (needed to replay input tracks; counts against the size cap)" },
  'record-max-mb': { type: 'string', valueName: 'MB', description: `cap on one session's journal in MiB, fractions allowed (default ${DEFAULT_JOURNAL.maxSessionBytes / 2 ** 20})` },
  'record-folder-mb': { type: 'string', valueName: 'MB', description: `cap in MiB on the journal files in the folder (other files are not counted); the oldest journals are removed first (default ${DEFAULT_JOURNAL.maxFolderBytes / 2 ** 20})` },
  'record-hash-every': { type: 'string', valueName: 'N', description: `journal a hash of every Nth frame (default ${DEFAULT_JOURNAL.hashEvery}; the last frame always)` },
} as const satisfies OptionTable;
