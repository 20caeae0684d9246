import { readFileBytes } from './engine/io/files.ts';
import { readSafetensors } from './engine/io/index.ts';
import { relativeError } from './nets/replay_generator.ts';
const [a, b] = process.argv.slice(2);
const A = readSafetensors(await readFileBytes(a)).tensors as any, B = readSafetensors(await readFileBytes(b)).tensors as any;
let wo = 0, wg = 0;
for (const [k, t] of B) { if (k.startsWith('in.')) continue; const e = relativeError(A.get(k), t); if (k.startsWith('out.')) wo = Math.max(wo, e); else wg = Math.max(wg, e); }
console.log(b, 'worst out', wo.toExponential(2), 'worst grad', wg.toExponential(2));
