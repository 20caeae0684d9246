// Damaged model files for the CLI tests: a copy of a safetensors file with one tensor's values
// replaced in place (the header and every other byte unchanged).

import { readFileSync, writeFileSync } from 'node:fs';

/** Copies `src` to `dst` with every float32 value of tensor `name` set to `value`. */
export function patchSafetensors(src: string, dst: string, name: string, value: number): void {
  const bytes = new Uint8Array(readFileSync(src));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const t = header[name];
  if (!t || t.dtype !== 'F32') throw new Error(`${src}: no float32 tensor "${name}"`);
  for (let o = 8 + headerLen + t.data_offsets[0]; o < 8 + headerLen + t.data_offsets[1]; o += 4) view.setFloat32(o, value, true);
  writeFileSync(dst, bytes);
}
