// `deno run -A cli/deno.ts reconstruct ...` against the Node CLI: the same short SGILO reconstruction
// (test/reconstruct_runs.ts: 6 steps, 2 chains, seed 3) in Deno (its own WebGPU, wgpu) and in Node
// (Dawn), both on the default adapter (lavapipe here), run side by side as child processes; the
// samples, mean, std map and losses of their result.safetensors must agree to
// max|a-b|/max|b| <= 1e-3. A missing Deno binary, a non-zero exit or a timeout is a failure.
//
// The runs happen at import time (top-level await), as in test/deno.test.ts.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TOLERANCE, adapterKind, agreement, formatAgreement, processFailure, readResult, reconstructArgs, runProcess, type RunResult } from './reconstruct_runs.ts';

// The exact-pinned devDependency `deno` (as test/deno.test.ts); SGILO_DENO overrides it.
const DENO = process.env.SGILO_DENO ?? fileURLToPath(new URL('../node_modules/.bin/deno', import.meta.url));
const TIMEOUT_MS = 240_000; // lavapipe on 2 shared cores; each run takes a few seconds when idle

const test = suite('deno reconstruct');

if (!existsSync(DENO)) {
  test('Deno binary is installed', () => {
    assert.unreachable(`no Deno binary at ${DENO}: run \`npm ci\` (devDependency "deno"), or set SGILO_DENO to a Deno 2 binary`);
  });
} else {
  const dirs = { deno: mkdtempSync(join(tmpdir(), 'sgilo-deno-')), node: mkdtempSync(join(tmpdir(), 'sgilo-node-')) };
  const denoArgs = ['run', '-A', 'cli/deno.ts', ...reconstructArgs(dirs.deno)];
  const nodeArgs = ['cli/sgilo.mjs', ...reconstructArgs(dirs.node)];
  const [deno, node] = await Promise.all([runProcess(DENO, denoArgs, process.env, TIMEOUT_MS), runProcess(process.execPath, nodeArgs, process.env, TIMEOUT_MS)]);
  const failures = { deno: processFailure(`${DENO} ${denoArgs.join(' ')}`, deno, TIMEOUT_MS), node: processFailure(`node ${nodeArgs.join(' ')}`, node, TIMEOUT_MS) };
  const results: { deno?: RunResult; node?: RunResult } = {};
  for (const k of ['deno', 'node'] as const) {
    try {
      if (!failures[k]) results[k] = readResult(dirs[k]);
    } catch (e) {
      failures[k] = `${k}: cannot read ${dirs[k]}/result.safetensors: ${(e as Error).message}`;
    }
    rmSync(dirs[k], { recursive: true, force: true });
  }
  console.log(`Deno run ${deno.seconds.toFixed(1)} s, Node run ${node.seconds.toFixed(1)} s (side by side)`);

  test('deno run -A cli/deno.ts reconstruct (the Node CLI arguments) exits with status 0', () => {
    assert.ok(!failures.deno, failures.deno ?? '');
  });

  test('node cli/sgilo.mjs reconstruct (same arguments) exits with status 0', () => {
    assert.ok(!failures.node, failures.node ?? '');
  });

  test('Deno and Node ran on the same kind of adapter', () => {
    assert.ok(results.deno && results.node, 'a run failed (see above)');
    assert.is(adapterKind(results.deno!.adapter), adapterKind(results.node!.adapter), `Deno: ${results.deno!.adapter}; Node: ${results.node!.adapter}`);
  });

  test(`Deno vs Node: samples, mean, std map and losses agree to ${TOLERANCE} relative`, () => {
    assert.ok(results.deno && results.node, 'a run failed (see above)');
    const rows = agreement(results.deno!.tensors, results.node!.tensors);
    console.log(`Deno vs Node, max|a-b|/max|b| per tensor:\n${formatAgreement(rows)}`);
    assert.is(rows.length, 4, 'samples, mean, std, losses');
    const bad = rows.filter((r) => !(r.rel <= TOLERANCE));
    assert.ok(bad.length === 0, `over ${TOLERANCE}:\n${formatAgreement(bad)}`);
  });
}

test.run();
