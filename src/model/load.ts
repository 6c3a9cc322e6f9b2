/**
 * Import a model module and check that it is one. Used on both threads: the main thread for
 * the declarations (name, command schemas), the worker for everything else.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isTypeScript, registerTypeScript, RUNNING_FROM_SOURCE } from '../util/typescript.ts';
import type { Fields } from './schema.ts';
import type { ModelDefinition } from './api.ts';

/** The built-in demo world. */
export const DEMO_MODEL_URL = new URL(`../models/gray-scott/model${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** The built-in video-to-video filter (input track `camera`). */
export const VIDEO_FILTER_MODEL_URL = new URL(`../models/video-filter/model${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** The VAE-decoder-shaped GPU workload (frames are noise). */
export const VAE_DECODER_MODEL_URL = new URL(`../models/vae-decoder/model${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** A path (relative to the working directory), a URL, or a built-in name, as a URL. */
export function modelUrl(pathOrUrl: string | undefined): string {
  if (!pathOrUrl || pathOrUrl === 'demo' || pathOrUrl === 'gray-scott') return DEMO_MODEL_URL;
  if (pathOrUrl === 'video-filter') return VIDEO_FILTER_MODEL_URL;
  if (pathOrUrl === 'vae-decoder') return VAE_DECODER_MODEL_URL;
  if (/^[a-z]+:/i.test(pathOrUrl) && !isAbsolute(pathOrUrl)) return pathOrUrl;
  return pathToFileURL(resolve(pathOrUrl)).href;
}

/**
 * How a journal names the model, for replay: a built-in or a URL as given, a path made
 * absolute (a relative one would be read against replay's working directory, not the server's).
 */
export function modelSource(pathOrUrl: string | undefined): string {
  if (!pathOrUrl) return 'gray-scott';
  if (pathOrUrl === 'demo' || pathOrUrl === 'gray-scott' || pathOrUrl === 'video-filter' || pathOrUrl === 'vae-decoder') return pathOrUrl;
  if (/^[a-z]+:/i.test(pathOrUrl) && !isAbsolute(pathOrUrl)) return pathOrUrl;
  return resolve(pathOrUrl);
}

/**
 * A path the model names (an ONNX file, weights), resolved against the model module's URL:
 * `./x.onnx` beside the model file works whatever the server's working directory.
 */
export function resolveModelPath(path: string, moduleUrl: string): string {
  if (path.startsWith('file:')) return fileURLToPath(path);
  if (isAbsolute(path)) return path;
  const base = new URL(moduleUrl);
  if (base.protocol !== 'file:') return resolve(path);
  return resolve(dirname(fileURLToPath(base)), path);
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

/**
 * A TypeScript model in a CommonJS folder is compiled to CommonJS: `export default` becomes
 * `exports.default` with `__esModule`, and import() hands back the whole exports object.
 */
const isCommonJsTypeScript = (url: string): boolean => url.startsWith('file:') && /\.cts$/i.test(url.replace(/[?#].*$/, ''));

function commonJsDefault(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const exports = value as { __esModule?: unknown; default?: unknown };
  return exports.__esModule === true && 'default' in exports ? exports.default : value;
}

export async function loadModelModule(url: string): Promise<ModelDefinition<unknown, unknown, Record<string, Fields>>> {
  // From the sources, whoever started this thread registered tsx already (the bin, the worker
  // bootstrap, tsx or vitest); from dist, a TypeScript model brings tsx in here, in each thread.
  if (isTypeScript(url) && !RUNNING_FROM_SOURCE) await registerTypeScript();
  // A .cts model goes through Node's own require (tsx's CommonJS hook): imported, it would get the
  // ESM loader's require(), which in Node 20 cannot load an ES module graph such as framehost's
  // sources ("request for './runtime.ts' is not in cache").
  const mod = (isCommonJsTypeScript(url) ? { default: createRequire(url)(fileURLToPath(url)) } : await import(url)) as { default?: unknown };
  const def = commonJsDefault(mod.default);
  const problem = problemWith(def);
  if (problem) throw new TypeError(`${url}: ${problem}`);
  return def as ModelDefinition<unknown, unknown, Record<string, Fields>>;
}
