// The PyTorch peer's plumbing without PyTorch (CI has none): the JSON line protocol, the search for
// an interpreter (a missing one means skipped rows, not a failure), the alternation of the runs,
// the report's torch section and summary, and the CLI flags. A stand-in interpreter (a shell
// script printing a fixed line) plays the peer; the real peer's numbers are checked by the bench
// itself against the engine's outputs.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { alternate, findTorch, parsePeerLine, runPeer, type PeerResult } from '../bench/torch_peer.ts';
import { runTorchSection, type TorchPlan } from '../bench/torch_rows.ts';
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

const GOOD = { row: 'ilo', torch: '1.13.1', threads: 2, ms: [12, 10, 11], msPerIter: 11, peakRssBytes: 5e8, check: { maxRelErr: 2e-6, what: 'losses' } };

test('parsePeerLine reads the last line and names what is wrong', () => {
  const r = parsePeerLine(`torch warning on stdout\n${JSON.stringify(GOOD)}\n`);
  assert.equal([r.msPerIter, r.ms, r.threads, r.check], [11, [12, 10, 11], 2, { maxRelErr: 2e-6, what: 'losses' }]);
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
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, check: { what: 'x' } })), /"check" lacks/);
  // JSON has no NaN: Python's json.dumps writes it bare, which JSON.parse refuses.
  assert.throws(() => parsePeerLine(JSON.stringify({ ...GOOD, check: { maxRelErr: 1, what: 'x' } }).replace('"maxRelErr":1', '"maxRelErr":NaN')), /no JSON line/);
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
      { workload: 'ILO step N=4', engineMs: 50, torchMs: 75, runs: 5, maxRelErr: 2e-6, checked: 'losses' },
      { workload: 'training step', engineMs: 100, torchMs: 80, runs: 5, maxRelErr: 1e-5, checked: 'grads', samples: 32 },
      { workload: 'config-f layer step', engineMs: 1000, torchMs: 1000, runs: 1, maxRelErr: 3e-4, checked: 'image', enginePoolBytes: 2 ** 31, engineRssBytes: 3 * 2 ** 30, torchRssBytes: 6 * 2 ** 30 },
      { workload: 'SGILO step N=8', engineMs: null, torchMs: null, runs: 0, maxRelErr: null, checked: '', error: 'outputs disagree: max relative error 2.00e-2 > 0.001' },
    ],
  };
  const text = formatGoalsReport(baseReport(torch));
  assert.ok(text.includes('## 4. PyTorch CPU peer: goal PyTorch time / engine time >= 1'));
  assert.ok(text.includes('| ILO step N=4 | 50.00 | 75.00 | 1.50x | 2.0e-6 | 5 | PASS |'));
  assert.ok(text.includes('| training step | 100 (320 samples/s) | 80.00 (400 samples/s) | 0.80x | 1.0e-5 | 5 | FAIL |'));
  assert.ok(text.includes('| config-f layer step | 1000 | 1000 | 1.00x | 3.0e-4 | 1 | PASS |'), 'a ratio of exactly 1 passes');
  assert.ok(text.includes('| SGILO step N=8 | - | - | - | - | 0 | ERROR: outputs disagree: max relative error 2.00e-2 > 0.001 |'));
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
