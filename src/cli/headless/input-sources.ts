/** The `--input TRACK=DIR` options of `framehost headless`: each folder listed, each track declared. */
import { readdirSync } from 'node:fs';
import type { InputTrackSpec } from '../../model/api.ts';
import { UsageError } from '../../util/option-table.ts';
import { messageOf } from './events.ts';

export const DEFAULT_INPUT_FPS = 10;
export const MAX_INPUT_FPS = 120;

/** One `--input TRACK=DIR`: the track and the PNG files of DIR, sorted by name. */
export interface InputSource {
  readonly track: string;
  readonly dir: string;
  readonly files: readonly string[];
}

/** The `--input` values, each TRACK=DIR, with DIR listed now. Throws UsageError. */
export function parseInputSources(raw: unknown): InputSource[] {
  const pairs = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  const sources: InputSource[] = [];
  for (const pair of pairs) {
    if (typeof pair !== 'string') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new UsageError(`--input expects TRACK=DIR, got ${JSON.stringify(pair)}`);
    const track = pair.slice(0, eq);
    const dir = pair.slice(eq + 1);
    if (sources.some((s) => s.track === track)) throw new UsageError(`--input names the track ${JSON.stringify(track)} twice`);
    let files: string[];
    try {
      files = readdirSync(dir).filter((name) => /\.png$/i.test(name));
    } catch (err) {
      throw new UsageError(`--input ${track}: cannot list ${dir} (${messageOf(err)})`);
    }
    if (files.length === 0) throw new UsageError(`--input ${track}: no .png file in ${dir}`);
    sources.push({ track, dir, files: files.sort() });
  }
  return sources;
}

/** Every source names a track the model declares. Throws UsageError. */
export function checkInputTracks(sources: readonly InputSource[], declared: Readonly<Record<string, InputTrackSpec>>): void {
  const names = Object.keys(declared);
  for (const { track } of sources) {
    if (!Object.hasOwn(declared, track)) {
      throw new UsageError(`--input: the model has no input track ${JSON.stringify(track)} (${names.length > 0 ? `its tracks: ${names.join(', ')}` : 'it declares none'})`);
    }
  }
}
