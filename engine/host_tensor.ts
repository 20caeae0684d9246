// The one host-side tensor type: `{dtype, shape, data}`, a typed array in row-major (C) order.
// Checkpoint readers return it (engine/io), the float64 references compute on it
// (engine/reference, as HostTensor<Float64Array>), and networks load their weights from it
// (nets, as HostTensor<Float32Array>), so a tensor read from a file, checked against a reference
// and written back is one value throughout.
//
// This file holds types only and imports nothing: engine/io and engine/reference, which may import
// nothing else of the engine (scripts/layering.ts), are allowed this one file.
//
// Legend
//   StorageDType  a dtype as stored on disk (safetensors F16 / torch HalfStorage are 'float16')
//   HostDType     a dtype as held in memory: float16 and bfloat16 are widened to float32 on read
//                 (the engine computes in f32), and the tensor remembers `stored` for writing back
//   int64         BigInt64Array (exact)

export type HostDType = 'float32' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'uint32' | 'bool';
export type StorageDType = HostDType | 'float16' | 'bfloat16';

export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint32Array;

/** The dtypes a data array can hold (a Uint8Array holds uint8 or bool); for the union, all of them. */
export type DTypeOf<D extends HostData> = D extends Float32Array
  ? 'float32'
  : D extends Float64Array
    ? 'float64'
    : D extends BigInt64Array
      ? 'int64'
      : D extends Int32Array
        ? 'int32'
        : D extends Int16Array
          ? 'int16'
          : D extends Int8Array
            ? 'int8'
            : D extends Uint32Array
              ? 'uint32'
              : 'uint8' | 'bool';

export interface HostTensor<D extends HostData = HostData> {
  dtype: DTypeOf<D>;
  shape: number[];
  data: D;
  /** The on-disk dtype when it differs from `dtype` (float16 / bfloat16 widened to float32). */
  stored?: StorageDType;
}
