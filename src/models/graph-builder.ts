/**
 * A few lines over `onnx-proto` to write ONNX graphs from TypeScript, so the built-in models
 * need no download and no binary in git: the graph is built in memory at load time.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type AttributeValue = number | string | readonly number[];

/**
 * ONNX's TensorProto.DataType numbers (fixed by the ONNX spec). Plain numbers, so the published
 * declarations need no onnx-proto types (whose own declarations do not compile without skipLibCheck).
 */
export const DType = { float: 1, uint8: 2, int64: 7 } as const satisfies Record<string, onnxProto.onnx.TensorProto.DataType>;
export type DTypeName = keyof typeof DType;

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  /** A fresh intermediate name. */
  tmp(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, type: DTypeName, shape: readonly (number | string)[]): string {
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: DTypeName, shape: readonly (number | string)[]): string {
    this.outputs.push(valueInfo(name, type, shape));
    return name;
  }

  constFloat(name: string, dims: readonly number[], values: readonly number[]): string {
    this.initializers.push({ name, dataType: DType.float, dims: [...dims], floatData: [...values] });
    return name;
  }

  constInt64(name: string, dims: readonly number[], values: readonly number[]): string {
    this.initializers.push({ name, dataType: DType.int64, dims: [...dims], int64Data: [...values] });
    return name;
  }

  /** Add a node; returns its output names (fresh ones unless given). */
  op(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttributeValue>> = {}, outputs: number | readonly string[] = 1): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.tmp(opType.toLowerCase())) : [...outputs];
    this.nodes.push({ opType, input: [...inputs], output: outs, name: this.tmp(`n_${opType}`), attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return outs;
  }

  /** Single-output node. */
  op1(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttributeValue>> = {}, output?: string): string {
    return this.op(opType, inputs, attrs, output ? [output] : 1)[0]!;
  }

  /**
   * `x` with every value whose magnitude is below `threshold` set to 0. Why: a field that decays
   * towards zero fills with float32 subnormals, and each arithmetic op on one costs tens to
   * hundreds of cycles on Intel CPUs (the demo world at feed 0.01 / kill 0.07 ran 8× slower).
   * ONNX Runtime's `session.set_denormal_as_zero` sets the flag on its pool threads only, so with
   * one intra-op thread (framehost's default on 2 cores) it changes nothing: flush in the graph.
   * Pick a threshold well above 1.2e-38 so that one step's products (v·v) stay normal too.
   */
  flushTiny(x: string, threshold: number): string {
    const eps = this.constFloat(this.tmp('flush_eps'), [], [threshold]);
    const zero = this.constFloat(this.tmp('flush_zero'), [], [0]);
    return this.op1('Where', [this.op1('Less', [this.op1('Abs', [x]), eps]), zero, x]);
  }

  encode(opset = 17): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'framehost',
      opsetImport: [{ domain: '', version: opset }],
      graph: { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, type: DTypeName, shape: readonly (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DType[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  return { name, type: T.INTS, ints: [...v] };
}
