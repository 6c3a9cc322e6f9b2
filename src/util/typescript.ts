/**
 * Loading TypeScript model modules, and framehost's own sources, in any thread.
 *
 * A model may be `.ts`, `.mts`, `.cts`, `.js` or `.mjs`, in a folder with or without
 * `"type": "module"`. tsx decides per file whether it is ESM or CommonJS (the nearest package.json),
 * so both of its loaders are registered: its ESM hooks alone fail on a `.ts` file in a CommonJS
 * folder (ERR_REQUIRE_CYCLE_MODULE). Registration is once per thread, whoever asks first (the bin,
 * the worker bootstrap, or `loadModelModule` in an embedder's plain Node process): the flag is on
 * globalThis so that two copies of this file (src and dist) agree.
 *
 * From framehost's own TypeScript sources (a git checkout), `import 'framehost'` must resolve to
 * those sources, not to `dist/` (which only `npm run build` makes): package.json's exports have a
 * `framehost-source` condition, which `useSourceCondition` adds to every ESM resolution.
 */
import Module, { register as registerModuleHooks } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REGISTERED = Symbol.for('framehost.typescript');
const SOURCE = Symbol.for('framehost.source-condition');

type Flags = { [REGISTERED]?: true; [SOURCE]?: true };

/** True for module URLs or paths that need tsx. */
export function isTypeScript(urlOrPath: string): boolean {
  return /\.(c|m)?tsx?$/i.test(urlOrPath.replace(/[?#].*$/, ''));
}

/** Register tsx's ESM and CommonJS loaders in this thread (idempotent). */
export async function registerTypeScript(): Promise<void> {
  const g = globalThis as Flags;
  if (g[REGISTERED]) return;
  g[REGISTERED] = true;
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  cjs.register();
}

/** The resolve hook: adds the `framehost-source` export condition (a data: URL, so no file to ship). */
const SOURCE_HOOKS_URL = `data:text/javascript,${encodeURIComponent(
  'export async function resolve(specifier, context, next) {' +
    ' const conditions = context.conditions.includes("framehost-source") ? context.conditions : [...context.conditions, "framehost-source"];' +
    ' return next(specifier, { ...context, conditions }); }',
)}`;

type ResolveFilename = (request: string, ...rest: unknown[]) => string;

/**
 * Resolve `framehost` (and its subpaths) to its TypeScript sources in this thread (idempotent).
 * ESM: the export condition. CommonJS (a TypeScript model in a CommonJS folder, compiled to
 * `require('framehost')` by tsx): Node 20 has no resolve hook for require, so the package's own
 * names are mapped to the same `framehost-source` files before Node's resolver runs.
 */
export function useSourceCondition(): void {
  const g = globalThis as Flags;
  if (g[SOURCE]) return;
  g[SOURCE] = true;
  registerModuleHooks(SOURCE_HOOKS_URL);
  const root = new URL('../../', import.meta.url);
  const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { name: string; exports: Record<string, Record<string, string>> };
  const sources = new Map<string, string>();
  for (const [subpath, conditions] of Object.entries(manifest.exports)) {
    const file = conditions['framehost-source'];
    if (file) sources.set(subpath === '.' ? manifest.name : `${manifest.name}${subpath.slice(1)}`, fileURLToPath(new URL(file, root)));
  }
  const cjs = Module as unknown as { _resolveFilename: ResolveFilename };
  const resolveFilename = cjs._resolveFilename;
  cjs._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    return sources.get(request) ?? resolveFilename.call(this, request, ...rest);
  };
}

/** True when this copy of framehost runs from its TypeScript sources (a checkout, tsx, vitest). */
export const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');
