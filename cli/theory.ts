// `sgilo theory`: Theorem 3.1 of the SGILO paper (Daras et al., ICML 2022) as an experiment on
// random expansive ReLU generators (docs/design.md, "Theorem 3.1 experiment"). Runs on the GPU and writes
// report.md, *.svg and results.json (every number the report quotes) into the output folder
// (`sgilo theory --out experiments/theory --force` makes the committed report).
//
//   node --import ./scripts/register-ts.mjs cli/theory.ts [--quick] [--out DIR] [--report-only]
//
// --report-only redraws report.md and the plots from DIR/results.json without running anything.
//
// Measured: rho (where GD from -z* comes to rest, and the minimizer of L on the ray -t z*) over
// width and depth against Hand and Voroninski's rho_d; the fraction of runs reaching the ball
// ||z - z*|| <= 0.1 ||z*|| and their hitting times for GD, GD with sign flips and Langevin, from
// near -rho z* and from random starts, over depth, width, k and beta; the growth of Langevin's
// hitting time with k (power-law fit); sliced W2 to a long-run reference sample against t.
// --quick is a seconds-long smoke run of the same pipeline (tests and CI), not a measurement.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { init, shutdown } from '../engine/engine.ts';
import { describeAdapter } from '../engine/device.ts';
import { geometricWidths } from '../nets/relu_generator.ts';
import { rayScan, runMixing, runSetting, type Setting, type SettingResult } from '../samplers/theory/runs.ts';
import { SEED, theoryConfig, type TheoryConfig } from '../samplers/theory/config.ts';
import { writeReport, type TheoryResults } from './theory_report.ts';

export { theoryConfig, type TheoryConfig };

export async function runTheory(config: TheoryConfig, outDir: string, log: (s: string) => void = console.log): Promise<TheoryResults> {
  const started = performance.now();
  const eng = await init();
  const adapter = describeAdapter(eng.gpu.adapter);
  log(`theory experiment on ${adapter}${config.quick ? ' (--quick smoke run)' : ''}`);

  log('rho on the ray -t z* over width and depth');
  const ray: TheoryResults['ray'] = [];
  for (const { depth, expansions } of config.ray.depths) {
    for (const e of expansions) {
      const s: Setting = { name: `ray-d${depth}-e${e}`, k: config.ray.k, widths: geometricWidths(config.ray.k, e, depth), m: config.ray.m, instances: config.ray.instances, seed: SEED + 7 * depth + e };
      ray.push({ depth, expansion: e, widths: s.widths, rho: await rayScan(s) });
    }
  }

  log('method comparison (GD, GD + sign flips, Langevin)');
  const settings: SettingResult[] = [];
  for (const [i, s] of config.settings.entries()) settings.push(await runSetting(s, i === 0 ? config.plan : config.lightPlan, log));

  log('hitting time against k');
  const kScan: SettingResult[] = [];
  for (const s of config.kScan) {
    const same = settings.find((r) => JSON.stringify({ ...r.setting, name: '' }) === JSON.stringify({ ...s, name: '' }));
    kScan.push(same ?? (await runSetting(s, config.lightPlan, log)));
  }

  log('sliced Wasserstein-2 to a long-run reference sample');
  const base = settings[0];
  const [rho0, rhoSource] =
    base.rest.kind[0] === 'spurious'
      ? [base.rest.rho[0], 'where GD from -z* rested in this instance']
      : Number.isFinite(base.rho)
        ? [base.rho, "the setting's median rho_GD"]
        : [base.rhoRay[0], "this instance's rho_ray: GD from -z* rested near the ray in no instance of the setting"];
  const mixing = await runMixing(config.settings[0], { ...config.mixing, rho: rho0 }, log);

  const results: TheoryResults = { config, adapter, ray, settings, kScan, mixing: { ...mixing, rho: rho0, rhoSource }, seconds: (performance.now() - started) / 1000 };
  mkdirSync(outDir, { recursive: true });
  writeReport(results, outDir);
  writeFileSync(resolve(outDir, 'results.json'), JSON.stringify(results, null, 1));
  log(`wrote ${outDir}/report.md, plots and results.json (${results.seconds.toFixed(0)} s)`);
  return results;
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const reportOnly = args.includes('--report-only');
  const outIdx = args.indexOf('--out');
  const unknown = args.filter((a, i) => a !== '--quick' && a !== '--report-only' && a !== '--out' && !(outIdx >= 0 && i === outIdx + 1));
  if (unknown.length || (outIdx >= 0 && !args[outIdx + 1])) {
    console.error(`unknown arguments: ${unknown.join(' ')}\nusage: node --import ./scripts/register-ts.mjs cli/theory.ts [--quick] [--out DIR] [--report-only]`);
    process.exitCode = 2;
  } else {
    const out = outIdx >= 0 ? resolve(args[outIdx + 1]) : resolve(new URL('..', import.meta.url).pathname, quick ? 'out/theory-quick' : 'out/theory');
    if (reportOnly) {
      writeReport(JSON.parse(readFileSync(resolve(out, 'results.json'), 'utf8')) as TheoryResults, out);
      console.log(`redrew ${out}/report.md and plots from results.json`);
    } else {
      try {
        await runTheory(theoryConfig(quick), out);
      } finally {
        shutdown();
      }
    }
  }
}
