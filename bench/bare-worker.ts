/**
 * The benchmark's "bare" variant: the demo graph run in a tight loop on a worker thread with
 * the same inputs and the same ORT settings as the runtime, and nothing else: the physical
 * limit that framehost's overhead is measured against.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { createOnnxSession } from '../src/gpu/session.ts';
import { buildGrayScottGraph } from '../src/models/gray-scott/graph.ts';
import { seedField } from '../src/models/gray-scott/model.ts';
import { paletteBytes } from '../src/models/gray-scott/palettes.ts';

const { size, threads } = workerData as { size: number; threads?: number };
const onnx = await createOnnxSession(buildGrayScottGraph(8), threads ? { threads } : {}, pino({ level: 'silent' }));
const field = seedField(size);
const feed = new ort.Tensor('float32', field.feed, [1]);
const kill = new ort.Tensor('float32', field.kill, [1]);
const palette = new ort.Tensor('uint8', paletteBytes('ocean'), [256, 4]);

parentPort!.on('message', async (m: { ms: number }) => {
  let frames = 0;
  let state = field.uv.slice();
  let spare = new Float32Array(state.length);
  const shape = [1, 2, size, size];
  const started = performance.now();
  while (performance.now() - started < m.ms) {
    // Exactly the demo model's call: the next field into a spare buffer, a fresh picture.
    await onnx.session.run({ state: new ort.Tensor('float32', state, shape), feed, kill, palette }, { state_out: new ort.Tensor('float32', spare, shape), rgba: null });
    [state, spare] = [spare, state];
    frames++;
  }
  parentPort!.postMessage({ frames, ms: performance.now() - started });
});
parentPort!.postMessage({ ready: true });
