// The layering check (docs/design.md, "Layers"): reads the relative imports of every TypeScript
// source file and reports import circles and imports that run the wrong way between layers.
// `npm test` runs it (test/layering.test.ts); `node --import ./scripts/register-ts.mjs
// scripts/layering.ts` prints the findings and exits 1 when there are any.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Top-level layers, lowest first: a file may import from its own layer and the ones below. */
export const LAYERS = ['engine', 'nets', 'samplers', 'bench', 'cli'] as const;
/** Folders that may import any layer (entry points and the test suite). */
export const TOP = ['test', 'scripts'];

/**
 * Rules inside a layer, as [importer prefix, imported prefix, why]: an import from a file under
 * the first prefix of a file under the second is wrong.
 */
export const INNER_RULES: [string, string, string][] = [
  ['engine/io/', 'engine/', 'file formats stand alone: engine/io imports only engine/io and the type file host_tensor.ts'],
  ['engine/reference/', 'engine/', 'float64 references are pure host math: they import only engine/reference, shape.ts, elementwise_table.ts and host_tensor.ts'],
  ['engine/', 'engine/ops/', 'the engine core does not know the ops'],
  ['engine/', 'engine/cases/', 'gradcheck cases sit on top of the ops'],
  ['samplers/score/', 'samplers/inverse/', 'score models do not know the inverse problems that use them'],
  ['samplers/score/', 'samplers/theory/', 'the theory experiment is separate'],
  ['samplers/theory/', 'samplers/inverse/', 'the theory experiment is separate'],
  ['samplers/theory/', 'samplers/score/', 'the theory experiment is separate'],
  ['samplers/inverse/', 'samplers/theory/', 'the theory experiment is separate'],
];

/**
 * Allowed despite INNER_RULES: [importer prefix, imported file]. engine/host_tensor.ts is the one
 * host tensor type that checkpoint readers return and the references compute on; it holds types
 * only and imports nothing, so engine/io and engine/reference stay self-contained.
 */
const INNER_ALLOWED: [string, string][] = [
  ['engine/io/', 'engine/host_tensor.ts'],
  ['engine/reference/', 'engine/host_tensor.ts'],
  ['engine/reference/', 'engine/reference/'],
  ['engine/reference/', 'engine/shape.ts'],
  ['engine/reference/', 'engine/elementwise_table.ts'],
  ['engine/io/', 'engine/io/'],
  ['engine/ops/', 'engine/ops/'],
  ['engine/cases/', 'engine/'],
];

const SKIP = new Set(['node_modules', '.git', 'out', '.device', '.gl', 'fixtures', 'golden']);

function sourceFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name) || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(root, p));
    else if (/\.(ts|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(relative(root, p));
  }
  return out;
}

/** Relative imports of one file (static, re-exports and literal dynamic imports), as repository paths. */
export function importsOf(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = new Set<string>();
  for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^import\s+['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    const spec = m[1] ?? m[2] ?? m[3];
    found.add(relative(root, resolve(root, dirname(file), spec)));
  }
  return [...found];
}

const layerOf = (f: string) => f.split('/')[0];

export function checkLayering(root: string): string[] {
  const files = sourceFiles(root);
  const graph = new Map(files.map((f) => [f, importsOf(root, f)]));
  const problems: string[] = [];
  for (const [f, imps] of graph) {
    const from = layerOf(f);
    if (TOP.includes(from)) continue;
    const fromRank = (LAYERS as readonly string[]).indexOf(from);
    for (const g of imps) {
      const to = layerOf(g);
      const toRank = (LAYERS as readonly string[]).indexOf(to);
      if (TOP.includes(to)) problems.push(`wrong way: ${f} imports ${g} (only ${TOP.join(' and ')} may import from ${to}/)`);
      else if (fromRank >= 0 && toRank > fromRank) problems.push(`wrong way: ${f} imports ${g} (${from}/ is below ${to}/: ${LAYERS.join(' < ')})`);
      for (const [a, b, why] of INNER_RULES) {
        if (!f.startsWith(a) || !g.startsWith(b)) continue;
        if (INNER_ALLOWED.some(([x, y]) => f.startsWith(x) && (y.endsWith('/') ? g.startsWith(y) : g === y))) continue;
        problems.push(`wrong way: ${f} imports ${g} (${why})`);
      }
    }
  }
  // Circles: Tarjan's strongly connected components over the file graph.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) problems.push(`circle: ${comp.sort().join(' <-> ')}`);
    }
  };
  for (const f of graph.keys()) if (!idx.has(f)) visit(f);
  return problems;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && resolve(process.argv[1]) === self) {
  const problems = checkLayering(resolve(dirname(self), '..'));
  for (const p of problems) console.log(p);
  console.log(problems.length ? `${problems.length} layering problems` : 'layering: no circles, no wrong-way imports');
  process.exitCode = problems.length ? 1 : 0;
}
