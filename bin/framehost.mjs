#!/usr/bin/env node
// The `framehost` command. Installed as a dependency (under node_modules, with the dist/ that
// `npm pack` builds): runs the built JavaScript. From a git checkout: runs the TypeScript sources
// through tsx, no build step, with `import 'framehost'` resolved to those sources (the
// `framehost-source` export condition) so a model and the CLI share one copy. TypeScript models
// register tsx (ESM and CommonJS) when they are loaded, in each thread (src/util/typescript.ts).
// process.argv is left as it is; main reads the arguments after the script's path.
import { existsSync, realpathSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = realpathSync(fileURLToPath(new URL('..', import.meta.url)));
const built = new URL('../dist/cli/main.js', import.meta.url);
const installed = root.split(/[\\/]/).includes('node_modules') && existsSync(fileURLToPath(built));

if (installed) {
  await import(built.href);
} else {
  // The same flags as src/util/typescript.ts, so nothing registers twice.
  globalThis[Symbol.for('framehost.typescript')] = true;
  (await import('tsx/esm/api')).register();
  (await import('tsx/cjs/api')).register();
  const { useSourceCondition } = await import('../src/util/typescript.ts');
  useSourceCondition();
  await import('../src/cli/main.ts');
}
