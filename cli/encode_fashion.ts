// `sgilo encode-fashion` (options: cli/commands.ts): codes and features of every Fashion-MNIST image
// through the shipped encoder (samplers/score/encode.ts), per split, into one output folder that is
// staged and moved into place whole (cli/outputs.ts).

import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { writeSafetensors } from '../engine/io/index.ts';
import { FashionEncoder, fashionImages } from '../nets/encoder.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import type { StyleGAN2 } from '../nets/stylegan2.ts';
import { writeActivationsFile } from '../samplers/score/data.ts';
import { encodeImages, featuresOf, parseSpace } from '../samplers/score/encode.ts';
import type { Parsed } from './args.ts';
import { writeAtomic, type Output } from './outputs.ts';
import { assertFinite, loadAs } from './checks.ts';
import { fromRoot } from './score_commands.ts';

const TRAIN_IMAGES = 60_000;
const TEST_IMAGES = 10_000;

export async function encodeFashionCommand(p: Parsed, out: Output): Promise<number> {
  const v = p.values;
  const genPath = fromRoot(String(v.generator));
  const dataDir = String(v.data);
  const spaces = String(v.spaces).split(',').map(parseSpace);
  const val = Number(v.val);
  const limit = p.given.has('limit') ? Number(v.limit) : Infinity;
  const chunk = Number(v.chunk);
  const files = ['train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz'].map((f) => `${dataDir}/${f}`);
  for (const f of files) if (!existsSync(f)) throw new Error(`${f}: missing (apt-get install -y dataset-fashion-mnist, or --data DIR)`);
  const [train, test] = files.map((f) => {
    try {
      return new Uint8Array(gunzipSync(readFileSync(f)));
    } catch (e) {
      throw new Error(`${f}: not a gzipped IDX image file (${(e as Error).message})`);
    }
  });
  const splits = [
    { name: 'train', idx: train, start: 0, count: Math.min(TRAIN_IMAGES - val, limit) },
    { name: 'val', idx: train, start: TRAIN_IMAGES - val, count: Math.min(val, limit) },
    { name: 'test', idx: test, start: 0, count: Math.min(TEST_IMAGES, limit) },
  ];
  const t0 = performance.now();
  const sec = () => ((performance.now() - t0) / 1000).toFixed(1);
  let enc: FashionEncoder | null = null;
  let g: StyleGAN2 | null = null;
  try {
    enc = await loadAs(genPath, 'generator', (b) => FashionEncoder.fromCheckpoint(b));
    for (const s of splits) {
      const name = `${s.name}-codes.safetensors`;
      const z = await encodeImages(enc, fashionImages(s.idx, s.start, s.count), chunk);
      assertFinite(z, 'the codes z', `encode-fashion ${s.name} split`);
      const meta = { kind: 'sgilo-codes', generator: String(v.generator), split: s.name, images: `${s.name === 'test' ? 't10k' : 'train'} ${s.start}..${s.start + s.count - 1}` };
      writeAtomic(`${out.path}/${name}`, writeSafetensors({ z: { dtype: 'float32', shape: [s.count, 128], data: z } }, meta));
      console.log(`${out.final}/${name}: ${s.count} codes (${sec()} s)`);
      for (const space of spaces) {
        const file = `${s.name}-${space}.safetensors`;
        g ??= await loadAs(genPath, 'generator', (b) => loadGenerator(b));
        const set = await featuresOf(g, z, space, chunk);
        assertFinite(set.data, `the ${space} features`, `encode-fashion ${s.name} split`);
        writeAtomic(`${out.path}/${file}`, writeActivationsFile({ ...set, meta: { ...set.meta, generator: String(v.generator), codes: `${String(v.out)}/${name}`, split: s.name } }));
        console.log(`${out.final}/${file}: [${set.shape.join(', ')}] (${sec()} s)`);
      }
    }
  } finally {
    enc?.dispose();
    (g as StyleGAN2 | null)?.dispose();
  }
  return 0;
}
