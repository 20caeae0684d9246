// The PyTorch peer's plumbing without PyTorch (CI has none): the JSON line protocol, the search for
// an interpreter (a missing one means skipped rows, not a failure), the alternation of the runs,
// the report's torch section and summary, and the CLI flags. A stand-in interpreter (a shell
// script printing a fixed line) plays the peer; the real peer's numbers are checked by the bench
// itself against the engine's outputs.

import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { alternate, checkRefusal, findTorch, parsePeerLine, runPeer, type PeerCheck, type PeerResult } from '../bench/torch_peer.ts';
import { CHECK_GATES, FULLSIZE_REL_RMS, runTorchSection, type TorchPlan } from '../bench/torch_rows.ts';
import { formatGoalsReport, torchSummary, type GoalsReport, type TorchSection } from '../bench/goals_report.ts';
import { parseCommand, UsageError } from '../cli/args.ts';
import { commandByName } from '../cli/commands.ts';
import { engine } from '../engine/engine.ts';

const test = suite('torch peer');
const tmp = mkdtempSync(join(tmpdir(), 'sgilo-torch-test-'));

/** An executable that ignores its arguments, prints `stdout` and exits with `code`. */
function standIn(name: string, stdout: string, code = 0): string {
  const path = join(tmp, name);
  writeFileSync(path, `#!/bin/sh\ncat <<'EOF'\n${stdout}\nEOF\nexit ${code}\n`);
  chmodSync(path, 0o755);
  return path;
}

const GOOD_CHECK: PeerCheck = { maxRelErr: 2e-6, relRms: 1e-6, tensors: { losses: { maxRelErr: 2e-6, relRms: 1e-6 } }, what: 'losses' };
const GOOD = { row: 'ilo', torch: '1.13.1', threads: 2, ms: [12, 10, 11], msPerIter: 11, peakRssBytes: 5e8, check: GOOD_CHECK };

/** A config-f 1024² check like the quiet run's: grad.features past 1e-3 max-relative; `gradRms` its relative RMS. */
function fullsizeCheck(gradRms: number): PeerCheck {
  const tensors = { image: { maxRelErr: 3e-6, relRms: 1e-6 }, features: { maxRelErr: 2e-6, relRms: 1e-6 }, 'grad.wplus': { maxRelErr: 9e-4, relRms: 1.2e-3 }, 'grad.features': { maxRelErr: 8.47e-3, relRms: gradRms } };
  return { maxRelErr: 8.47e-3, relRms: Math.max(1.2e-3, gradRms), tensors, what: '4 tensors (worst: grad.features)' };
}

test('parsePeerLine reads the last line and names what is wrong', () => {
  const r = parsePeerLine(`torch warning on stdout\n${JSON.stringify(GOOD)}\n`);
  assert.equal([r.msPerIter, r.ms, r.threads, r.check], [11, [12, 10, 11], 2, GOOD_CHECK]);
  assert.is(parsePeerLine(JSON.stringify({ ...GOOD, check: null })).check, null);
  const probe = parsePeerLine(JSON.stringify({ row: 'probe', torch: '1.13.1', threads: 2, peakRssBytes: 1 }), true);
  assert.is(probe.torch, '1.13.1');
  assert.throws(() => parsePeerLine(''), /printed nothing/);
  assert.throws(() => parsePeerLine('Traceback (most recent call last):'), /no JSON line/);
  assert.throws(() => parsePeerLine('[1, 2]'), /not an object/);
  assert.throws(() => parsePeerLine(JSON.stringify({ row: 'ilo', error: 'ValueError: bad block' })), /torch peer: ValueError: bad block/);
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, torch: undefined })), /no "torch" version/);
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, ms: [] })), /"ms" is not a non-empty list/);
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, ms: [1, -2] })), /"ms" is not a non-empty list/);
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, msPerIter: 0 })), /"msPerIter"/);
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, check: { what: 'x' } })), /"check" lacks "maxRelErr", "relRms" or "what"/);
  // JSON has no NaN: Python's json.dumps writes it bare, which JSON.parse refuses.
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, check: { ...GOOD_CHECK, maxRelErr: 1 } }).replace('"maxRelErr":1', '"maxRelErr":NaN')), /no JSON line/);
});

