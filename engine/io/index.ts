// Checkpoint I/O entry point: re-exports the readers and offers `loadCheckpoint`, which takes the
// bytes of any supported file and detects the format:
//   torch zip / legacy  -> the saved object (nested plain objects, tensors as HostTensor)
//   plain pickle        -> an NVlabs network pickle's dict (engine/io/network_pickle.ts)
//   safetensors         -> { name: HostTensor, ... } (flat), metadata under `__metadata__`
//                          (non-enumerable, so key listings are the tensors only)
// Everything here works on bytes (Node, Deno, browsers); engine/io/files.ts reads files.

import { CheckpointFormatError } from './errors.ts';
import { readSafetensors } from './safetensors.ts';
import { loadTorchCheckpoint, type TorchLoadOptions } from './torch_checkpoint.ts';
import { isZip } from './zip.ts';
import { isPlainPickle, loadNetworkPickle } from './network_pickle.ts';

export * from './errors.ts';
export { asFloat32, flattenTensors, isHostTensor, toFloat64, type HostDType, type HostTensor, type StorageDType } from './host_tensor.ts';
export { loadModel, readSafetensors, saveModel, writeSafetensors, type SafetensorsFile } from './safetensors.ts';
export { isPlainPickle, loadNetworkPickle, persistentRecord, type PersistentRecord } from './network_pickle.ts';
export { detectTorchFormat, loadTorchCheckpoint, type TorchLoadOptions } from './torch_checkpoint.ts';

/** A safetensors file starts with a u64 header length whose header opens with '{'. */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 9 || isZip(bytes)) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return n <= BigInt(bytes.length - 8) && bytes[8] === 0x7b;
}

export async function loadCheckpoint(input: Uint8Array | ArrayBuffer, opts: TorchLoadOptions = {}): Promise<unknown> {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.length === 0) throw new CheckpointFormatError('checkpoint: the file is empty');
  if (!isSafetensors(bytes)) return isPlainPickle(bytes) ? loadNetworkPickle(bytes) : loadTorchCheckpoint(bytes, opts);
  const { tensors, metadata } = readSafetensors(bytes);
  const out: Record<string, unknown> = {};
  for (const [k, t] of tensors) Object.defineProperty(out, k, { value: t, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(out, '__metadata__', { value: metadata, enumerable: false });
  return out;
}
