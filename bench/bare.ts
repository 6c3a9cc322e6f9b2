/** The bare loop (bench/bare-worker.ts) on a worker thread: shared by bench/run.ts and bench/room.ts. */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../src/util/worker.ts';
import type { ProviderChoice } from '../src/gpu/providers.ts';

export class Bare {
  private readonly worker: Worker;
  private readonly ready: Promise<void>;
  constructor(size: number, ort: { threads: number | undefined; provider: ProviderChoice }) {
    this.worker = startWorker(new URL('./bare-worker.ts', import.meta.url), { workerData: { size, threads: ort.threads, provider: ort.provider } });
    this.ready = new Promise((r) => this.worker.once('message', () => r()));
  }
  async fps(ms: number): Promise<number> {
    await this.ready;
    const result = new Promise<{ frames: number; ms: number }>((r) => this.worker.once('message', r));
    this.worker.postMessage({ ms });
    const { frames, ms: took } = await result;
    return (frames * 1000) / took;
  }
  close(): Promise<number> {
    return this.worker.terminate();
  }
}
