/**
 * Import a model module and check that it is one. Used on both threads: the main thread for
 * the declarations (name, command schemas), the worker for everything else.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Fields } from './schema.ts';
import type { ModelDefinition } from './api.ts';

/** The built-in demo world. */
export const DEMO_MODEL_URL = new URL(`../models/gray-scott/model${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** The built-in video-to-video filter (input track `camera`). */
export const VIDEO_FILTER_MODEL_URL = new URL(`../models/video-filter/model${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** A path (relative to the working directory), a URL, or a built-in name, as a URL. */
export function modelUrl(pathOrUrl: string | undefined): string {
  if (!pathOrUrl || pathOrUrl === 'demo' || pathOrUrl === 'gray-scott') return DEMO_MODEL_URL;
  if (pathOrUrl === 'video-filter') return VIDEO_FILTER_MODEL_URL;
  if (/^[a-z]+:/i.test(pathOrUrl) && !isAbsolute(pathOrUrl)) return pathOrUrl;
  return pathToFileURL(resolve(pathOrUrl)).href;
}

function problemWith(def: unknown): string | undefined {
  if (typeof def !== 'object' || def === null) return 'the module has no default export (export default defineModel({...}))';
  const d = def as Record<string, unknown>;
  for (const key of ['name', 'version'] as const) if (typeof d[key] !== 'string') return `the model's ${key} must be a string`;
  for (const key of ['load', 'createSessionState', 'loop'] as const) if (typeof d[key] !== 'function') return `the model's ${key} must be a function`;
  if (typeof d.commands !== 'object' || d.commands === null) return "the model's commands must be an object";
  if (d.inputs !== undefined) {
    if (typeof d.inputs !== 'object' || d.inputs === null) return "the model's inputs must be an object";
    for (const [name, i] of Object.entries(d.inputs as Record<string, unknown>)) {
      const spec = i as Record<string, unknown> | null;
      const size = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 4096;
      if (!size(spec?.width) || !size(spec?.height) || (spec?.format !== 'rgba' && spec?.format !== 'rgb')) {
        return `input ${name} needs width and height (1-4096) and format "rgba" or "rgb"`;
      }
    }
  }
  for (const [name, c] of Object.entries(d.commands as Record<string, unknown>)) {
    const cmd = c as Record<string, unknown> | null;
    if (typeof cmd?.handler !== 'function' || typeof cmd.args !== 'object' || cmd.args === null) {
      return `command ${name} needs args (an object of fields) and a handler`;
    }
  }
  return undefined;
}

export async function loadModelModule(url: string): Promise<ModelDefinition<unknown, unknown, Record<string, Fields>>> {
  const mod = (await import(url)) as { default?: unknown };
  const problem = problemWith(mod.default);
  if (problem) throw new TypeError(`${url}: ${problem}`);
  return mod.default as ModelDefinition<unknown, unknown, Record<string, Fields>>;
}
