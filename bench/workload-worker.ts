/**
 * A workload's bare loop on a worker thread (as the runtime's inference runs on one): it opens
 * the session, says `ready` (with the provider and the first output), then answers each
 * `{ ms }` with the frames it ran in that time, at least one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { openBare, type BareOptions, type WorkloadName } from './workloads.ts';

export interface WorkloadWorkerData extends BareOptions {
  readonly name: WorkloadName;
  readonly size: number;
}

const data = workerData as WorkloadWorkerData;
try {
  const bare = await openBare(data.name, data.size, data, pino({ level: 'warn' }));
  const first = await bare.step();
  parentPort!.postMessage({ type: 'ready', provider: bare.onnx.provider, adapter: bare.onnx.adapter, check: bare.onnx.check ?? null, first }, [first.buffer as ArrayBuffer]);
  parentPort!.on('message', async (m: { ms: number }) => {
    let frames = 0;
    const started = performance.now();
    // At least one frame: a decoder on the CPU may take longer than a short phase.
    while (frames === 0 || performance.now() - started < m.ms) {
      await bare.step();
      frames++;
    }
    parentPort!.postMessage({ type: 'window', frames, ms: performance.now() - started });
  });
} catch (err) {
  parentPort!.postMessage({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
}
