// `sgilo reconstruct --queue URL --save-features PATH`: inversions of many shipped test images (the
// score models' training data) as queued jobs, one per image, run by `sgilo worker` with the
// shipped models and tuned values; `--collect` merges the done jobs' features, in image order,
// into one activations file (the format `train-score --data` reads). Each job gives the numbers
// `reconstruct --image-index I --seed S --save-features` gives for that image alone.

import { writeFileSync } from 'node:fs';
import { writeActivationsFile } from '../samplers/score/data.ts';
import { readTunedFile, TUNED_FILE } from '../samplers/inverse/fashion.ts';
import { lookupTuned, type Variant } from '../samplers/inverse/tuning.ts';
import { testImages } from '../samplers/inverse/demo.ts';
import { UsageError, type Parsed } from './args.ts';
import { fileRef, jobId, protocolModelFiles, type ExperimentJob } from './experiment_jobs.ts';
import type { Output } from './outputs.ts';
import { claimExperiment, enqueue, jobStates, openQueue, parseQueueUrl } from './queue.ts';

export async function queuedInversions(p: Parsed, output: Output | undefined): Promise<number> {
  const v = p.values;
  const q = parseQueueUrl(String(v.queue));
  const first = Number(v['image-index']);
  const n = p.given.has('images') ? Number(v.images) : 1;
  await testImages(n, first).catch((e) => {
    throw new UsageError(`--image-index ${first} --images ${n}: ${(e as Error).message}`);
  });
  const spec = String(v.operator);
  const variant = String(v.method).trim() as Variant;
  const steps = Number(v.steps);
  const chains = Number(v.chains);
  const seed = Number(v.seed);
  const blocks = String(v.blocks).split(',').filter((t) => t.trim()).map(Number);
  const tunedPath = p.given.has('tuned') ? String(v.tuned) : TUNED_FILE;
  const tuned = v.presets === true ? null : await readTunedFile(tunedPath, p.given.has('tuned'));
  const { values, source } = lookupTuned(tuned, variant, spec);
  const models = await protocolModelFiles();
  const tunedRef = tuned ? fileRef(tunedPath) : null;
  const jobs = Array.from({ length: n }, (_, i): ExperimentJob => ({ kind: 'features', spec, variant, values, source, image: first + i, steps, blocks, seed, chains, keepSamples: false, models, tuned: tunedRef }));
  const descriptor = { protocol: 'inversions', spec, variant, values, steps, blocks, seed, chains, models, tuned: tunedRef };
  const open = await openQueue(q);
  try {
    if (!output) {
      await claimExperiment(open, descriptor, true);
      const c = await enqueue(open, jobs);
      console.log(`${q.shown}: ${n} inversions (${variant}, ${spec}; values ${source}); ${c.added} added, ${c.requeued} failed ones re-queued${c.completed ? `, ${c.completed} done already` : ''}. Run \`sgilo worker --queue ${q.shown}\`; add --collect to write ${v['save-features']}.`);
      return 0;
    }
    await claimExperiment(open, descriptor, false);
    const states = await jobStates(open, jobs);
    const done = jobs.filter((j) => states.get(jobId(j))?.result?.features);
    const count = (s: string) => [...states.values()].filter((x) => x.state === s).length;
    console.log(`${q.shown}: ${done.length} of ${n} inversions done, ${count('active')} running, ${count('waiting') + count('delayed') + count('prioritized')} waiting, ${count('failed')} failed, ${count('missing')} not enqueued`);
    if (!done.length) throw new Error(`no inversion of ${q.shown} is done yet; nothing to write`);
    const parts = done.map((j) => states.get(jobId(j))!.result!.features!);
    const [, ...rest] = parts[0].shape;
    const per = rest.reduce((a, b) => a * b, 1) * chains;
    const data = new Float32Array(per * parts.length);
    parts.forEach((f, i) => {
      const bytes = Buffer.from(f.data, 'base64');
      if (bytes.byteLength !== per * 4) throw new Error(`job ${jobId(done[i])}: ${bytes.byteLength} bytes of features, expected ${per * 4}`);
      data.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), i * per);
    });
    const images = done.map((j) => j.image);
    const shape = [parts.length * chains, ...rest] as [number, number, number, number];
    const block = parts[0].block;
    const bytes = writeActivationsFile({ data, shape, meta: { block: String(block - 1), source: `inversions (${variant}, ${spec}, ${steps} steps per round, seed ${seed}) of shipped test images ${images[0]}-${images[images.length - 1]} (${images.length}), merged from ${q.shown}`, generator: models[0].path, images: images.join(',') } });
    writeFileSync(output.path, bytes); // the output's temporary name, moved into place when the command succeeds
    console.log(`wrote ${output.final}: features after block ${block - 1} of ${images.length} images x ${chains} chains, [${shape.join(', ')}]`);
    return 0;
  } finally {
    await open.close();
  }
}
