/**
 * The demo world at feed 0.01 / kill 0.07 (a dying pattern) must not fill its field with float32
 * subnormals: on Intel CPUs each op on one costs a microcode assist, and a frame took 8-9× as
 * long. A count, not a timing: deterministic on any CPU, and it fails the same way on AMD, where
 * the slowdown itself is small. Real ONNX Runtime, one intra-op thread (framehost's default here).
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildGrayScottGraph } from '../src/models/gray-scott/graph.ts';
import { seedField, type Field } from '../src/models/gray-scott/model.ts';
import { paletteBytes } from '../src/models/gray-scott/palettes.ts';
import { GraphBuilder } from '../src/models/graph-builder.ts';

const SIZE = 64;
const SMALLEST_NORMAL = 1.1754944e-38;

function subnormals(values: Float32Array): number {
  let n = 0;
  for (const v of values) if (v !== 0 && Math.abs(v) < SMALLEST_NORMAL) n++;
  return n;
}

/** Runs `frames` frames from the seed field at the given rates; returns the field. */
async function run(frames: number, feed: number, kill: number, steps = 8): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(buildGrayScottGraph(steps), { intraOpNumThreads: 1 });
  const field: Field = seedField(SIZE);
  const palette = new ort.Tensor('uint8', paletteBytes('ocean'), [256, 4]);
  let uv = field.uv;
  for (let i = 0; i < frames; i++) {
    const out = await session.run({
      state: new ort.Tensor('float32', uv, [1, 2, SIZE, SIZE]),
      feed: new ort.Tensor('float32', new Float32Array([feed]), [1]),
      kill: new ort.Tensor('float32', new Float32Array([kill]), [1]),
      palette,
    });
    uv = out.state_out!.data as Float32Array;
  }
  await session.release();
  return uv;
}

describe('subnormals in the demo world', () => {
  it('a dying pattern (feed 0.01, kill 0.07) holds no subnormal after 250 frames', async () => {
    // Without the flush every V value of this field was subnormal from frame ~150 on (4,096 here).
    const uv = await run(250, 0.01, 0.07);
    expect(subnormals(uv)).toBe(0);
  });

  it('also with 32 steps a frame (the longest run between two frames)', async () => {
    expect(subnormals(await run(80, 0.01, 0.07, 32))).toBe(0);
  });

  it('the healthy pattern still lives (the flush removes nothing visible)', async () => {
    const uv = await run(250, 0.0545, 0.062);
    const v = uv.subarray(SIZE * SIZE);
    expect(v.filter((x) => x > 0.1).length).toBeGreaterThan(50);
  });

  it('flushTiny zeroes magnitudes below the threshold and keeps the rest', async () => {
    const g = new GraphBuilder('flush');
    const x = g.input('x', 'float', [5]);
    g.op1('Identity', [g.flushTiny(x, 1e-9)], {}, 'y');
    g.output('y', 'float', [5]);
    const session = await ort.InferenceSession.create(g.encode());
    const input = new Float32Array([1e-40, -1e-40, 1e-10, 2e-9, -0.5]);
    const out = await session.run({ x: new ort.Tensor('float32', input, [5]) });
    expect([...(out.y!.data as Float32Array)]).toEqual([0, 0, 0, Math.fround(2e-9), -0.5]);
  });
});
