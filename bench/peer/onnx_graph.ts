// A small builder for ONNX graphs over the `onnx-proto` bindings (protobufjs
// code generated from onnx/onnx's onnx.proto, v1.10.2 tag: IR version 8). Only
// what the decoder export needs: initializers as raw little-endian bytes,
// nodes with attributes, graph inputs and outputs with symbolic dimensions,
// and one encode() to the bytes an InferenceSession takes.
//
// Every initializer and node name is unique; a name used twice is a bug in the
// exporter, so it throws rather than silently shadowing a tensor.

import onnxProto from 'onnx-proto';

// onnx-proto is CommonJS (`module.exports = $root`); its namespace is `.onnx`
// on the default import under both Node's ESM loader and Vite.
const { onnx } = onnxProto as unknown as { onnx: typeof import('onnx-proto').onnx };

/** onnx.TensorProto.DataType values of the element types we emit. */
export const DT = { float: 1, uint8: 2, int32: 6, int64: 7 } as const;
export type ElemType = keyof typeof DT;

/** A dimension: a fixed size, or a symbolic name ("batch_size"). */
export type Dim = number | string;

export type AttrValue = number | string | number[] | { float: number };

export class GraphBuilder {
  private readonly nodes: import('onnx-proto').onnx.INodeProto[] = [];
  private readonly initializers: import('onnx-proto').onnx.ITensorProto[] = [];
  private readonly inputs: import('onnx-proto').onnx.IValueInfoProto[] = [];
  private readonly outputs: import('onnx-proto').onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  /** op_type (with its domain when not the default) -> how many nodes use it. */
  readonly opCounts = new Map<string, number>();
  /** Bytes of initializer data, for the size report. */
  initializerBytes = 0;

  constructor(readonly name: string) {}

  private claim(name: string, what: string): void {
    if (this.names.has(name)) throw new Error(`GraphBuilder: ${what} "${name}" is defined twice`);
    this.names.add(name);
  }

  /** A constant tensor; `data` is stored as its raw little-endian bytes. */
  initializer(name: string, type: ElemType, dims: readonly number[], data: Float32Array | Uint8Array | Int32Array | BigInt64Array): string {
    this.claim(name, 'tensor');
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`GraphBuilder: initializer "${name}" has ${data.length} values for dims [${dims.join(', ')}] (${n})`);
    const rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dataType: DT[type], dims: [...dims], rawData });
    this.initializerBytes += rawData.byteLength;
    return name;
  }

  /** A 1-D int64 constant (shapes, axes). */
  int64s(name: string, values: readonly number[]): string {
    return this.initializer(name, 'int64', [values.length], BigInt64Array.from(values, (v) => BigInt(v)));
  }

  /** A scalar int64 constant. */
  int64Scalar(name: string, value: number): string {
    return this.initializer(name, 'int64', [], BigInt64Array.of(BigInt(value)));
  }

  /**
   * A node; returns its output names. An empty string in `inputs` or
   * `outputs` is an omitted optional argument, as ONNX spells it.
   * Integer attributes are numbers; a float attribute is `{ float: x }`.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[], attrs: Record<string, AttrValue> = {}, domain = ''): string[] {
    const name = `${outputs.find(Boolean) ?? opType}/${opType}`;
    this.claim(name, 'node');
    for (const o of outputs) if (o) this.claim(o, 'tensor');
    const attribute = Object.entries(attrs).map(([k, v]) => attr(k, v));
    this.nodes.push({ name, opType, domain, input: [...inputs], output: [...outputs], attribute });
    const key = domain ? `${domain}.${opType}` : opType;
    this.opCounts.set(key, (this.opCounts.get(key) ?? 0) + 1);
    return [...outputs];
  }

  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.claim(name, 'tensor');
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares an existing tensor (a node's output) a graph output. */
  output(name: string, type: ElemType, dims: readonly Dim[]): void {
    if (!this.names.has(name)) throw new Error(`GraphBuilder: output "${name}" is not produced by any node`);
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** The serialized ModelProto. `opsets` maps domain ('' is ai.onnx) to version. */
  encode(opsets: Record<string, number>, producer: string, metadata: Record<string, string> = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: producer,
      opsetImport: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function attr(name: string, v: AttrValue): import('onnx-proto').onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`GraphBuilder: attribute ${name} = ${v} must be an integer; write { float: ${v} } for a float`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  return { name, type: T.FLOAT, f: v.float };
}

function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): import('onnx-proto').onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: DT[type], shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}
