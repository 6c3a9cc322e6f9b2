/**
 * Start a worker thread from a module URL that may be TypeScript. A worker does not inherit the
 * main thread's loader hooks, so a tiny CommonJS bootstrap sets the worker up before importing
 * the entry: from framehost's sources (a checkout, tsx, vitest) it registers tsx (ESM and
 * CommonJS) and the `framehost-source` export condition, as the bin does on the main thread
 * (see typescript.ts); a built (.js) entry is imported as it is, and a TypeScript model registers
 * tsx when it is loaded (loadModelModule).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { RUNNING_FROM_SOURCE } from './typescript.ts';

// The flags are the ones typescript.ts sets, so the worker's own registerTypeScript() is a no-op after this.
const BOOT = `
const { workerData } = require('node:worker_threads');
(async () => {
  const boot = workerData.__boot;
  if (boot) {
    if (!globalThis[Symbol.for('framehost.typescript')]) {
      globalThis[Symbol.for('framehost.typescript')] = true;
      (await import(boot.esm)).register();
      (await import(boot.cjs)).register();
    }
    (await import(boot.sources)).useSourceCondition();
  }
  await import(workerData.__entry);
})();
`;

export function startWorker(entry: URL, options: WorkerOptions & { workerData?: object } = {}): Worker {
  const boot = RUNNING_FROM_SOURCE || entry.pathname.endsWith('.ts')
    ? { esm: import.meta.resolve('tsx/esm/api'), cjs: import.meta.resolve('tsx/cjs/api'), sources: new URL('./typescript.ts', import.meta.url).href }
    : undefined;
  return new Worker(BOOT, { ...options, eval: true, workerData: { ...options.workerData, __entry: entry.href, __boot: boot } });
}
