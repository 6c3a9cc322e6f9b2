/**
 * Start a worker thread from a module URL that may be TypeScript. From source (tsx, vitest),
 * a worker does not inherit the main thread's loader hooks, so a tiny CommonJS bootstrap
 * registers tsx in the worker before importing the module; a built (.js) module is imported
 * as it is.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOT = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.__tsx) (await import(workerData.__tsx)).register();
  await import(workerData.__entry);
})();
`;

export function startWorker(entry: URL, options: WorkerOptions & { workerData?: object } = {}): Worker {
  const tsx = entry.pathname.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : undefined;
  return new Worker(BOOT, { ...options, eval: true, workerData: { ...options.workerData, __entry: entry.href, __tsx: tsx } });
}
