// The engine on Deno: runs `deno run -A cli/deno.ts gradcheck` and `... rngcheck` (Deno's own
// WebGPU, wgpu on the same lavapipe, instead of Node's Dawn) and turns each row of the tables they
// print into one uvu test, so every op's Deno result counts in the summary. A FAIL row, a missing or truncated table,
// a non-zero exit, a timeout, or a missing Deno binary is a failing test (never a skip).
//
// The child process runs at import time (top-level await): rows must be known before the tests
// are declared, and test/run.ts awaits each test file's import.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runProcess } from './reconstruct_runs.ts';
import { allGradCases } from '../engine/cases/index.ts';

/** Each gradcheck row's tolerance, by row name, for the measured-error lines. */
const CASE_TOL = new Map(allGradCases().map((c) => [c.name, c.tol]));

// The exact-pinned devDependency `deno` (npm ships the binary in @deno/<platform>); SGILO_DENO
// overrides it, e.g. to test another Deno build.
const DENO = process.env.SGILO_DENO ?? fileURLToPath(new URL('../node_modules/.bin/deno', import.meta.url));
const COMMANDS = ['gradcheck', 'rngcheck'];
const TIMEOUT_MS = 240_000; // lavapipe on 2 shared cores; the run takes a few seconds when idle

// A device that is never destroyed keeps Deno alive: the timeout makes that a failure, not a hang.
const runDeno = (args: string[]) => runProcess(DENO, args, process.env, TIMEOUT_MS);

interface Row {
  op: string;
  absErr: string;
  relErr: string;
  status: string;
}

/**
 * Parses the table of engine/gradcheck.ts `formatTable`: a header, a line of dashes whose runs
 * give the column extents, then one row per case up to the first blank line. Op names contain
 * spaces (`add[broadcast 2x3x5, 3x1]`), so cells are cut at the dash columns, not split on blanks.
 */
function parseTable(stdout: string): Row[] | string {
  const lines = stdout.split('\n');
  const head = lines.findIndex((l) => /^op\s+max abs err\s+max rel err\s+status\s*$/.test(l));
  if (head < 0) return 'no table header "op  max abs err  max rel err  status" in the output';
  const starts = [...(lines[head + 1] ?? '').matchAll(/-+/g)].map((m) => m.index!);
  if (starts.length !== 4) return `the line under the header is not 4 runs of dashes: "${lines[head + 1]}"`;
  const rows: Row[] = [];
  for (const line of lines.slice(head + 2)) {
    if (line.trim() === '') break;
    const cell = (c: number) => line.slice(starts[c], c + 1 < starts.length ? starts[c + 1] : undefined).trim();
    rows.push({ op: cell(0), absErr: cell(1), relErr: cell(2), status: cell(3) });
  }
  return rows;
}

/** The `<op> FAILED:` block that follows the table, for the failing row's message. */
function failureDetails(stdout: string, op: string): string {
  const at = stdout.indexOf(`\n${op} FAILED:\n`);
  if (at < 0) return '';
  return stdout.slice(at + 1).split('\n\n')[0];
}

const tail = (s: string, n = 2000) => (s.length > n ? `...${s.slice(-n)}` : s);

const test = suite('deno');

if (!existsSync(DENO)) {
  test('Deno binary is installed', () => {
    assert.unreachable(
      `no Deno binary at ${DENO}: run \`npm ci\` (devDependency "deno" ships it in @deno/<platform>; ` +
        'do not omit optional dependencies), or set SGILO_DENO to a Deno 2 binary',
    );
  });
} else {
  for (const command of COMMANDS) {
    const t0 = Date.now();
    const ARGS = ['run', '-A', 'cli/deno.ts', command];
    const run = await runDeno(ARGS);
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    const what = `\`${DENO} ${ARGS.join(' ')}\``;
    const output = `stdout:\n${tail(run.stdout)}\nstderr:\n${tail(run.stderr)}`;

    test(`${what} exits with status 0`, () => {
      if (run.error) assert.unreachable(`${what} could not start: ${run.error.message}`);
      if (run.timedOut) assert.unreachable(`${what} was still running after ${TIMEOUT_MS / 1000} s (killed)\n${output}`);
      assert.ok(run.code === 0, `${what} exited with ${run.signal ?? `status ${run.code}`} after ${seconds} s\n${output}`);
    });

    const rows = parseTable(run.stdout);
    if (typeof rows === 'string') {
      test(`Deno printed the ${command} table`, () => assert.unreachable(`${rows}\n${output}`));
    } else {
      // The header line announces the case count and the last line the tally: a table cut short
      // (a crash between rows) or an empty one fails here rather than passing with fewer rows.
      test(`Deno ${command} table has every announced case`, () => {
        const announced = /: (\d+) case\(s\)/.exec(run.stdout);
        const tally = /^(\d+) of (\d+) ops pass$/m.exec(run.stdout);
        assert.ok(announced, `no "N case(s)" line\n${output}`);
        assert.ok(tally, `no "N of M ops pass" line\n${output}`);
        assert.ok(rows.length > 0, `the table has no rows\n${output}`);
        assert.is(rows.length, Number(announced[1]), 'rows in the table vs cases announced');
        assert.is(rows.length, Number(tally[2]), 'rows in the table vs cases tallied');
      });
      for (const r of rows) {
        test(`deno ${command} ${r.op}`, () => {
          const errs = `max abs err ${r.absErr}, max rel err ${r.relErr}`;
          assert.ok(r.status === 'PASS', `${r.op} on Deno: ${r.status} (${errs})\n${failureDetails(run.stdout, r.op)}`);
          assert.ok(Number.isFinite(Number(r.absErr)) && Number.isFinite(Number(r.relErr)), `unparsable errors: ${errs}`);
        });
      }
      test(`deno ${command}: the measured errors per tolerance class`, () => {
        const worst = new Map<string, { rows: number; abs: number; rel: number }>();
        for (const r of rows) {
          const tol = CASE_TOL.get(r.op);
          const name = tol ? `atol ${tol.atol.toExponential(0)}, rtol ${tol.rtol.toExponential(0)}` : 'other rows';
          const w = worst.get(name) ?? { rows: 0, abs: 0, rel: 0 };
          worst.set(name, { rows: w.rows + 1, abs: Math.max(w.abs, Number(r.absErr)), rel: Math.max(w.rel, Number(r.relErr)) });
        }
        for (const [name, w] of worst) console.log(`  Deno ${command}, ${name}: ${w.rows} rows, max abs err ${w.abs.toExponential(2)}, max rel err ${w.rel.toExponential(2)}`);
      });
    }

  }
}

test.run();
