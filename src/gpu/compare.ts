/**
 * A GPU session's first output against the CPU's on the same input. GPU kernels reorder sums
 * and may use fused or lower-precision arithmetic, so outputs are never bit-identical; a wrong
 * kernel, a missing op or a driver fault shows as far larger differences. The tolerance:
 * - float outputs: every value within |gpu − cpu| ≤ 1e-3 + 1e-2·|cpu|;
 * - integer outputs (uint8 pictures): at most 1% of values more than 2 levels apart (a value on
 *   a rounding edge may land one palette index over; a wrong picture moves most of them).
 */
import * as ort from 'onnxruntime-node';
import { seededRandom } from '../util/random.ts';

/** A session's input or output as ONNX Runtime describes it. */
export interface TensorInfo {
  readonly name: string;
  readonly type: string;
  /** Fixed dimensions as numbers, symbolic ones by name. */
  readonly shape: readonly (number | string)[];
}

export const TOLERANCE = { floatAbs: 1e-3, floatRel: 1e-2, intLevels: 2, intShare: 0.01 } as const;

export interface OutputCheck {
  readonly ok: boolean;
  /** The output that failed (or the worst one when all passed). */
  readonly output: string;
  readonly maxAbsDiff: number;
  /** Values outside the tolerance, over all outputs. */
  readonly outside: number;
  readonly values: number;
  readonly note?: string;
}

type Numeric = Float32Array | Float64Array | Uint8Array | Int8Array | Int32Array | Uint16Array | Int16Array;

function numeric(t: ort.Tensor): Numeric | undefined {
  const d = t.data;
  return d instanceof Float32Array || d instanceof Float64Array || d instanceof Uint8Array || d instanceof Int8Array || d instanceof Int32Array || d instanceof Uint16Array || d instanceof Int16Array ? d : undefined;
}

interface One {
  readonly maxAbs: number;
  readonly outside: number;
  readonly ok: boolean;
}

function compareOne(gpu: Numeric, cpu: Numeric, isFloat: boolean): One {
  let maxAbs = 0;
  let outside = 0;
  for (let i = 0; i < cpu.length; i++) {
    const a = gpu[i]!;
    const b = cpu[i]!;
    const diff = Math.abs(a - b);
    // NaN on one side only is a mismatch; NaN on both is agreement.
    const bad = Number.isNaN(diff) ? Number.isNaN(a) !== Number.isNaN(b) : isFloat ? diff > TOLERANCE.floatAbs + TOLERANCE.floatRel * Math.abs(b) : diff > TOLERANCE.intLevels;
    if (bad) outside++;
    if (diff > maxAbs) maxAbs = diff;
  }
  const ok = isFloat ? outside === 0 : outside <= TOLERANCE.intShare * cpu.length;
  return { maxAbs, outside, ok };
}

/** Compares every output both sessions produced for the same feeds. */
export function compareOutputs(gpu: Readonly<Record<string, ort.Tensor>>, cpu: Readonly<Record<string, ort.Tensor>>): OutputCheck {
  let worst: OutputCheck = { ok: true, output: '', maxAbsDiff: 0, outside: 0, values: 0 };
  let outside = 0;
  let values = 0;
  for (const [name, c] of Object.entries(cpu)) {
    const g = gpu[name];
    const cd = numeric(c);
    const gd = g ? numeric(g) : undefined;
    if (!g || !cd || !gd || gd.length !== cd.length || g.type !== c.type) {
      return { ok: false, output: name, maxAbsDiff: Infinity, outside: cd?.length ?? 0, values: cd?.length ?? 0, note: `output ${name}: missing or of another type or size` };
    }
    const one = compareOne(gd, cd, c.type === 'float32' || c.type === 'float64');
    outside += one.outside;
    values += cd.length;
    if (!one.ok) return { ok: false, output: name, maxAbsDiff: one.maxAbs, outside, values };
    if (one.maxAbs >= worst.maxAbsDiff) worst = { ...worst, output: name, maxAbsDiff: one.maxAbs };
  }
  return { ...worst, outside, values };
}

/** Symbolic dimensions get this size in a made-up probe (small: the CPU runs it too). */
const PROBE_DIM = 32;

/**
 * Feeds for a comparison when the model author gave none: seeded values in [0, 1) for float
 * inputs, bytes for uint8, zeros for integer ones (safe as indices). Undefined when an input
 * has a type the probe cannot make up: the comparison is then skipped, and the log says so.
 */
export function probeFeeds(inputs: readonly TensorInfo[]): Record<string, ort.Tensor> | undefined {
  const random = seededRandom(22);
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) {
    const dims = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : PROBE_DIM));
    const size = dims.reduce((a, b) => a * b, 1);
    if (input.type === 'float32') feeds[input.name] = new ort.Tensor('float32', Float32Array.from({ length: size }, () => random()), dims);
    else if (input.type === 'uint8') feeds[input.name] = new ort.Tensor('uint8', Uint8Array.from({ length: size }, () => Math.floor(random() * 256)), dims);
    else if (input.type === 'int64') feeds[input.name] = new ort.Tensor('int64', new BigInt64Array(size), dims);
    else if (input.type === 'int32') feeds[input.name] = new ort.Tensor('int32', new Int32Array(size), dims);
    else return undefined;
  }
  return feeds;
}
