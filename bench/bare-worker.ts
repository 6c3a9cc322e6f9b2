/**
 * The benchmark's "bare" variant: the demo graph run in a tight loop on a worker thread with
 * the same inputs and the same ORT settings (provider, threads) as the runtime, and nothing
 * else: the physical limit that framehost's overhead is measured against.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import type { ProviderChoice } from '../src/gpu/providers.ts';
import { openBare } from './workloads.ts';

const { size, threads, provider } = workerData as { size: number; threads?: number; provider: ProviderChoice };
const bare = await openBare('demo', size, { provider, ...(threads ? { threads } : {}) }, pino({ level: 'silent' }));

parentPort!.on('message', async (m: { ms: number }) => {
  let frames = 0;
  const started = performance.now();
  while (performance.now() - started < m.ms) {
    await bare.step();
    frames++;
  }
  parentPort!.postMessage({ frames, ms: performance.now() - started });
});
parentPort!.postMessage({ ready: true });
