// numpy values as data for the pickle allow-list: training code pickles numpy scalars (a warm-up
// learning rate `lr * np.minimum(...)`, a weight gain `1 / np.sqrt(n)`) and the dtypes they name.
//   numpy.dtype(spec, align, copy) + BUILD (version, byteorder, ...)   -> NumpyDtype (data)
//   numpy.core.multiarray.scalar(dtype, bytes)                          -> number (int64 beyond
//                                                                          2^53: bigint; bool: boolean)
// numpy >= 2 spells the module numpy._core.multiarray; both names are read. Arrays
// (numpy.core.multiarray._reconstruct) stay refused.

import { CheckpointFormatError, UnsupportedCheckpointError } from './errors.ts';
import { decodeElements, ITEM_SIZE, type StorageDType } from './host_tensor.ts';
import { describe, PickleObject, type GlobalImpl } from './pickle.ts';

const fail = (msg: string): never => {
  throw new CheckpointFormatError(`numpy: ${msg}`);
};

/** numpy type codes -> storage dtypes, as `np.dtype(...).str` spells them without the byte order. */
const CODES: Record<string, StorageDType> = {
  f8: 'float64', f4: 'float32', f2: 'float16', i8: 'int64', i4: 'int32', i2: 'int16', i1: 'int8',
  u1: 'uint8', u4: 'uint32', b1: 'bool',
};

export class NumpyDtype extends PickleObject {
  bigEndian = false;
  constructor(readonly code: string) {
    super();
  }
  get dtype(): StorageDType {
    return CODES[this.code] ?? fail(`dtype "${this.code}" is not one of ${Object.keys(CODES).join(', ')}`);
  }
  /** State (version, byteorder, subarray, names, fields, elsize, alignment, flags). */
  build(state: unknown): void {
    if (!Array.isArray(state) || state.length < 2) return fail(`dtype state is a ${describe(state)}, not a tuple`);
    const order = state[1];
    if (order !== '<' && order !== '>' && order !== '|' && order !== '=') fail(`dtype byte order ${JSON.stringify(order)}`);
    if (state[2] !== null || state[3] !== null) throw new UnsupportedCheckpointError(`numpy: structured or sub-array dtype "${this.code}"`);
    this.bigEndian = order === '>';
  }
}

function dtype(args: readonly unknown[]): NumpyDtype {
  const [spec] = args;
  if (typeof spec !== 'string') return fail(`numpy.dtype of a ${describe(spec)}`);
  return new NumpyDtype(spec.replace(/^[<>|=]/, ''));
}

function scalar(args: readonly unknown[]): unknown {
  const [dt, raw] = args;
  if (!(dt instanceof NumpyDtype)) return fail(`scalar of a ${describe(dt)}, not a numpy dtype`);
  if (!(raw instanceof Uint8Array)) return fail(`scalar ${dt.code} holds a ${describe(raw)}, not bytes`);
  const d = dt.dtype;
  if (raw.length !== ITEM_SIZE[d]) fail(`scalar ${dt.code} of ${raw.length} bytes`);
  const { data } = decodeElements(raw, d, 1, dt.bigEndian);
  const v = data[0];
  if (d === 'bool') return v !== 0;
  if (typeof v === 'bigint') return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
  return v;
}

export function numpyGlobals(): Map<string, GlobalImpl> {
  const g = new Map<string, GlobalImpl>();
  for (const m of ['numpy.core.multiarray', 'numpy._core.multiarray']) g.set(`${m}.scalar`, { call: scalar });
  g.set('numpy.dtype', { call: dtype });
  return g;
}
