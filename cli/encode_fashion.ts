// `sgilo encode-fashion`: codes and features of every Fashion-MNIST image through the shipped
// encoder (samplers/score/encode.ts). Resumable: every output file that already exists is kept.

import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { writeSafetensors } from '../engine/io/index.ts';
import { FashionEncoder, fashionImages } from '../nets/encoder.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import type { StyleGAN2 } from '../nets/stylegan2.ts';
import { readCodesFile, writeActivationsFile } from '../samplers/score/data.ts';
import { encodeImages, featuresOf, parseSpace } from '../samplers/score/encode.ts';
import { parseArgs } from './score_commands.ts';

export const ENCODE_USAGE = `usage: sgilo encode-fashion [options]
  encodes Fashion-MNIST (Debian's dataset-fashion-mnist) with the generator checkpoint's encoder and
  writes, per split, <out>/<split>-codes.safetensors (z [N, 128]) and <out>/<split>-<space>.safetensors
  (activations files). Splits: train = training images 0..60000-val-1, val = the last --val training
  images (held out by index), test = the t10k images (never trained on). Files that exist are kept.
  --generator F   default models/fashion32/fashion32-stylegan2.pt
  --data DIR      default /usr/share/datasets/fashion-mnist
  --out DIR       default out/fashion
  --spaces LIST   default latent,block0,block1
  --val N         default 5000
  --limit N       at most N images per split (quick runs)
  --chunk N       images per GPU batch (default 500)`;

export async function encodeFashionCommand(argv: string[]): Promise<number> {
  const known = ['generator', 'data', 'out', 'spaces', 'val', 'limit', 'chunk'];
  if (argv.includes('--help')) return console.log(ENCODE_USAGE), 0;
  for (const a of argv) if (a.startsWith('--') && !known.includes(a.slice(2))) throw new Error(`unknown option ${a}\n${ENCODE_USAGE}`);
  const a = parseArgs(argv);
  if (a.pos.length) throw new Error(`unexpected argument "${a.pos[0]}"\n${ENCODE_USAGE}`);
  const genPath = a.get('generator') ?? 'models/fashion32/fashion32-stylegan2.pt';
  const dataDir = a.get('data') ?? '/usr/share/datasets/fashion-mnist';
  const out = a.get('out') ?? 'out/fashion';
  const spaces = (a.get('spaces') ?? 'latent,block0,block1').split(',').map(parseSpace);
  const val = a.num('val', 5000);
  const limit = a.num('limit', Infinity);
  const chunk = a.num('chunk', 500);
  if (!(Number.isInteger(val) && val >= 1 && val < 60000)) throw new RangeError(`--val must be an integer in 1..59999, got ${val}`);
  for (const f of ['train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz']) if (!existsSync(`${dataDir}/${f}`)) throw new Error(`${dataDir}/${f} missing: apt-get install -y dataset-fashion-mnist`);
  mkdirSync(out, { recursive: true });
  const train = new Uint8Array(gunzipSync(readFileSync(`${dataDir}/train-images-idx3-ubyte.gz`)));
  const test = new Uint8Array(gunzipSync(readFileSync(`${dataDir}/t10k-images-idx3-ubyte.gz`)));
  const splits = [
    { name: 'train', idx: train, start: 0, count: Math.min(60000 - val, limit) },
    { name: 'val', idx: train, start: 60000 - val, count: Math.min(val, limit) },
    { name: 'test', idx: test, start: 0, count: Math.min(10000, limit) },
  ];
  const t0 = performance.now();
  const sec = () => ((performance.now() - t0) / 1000).toFixed(1);
  // Written under a temporary name and renamed, so an interrupted run never leaves a partial file.
  const write = async (path: string, bytes: Uint8Array) => {
    await writeFileBytes(`${path}.part`, bytes);
    renameSync(`${path}.part`, path);
  };
  let enc: FashionEncoder | null = null;
  let g: StyleGAN2 | null = null;
  try {
    for (const s of splits) {
      const codesPath = `${out}/${s.name}-codes.safetensors`;
      let z: Float32Array;
      if (existsSync(codesPath)) z = readCodesFile(await readFileBytes(codesPath), codesPath).z;
      else {
        enc ??= await FashionEncoder.fromCheckpoint(await readFileBytes(genPath));
        z = await encodeImages(enc, fashionImages(s.idx, s.start, s.count), chunk);
        const i = z.findIndex((v) => !Number.isFinite(v));
        if (i >= 0) throw new Error(`${s.name}: code value ${i} is ${z[i]}`);
        const meta = { kind: 'sgilo-codes', generator: genPath, split: s.name, images: `${s.name === 'test' ? 't10k' : 'train'} ${s.start}..${s.start + s.count - 1}` };
        await write(codesPath, writeSafetensors({ z: { dtype: 'float32', shape: [s.count, 128], data: z } }, meta));
        console.log(`${codesPath}: ${s.count} codes (${sec()} s)`);
      }
      for (const space of spaces) {
        const path = `${out}/${s.name}-${space}.safetensors`;
        if (existsSync(path)) continue;
        g ??= await loadGenerator(await readFileBytes(genPath));
        const set = await featuresOf(g, z, space, chunk);
        const i = set.data.findIndex((v) => !Number.isFinite(v));
        if (i >= 0) throw new Error(`${s.name} ${space}: feature value ${i} is ${set.data[i]}`);
        await write(path, writeActivationsFile({ ...set, meta: { ...set.meta, generator: genPath, codes: codesPath, split: s.name } }));
        console.log(`${path}: [${set.shape.join(', ')}] (${sec()} s)`);
      }
    }
  } finally {
    enc?.dispose();
    (g as StyleGAN2 | null)?.dispose();
  }
  return 0;
}