test('parsePeerLine: the relative RMS beside the max-relative error, per tensor and worst, validated alike', () => {
  const line = (check: unknown) => JSON.stringify({ ...GOOD, row: 'fullsize', check });
  const c = parsePeerLine(line(fullsizeCheck(1.7e-3))).check!;
  assert.equal([c.maxRelErr, c.relRms, c.tensors['grad.features']], [8.47e-3, 1.7e-3, { maxRelErr: 8.47e-3, relRms: 1.7e-3 }]);
  const { relRms: _, ...noRms } = GOOD_CHECK;
  assert.throws(() => parsePeerLine(line(noRms)), /"check" lacks "maxRelErr", "relRms" or "what"/);
  assert.throws(() => parsePeerLine(line({ ...GOOD_CHECK, relRms: '1e-6' })), /"check" lacks "maxRelErr", "relRms" or "what"/);
  assert.throws(() => parsePeerLine(line({ ...GOOD_CHECK, relRms: 1 }).replace('"relRms":1,', '"relRms":NaN,')), /no JSON line/);
  const { tensors: __, ...noTensors } = GOOD_CHECK;
  assert.throws(() => parsePeerLine(line(noTensors)), /"check" lacks its "tensors"/);
  assert.throws(() => parsePeerLine(line({ ...GOOD_CHECK, tensors: {} })), /"check" lacks its "tensors"/);
  assert.throws(() => parsePeerLine(line({ ...GOOD_CHECK, tensors: { losses: { maxRelErr: 2e-6 } } })), /"check" of losses lacks "maxRelErr" or "relRms"/);
  // The worst must be the tensors' worst: a peer that reports a smaller one would slip past the gate.
  assert.throws(() => parsePeerLine(line({ ...fullsizeCheck(6e-3), relRms: 1.2e-3 })), /says relRms 0.0012, but its tensors' worst is 0.006/);
  // Non-finite outputs: the peer writes an infinite error as 1e999 (JSON has no Infinity), a report, not a parse error.
  const inf = parsePeerLine(line({ ...GOOD_CHECK, relRms: 7, tensors: { losses: { maxRelErr: 2e-6, relRms: 7 } } }).replaceAll(':7', ':1e999')).check!;
  assert.equal([inf.relRms, inf.tensors.losses.relRms], [Infinity, Infinity]);
});

test('each row\'s check gate: small rows by max-relative 1e-3, config-f 1024² by the 1024² relative RMS', () => {
  // The bound is the one the engine's own 1024² check (scripts/fullsize.ts) reads from its fixture.
  const expected = JSON.parse(readFileSync(new URL('./fixtures/fullsize/expected-1024.json', import.meta.url), 'utf8'));
  assert.is(FULLSIZE_REL_RMS, expected.tolerance.grad_rel_rms);
  for (const row of ['ilo', 'sgilo', 'stylegan2', 'train'] as const) {
    assert.is(checkRefusal(GOOD_CHECK, CHECK_GATES[row]), null, row);
    assert.ok(checkRefusal({ ...GOOD_CHECK, maxRelErr: 1.1e-3, tensors: { losses: { maxRelErr: 1.1e-3, relRms: 1e-6 } } }, CHECK_GATES[row]), `${row}: 1.1e-3 max-relative is refused`);
  }
  // A small row over its bound: the message names the measure, the value, the bound and the tensor.
  const over = { maxRelErr: 2e-3, relRms: 5e-4, tensors: { image: { maxRelErr: 1e-6, relRms: 1e-6 }, 'grad.noise.3': { maxRelErr: 2e-3, relRms: 5e-4 } }, what: '2 tensors' };
  assert.is(checkRefusal(over, CHECK_GATES.stylegan2), 'outputs disagree: max relative error max|a-b|/max|b| 2.00e-3 > 0.001 on grad.noise.3 (2 tensors)');
  // The quiet run's 1024² row: 8.47e-3 max-relative on grad.features passes by relative RMS...
  assert.is(checkRefusal(fullsizeCheck(1.7e-3), CHECK_GATES.fullsize), null);
  assert.is(checkRefusal(fullsizeCheck(FULLSIZE_REL_RMS), CHECK_GATES.fullsize), null, 'the bound itself passes');
  // ...and a relative RMS over the 1024² tolerance is refused, naming grad.features, not the max-relative worst.
  assert.is(checkRefusal(fullsizeCheck(6e-3), CHECK_GATES.fullsize), 'outputs disagree: relative RMS error rms(a-b)/rms(b) 6.00e-3 > 0.005 on grad.features (4 tensors (worst: grad.features))');
  const wplusWorst = { ...fullsizeCheck(1e-3), relRms: 9e-3, tensors: { ...fullsizeCheck(1e-3).tensors, 'grad.wplus': { maxRelErr: 9e-4, relRms: 9e-3 } } };
  assert.match(checkRefusal(wplusWorst, CHECK_GATES.fullsize) ?? '', /9.00e-3 > 0.005 on grad.wplus /);
  assert.match(checkRefusal({ ...GOOD_CHECK, relRms: Infinity, tensors: { losses: { maxRelErr: 2e-6, relRms: Infinity } } }, CHECK_GATES.fullsize) ?? '', /relative RMS error rms\(a-b\)\/rms\(b\) Infinity > 0.005 on losses/);
  assert.match(checkRefusal(null, CHECK_GATES.ilo) ?? '', /^outputs not checked: the torch peer reported no check \(gate: max relative error/);
});

test('the gate on a parsed peer line: a stand-in fullsize peer over the 1024² bound is refused', async () => {
  const peer = standIn('fullsize-over', JSON.stringify({ ...GOOD, row: 'fullsize', check: fullsizeCheck(5.5e-3) }));
  const r = await runPeer(peer, 'fullsize', {});
  assert.match(checkRefusal(r.check, CHECK_GATES.fullsize) ?? '', /^outputs disagree: relative RMS error rms\(a-b\)\/rms\(b\) 5.50e-3 > 0.005 on grad.features/);
  const ok = standIn('fullsize-ok', JSON.stringify({ ...GOOD, row: 'fullsize', check: fullsizeCheck(1.7e-3) }));
  assert.is(checkRefusal((await runPeer(ok, 'fullsize', {})).check, CHECK_GATES.fullsize), null);
});

test('runPeer and findTorch: a found interpreter, an error line, a missing interpreter', async () => {
  const ok = standIn('ok', JSON.stringify(GOOD));
  assert.is((await runPeer(ok, 'ilo', {})).msPerIter, 11);
  const probe = standIn('probe', JSON.stringify({ row: 'probe', torch: '9.9', threads: 3, peakRssBytes: 1 }));
  assert.equal(await findTorch(['/nonexistent/python3', probe]), { python: probe, version: '9.9', threads: 3 });
  const failing = standIn('failing', JSON.stringify({ row: 'ilo', error: 'RuntimeError: out of memory' }), 1);
  await runPeer(failing, 'ilo', {}).then(
    () => assert.unreachable('an error line must throw'),
    (e: Error) => assert.match(e.message, /torch peer: RuntimeError: out of memory/),
  );
  const none = await findTorch(['/nonexistent/python3']);
  assert.ok('reason' in none && /no Python with torch \(\/nonexistent\/python3: cannot run/.test(none.reason), JSON.stringify(none));
});

test('alternate runs engine, torch, engine, ... and takes each side\'s median', async () => {
  const order: string[] = [];
  const engineMs = [30, 10, 20, 50, 40];
  const torchMs = [7, 9, 8, 1, 100];
  const m = await alternate(
    5,
    async (i) => (order.push(`e${i}`), engineMs[i]),
    async (i) => (order.push(`t${i}`), { ...GOOD, msPerIter: torchMs[i] } as PeerResult),
  );
  assert.equal(order, ['e0', 't0', 'e1', 't1', 'e2', 't2', 'e3', 't3', 'e4', 't4']);
  assert.equal([m.engineMs, m.torchMs], [30, 8]);
});

test('runTorchSection: no torch means every row skipped with the reason, and no failure', async () => {
  const plan: TorchPlan = { ilo: [1], sgilo: [1], stylegan2: [4], train: true, steps: 2, runs: 1, fullsize: null };
  const lines: string[] = [];
  const s = await runTorchSection(engine(), plan, (l) => lines.push(l), ['/nonexistent/python3']);
  assert.is(s.rows.length, 0);
  assert.match(s.skipped ?? '', /no Python with torch/);
  assert.is(lines.length, 1);
  assert.match(lines[0], /PyTorch peer skipped: no Python with torch/);
});

const baseReport = (torch: TorchSection | null): GoalsReport => ({
  adapter: 'Test Adapter',
  date: '2026-12-06 00:00:00 UTC',
  mode: 'full',
  timer: 'wall clock',
  fmaPeak: 100,
  fmaDetail: 'x',
  tfjs: 'not run',
  large: [],
  small: [],
  dispatch: null,
  endToEnd: [],
  sgiloProfile: null,
  torch,
  notes: [],
});

test('the report\'s torch section: ratios, PASS/FAIL/ERROR, memory, summary; and the skip line', () => {
  const torch: TorchSection = {
    peer: 'PyTorch 1.13.1 on the CPU (/usr/bin/python3), torch.set_num_threads(2)',
    skipped: null,
    rows: [
      { workload: 'ILO step N=4', engineMs: 50, torchMs: 75, runs: 5, maxRelErr: 2e-6, relRms: 1e-6, checked: 'losses', gate: 'max-relative <= 0.001: small' },
      { workload: 'training step', engineMs: 100, torchMs: 80, runs: 5, maxRelErr: 1e-5, relRms: 4e-6, checked: 'grads', samples: 32 },
      { workload: 'config-f layer step', engineMs: 1000, torchMs: 1000, runs: 1, maxRelErr: 8.5e-3, relRms: 1.7e-3, checked: 'image', gate: 'relative RMS <= 0.005: 1024²', enginePoolBytes: 2 ** 31, engineRssBytes: 3 * 2 ** 30, torchRssBytes: 6 * 2 ** 30 },
      { workload: 'SGILO step N=8', engineMs: null, torchMs: null, runs: 0, maxRelErr: null, relRms: null, checked: '', error: 'outputs disagree: max relative error 2.00e-2 > 0.001' },
    ],
  };
  const text = formatGoalsReport(baseReport(torch));
  assert.ok(text.includes('## 4. PyTorch CPU peer: goal PyTorch time / engine time >= 1'));
  assert.ok(text.includes('| workload | engine ms | PyTorch ms | PyTorch/engine | max rel. diff | rel. RMS diff | runs | PASS/FAIL |'));
  assert.ok(text.includes('| ILO step N=4 | 50.00 | 75.00 | 1.50x | 2.0e-6 | 1.0e-6 | 5 | PASS |'));
  assert.ok(text.includes('| training step | 100 (320 samples/s) | 80.00 (400 samples/s) | 0.80x | 1.0e-5 | 4.0e-6 | 5 | FAIL |'));
  assert.ok(text.includes('| config-f layer step | 1000 | 1000 | 1.00x | 8.5e-3 | 1.7e-3 | 1 | PASS |'), 'a ratio of exactly 1 passes');
  assert.ok(text.includes('| SGILO step N=8 | - | - | - | - | - | 0 | ERROR: outputs disagree: max relative error 2.00e-2 > 0.001 |'));
  assert.ok(text.includes('- ILO step N=4: losses; gate: max-relative <= 0.001: small'), 'the gate beside what was compared');
  assert.ok(text.includes('- config-f layer step: image; gate: relative RMS <= 0.005: 1024²'));
  assert.ok(text.includes('- training step: grads\n'), 'no gate text where the row has none');
  assert.ok(text.includes('engine pool peak 2.00 GiB, engine process peak RSS 3.00 GiB (measured from the start of the row); PyTorch process peak RSS 6.00 GiB'));
  assert.equal(text.trimEnd().split('\n').slice(-3), ['torch peer: 2 PASS, 2 FAIL', '- FAIL training step: PyTorch/engine 0.80x, goal 1x', '- FAIL SGILO step N=8: outputs disagree: max relative error 2.00e-2 > 0.001']);
  const skipped = formatGoalsReport(baseReport({ peer: 'not run', skipped: 'no Python with torch', rows: [] }));
  assert.ok(skipped.includes('skipped: no Python with torch'));
  assert.equal(torchSummary({ peer: 'not run', skipped: 'no Python with torch', rows: [] }), ['torch peer: skipped (no Python with torch)']);
  assert.not.ok(formatGoalsReport(baseReport(null)).includes('torch peer'), 'no section when not requested');
});

test('bench goals flags: --no-torch and --fullsize, not together, only with goals', () => {
  const bench = commandByName('bench')!;
  assert.is(parseCommand(bench, ['goals', '--no-torch']).values['no-torch'], true);
  assert.is(parseCommand(bench, ['goals', '--fullsize']).values.fullsize, true);
  assert.throws(() => parseCommand(bench, ['goals', '--no-torch', '--fullsize']), (e: Error) => e instanceof UsageError && /cannot go with --no-torch/.test(e.message));
  assert.throws(() => parseCommand(bench, ['matmul', '--fullsize']), (e: Error) => e instanceof UsageError && /--fullsize is an option of `bench goals`/.test(e.message));
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
