// Prints bench/probes.ts's FMA peak on the adapter once per process, for comparing llvmpipe's
// environment settings (LP_NUM_THREADS, LP_NATIVE_VECTOR_WIDTH, ...) run by run; the results and
// the native peak they are read against are in bench/results/2026-12-06-cpu-floor-lavapipe.md.
//
//   LP_NUM_THREADS=1 node --import ./scripts/register-ts.mjs scripts/lavapipe_fma.ts [n] [iterations]
import { init } from '../engine/engine.ts';
import { runFmaPeak } from '../bench/probes.ts';

const eng = await init();
const n = process.argv[2] ? Number(process.argv[2]) : undefined;
const iterations = process.argv[3] ? Number(process.argv[3]) : undefined;
const r = await runFmaPeak({ targetSeconds: 0.5, repeats: 3, n, iterations });
const env = Object.entries(process.env).filter(([k]) => k.startsWith('LP_') || k.startsWith('GALLIVM')).map(([k, v]) => `${k}=${v}`).join(' ');
console.log(`${eng.gpu.adapter.description} ${env || '(default env)'}: ${r.value.toFixed(1)} GFLOP/s (${r.detail})`);
eng.destroy?.();
process.exit(0);
