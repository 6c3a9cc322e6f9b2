/**
 * The demo page's files. The page's script (src/page/main.ts, which uses the typed
 * client) is bundled with esbuild on first request and kept in memory: no build step, and
 * nothing generated in git.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const PAGE_DIR = fileURLToPath(new URL('../../page/', import.meta.url));
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

export interface Asset {
  readonly type: string;
  readonly body: string;
}

let script: Promise<string> | undefined;

function bundle(): Promise<string> {
  script ??= build({
    entryPoints: [`${PAGE_DIR}main${ext}`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  }).then((r) => r.outputFiles[0]!.text);
  script.catch(() => (script = undefined)); // retry on the next request rather than cache a failure
  return script;
}

export async function pageAsset(path: string): Promise<Asset | undefined> {
  switch (path) {
    case '/':
    case '/index.html':
      return { type: 'text/html; charset=utf-8', body: await readFile(`${PAGE_DIR}index.html`, 'utf8') };
    case '/page.js':
      return { type: 'text/javascript; charset=utf-8', body: await bundle() };
    default:
      return undefined;
  }
}
