#!/usr/bin/env node
// Development-time script (not run by tests or CI): extracts the first Fashion-MNIST test images
// from Debian's dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`) into the repo,
// preprocessed as the Fashion model was trained: 28x28 padded to 32x32 with background -1, values
// in [-1, 1], gray. Writes models/fashion32/test-images.safetensors (`images` [N, 1, 32, 32],
// `labels` [N]) and PNGs of the first 8 under models/fashion32/test-images/.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { PNG } from 'pngjs';

const N = Number(process.argv[2] ?? 64);
const dir = '/usr/share/datasets/fashion-mnist';
const images = gunzipSync(readFileSync(`${dir}/t10k-images-idx3-ubyte.gz`));
const labels = gunzipSync(readFileSync(`${dir}/t10k-labels-idx1-ubyte.gz`));
if (images.readUInt32BE(0) !== 2051 || labels.readUInt32BE(0) !== 2049) throw new Error('not IDX image/label files');
const out = new Float32Array(N * 32 * 32).fill(-1);
const lab = new Float32Array(N);
for (let n = 0; n < N; n++) {
  lab[n] = labels[8 + n];
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out[n * 1024 + (y + 2) * 32 + x + 2] = (images[16 + n * 784 + y * 28 + x] / 255) * 2 - 1;
}
// safetensors: 8-byte header length, JSON header, raw little-endian data
const header = JSON.stringify({
  __metadata__: { source: 'Fashion-MNIST t10k, first images; 28x28 padded to 32x32 with -1, values in [-1, 1]' },
  images: { dtype: 'F32', shape: [N, 1, 32, 32], data_offsets: [0, out.byteLength] },
  labels: { dtype: 'F32', shape: [N], data_offsets: [out.byteLength, out.byteLength + lab.byteLength] },
});
const pad = (8 - (header.length % 8)) % 8;
const h = Buffer.from(header + ' '.repeat(pad));
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(h.length));
writeFileSync('models/fashion32/test-images.safetensors', Buffer.concat([len, h, Buffer.from(out.buffer), Buffer.from(lab.buffer)]));
mkdirSync('models/fashion32/test-images', { recursive: true });
for (let n = 0; n < 8; n++) {
  const png = new PNG({ width: 32, height: 32 });
  for (let i = 0; i < 1024; i++) {
    const v = Math.round((out[n * 1024 + i] + 1) * 127.5);
    png.data.set([v, v, v, 255], i * 4);
  }
  writeFileSync(`models/fashion32/test-images/test-${String(n).padStart(3, '0')}.png`, PNG.sync.write(png));
}
console.log(`wrote ${N} images`);
