// The test entry (`npm test`): initializes the engine once, loads every test file, runs the uvu
// suites, and prints `N passed, N failed` computed from the suites' own results. Exits non-zero on
// any failure, or when fewer tests ran than test/min-tests.json records (so a file that silently
// stops registering tests fails the run). The coverage suite runs last: it asserts that every
// declared WGSL entry point was dispatched during the run.
//
// Usage: npm test [-- <substring>[,<substring>...]]   (runs only test files whose name contains one
//        of the substrings, in name order; the minimum-count check applies to full runs only)

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { init, shutdown } from '../engine/engine.ts';

// uvu runs its queue by itself unless it believes it was started by its own CLI; we run the queue
// ourselves (to count results), so we present the marker its CLI detection looks for.
process.argv.push('uvu/bin.js');
const g = globalThis as unknown as { UVU_QUEUE: unknown[][]; UVU_INDEX: number };
g.UVU_QUEUE = [];

type SuiteRunner = () => Promise<[string | true, number, number, number]>;

const dir = fileURLToPath(new URL('.', import.meta.url));
const filter = process.argv[2] && !process.argv[2].includes('uvu/bin.js') ? process.argv[2] : undefined;
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => !filter || filter.split(',').some((part) => f.includes(part)))
  .sort();
const last = 'coverage.final.ts';

const eng = await init();
console.log(`adapter: ${eng.gpu.adapter.description} (${eng.gpu.adapter.isSoftware ? 'software' : 'hardware'})`);
await import('uvu');
const toLoad = filter ? files : [...files, last];
for (const [i, f] of toLoad.entries()) {
  g.UVU_INDEX = i;
  g.UVU_QUEUE.push([f]);
  await import(new URL(f, import.meta.url).href);
}

let passed = 0;
let failed = 0;
let skipped = 0;
for (const group of g.UVU_QUEUE) {
  const [name, ...runners] = group as [string, ...SuiteRunner[]];
  process.stdout.write(`\n${name}\n`);
  for (const run of runners) {
    const [errors, ran, skip, total] = await run();
    passed += ran;
    skipped += skip;
    failed += total - ran;
    if (errors !== true) process.stdout.write(`\n${errors}\n`);
  }
}
shutdown();

const minimum = (JSON.parse(readFileSync(new URL('min-tests.json', import.meta.url), 'utf8')) as { minimum: number }).minimum;
console.log('');
if (!filter && passed + failed < minimum) {
  console.log(`only ${passed + failed} tests ran, fewer than the ${minimum} recorded in test/min-tests.json`);
  failed += minimum - (passed + failed);
}
if (skipped) console.log(`${skipped} skipped`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
