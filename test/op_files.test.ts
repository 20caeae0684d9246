// docs/ops.md's table of ops and their files cannot go stale: every file it lists exists, every
// engine/ops/*.ts and engine/cases/*.ts (but index.ts, which only assembles) is listed, and each row
// lists its own engine/ops/<op>.ts. A negative control plants a table with each kind of mistake.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const test = suite('op_files');

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COLUMNS = ['op', 'shaders', 'op', 'reference', 'cases', 'test', 'bench'];

interface OpRow {
  name: string;
  /** Paths per column after the name: shaders, op, reference, cases, test, bench. */
  files: string[][];
}

/** The rows of the table whose header is COLUMNS; throws if there is no such table. */
function parseOpTable(markdown: string): OpRow[] {
  const lines = markdown.split('\n');
  const cells = (line: string) => line.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
  const head = lines.findIndex((l) => l.trim().startsWith('|') && cells(l).join('|') === COLUMNS.join('|'));
  if (head < 0) throw new Error(`docs/ops.md: no table with the columns ${COLUMNS.join(' | ')}`);
  const rows: OpRow[] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.trim().startsWith('|')) break;
    const c = cells(line);
    if (c.length !== COLUMNS.length) throw new Error(`docs/ops.md: row "${line}" has ${c.length} cells, expected ${COLUMNS.length}`);
    rows.push({ name: c[0], files: c.slice(1).map((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1])) });
  }
  return rows;
}

/** Every problem of the table in docs/ops.md under `root`, one line each. */
function checkOpFiles(root: string): string[] {
  const problems: string[] = [];
  const rows = parseOpTable(readFileSync(join(root, 'docs/ops.md'), 'utf8'));
  const listed = new Set(rows.flatMap((r) => r.files.flat()));
  for (const r of rows) {
    for (const f of r.files.flat()) if (!existsSync(join(root, f))) problems.push(`${r.name}: ${f} is listed but does not exist`);
    if (!r.files[1].includes(`engine/ops/${r.name}.ts`)) problems.push(`${r.name}: the op column lacks engine/ops/${r.name}.ts`);
  }
  for (const dir of ['engine/ops', 'engine/cases']) {
    for (const f of readdirSync(join(root, dir)).filter((n) => n.endsWith('.ts') && n !== 'index.ts')) {
      if (!listed.has(`${dir}/${f}`)) problems.push(`${dir}/${f} is not listed in docs/ops.md`);
    }
  }
  return problems;
}

test('docs/ops.md lists every op file, and every file it lists exists', () => {
  const problems = checkOpFiles(ROOT);
  assert.equal(problems, [], problems.join('\n'));
  assert.ok(parseOpTable(readFileSync(join(ROOT, 'docs/ops.md'), 'utf8')).length >= 15, 'the table has a row per op');
});

test('a missing file, an unlisted op file and a row without its op file are reported', () => {
  const root = mkdtempSync(join(tmpdir(), 'op-files-'));
  try {
    const write = (path: string, text = '') => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    for (const f of ['engine/ops/good.ts', 'engine/ops/unlisted.ts', 'engine/ops/other.ts', 'engine/cases/good.ts', 'engine/cases/index.ts', 'shaders/good.wgsl']) write(f);
    write(
      'docs/ops.md',
      [
        '| op | shaders | op | reference | cases | test | bench |',
        '|---|---|---|---|---|---|---|',
        '| good | `shaders/good.wgsl` | `engine/ops/good.ts` | — | `engine/cases/good.ts` | `test/gone.test.ts` | — |',
        '| misnamed | — | `engine/ops/other.ts` | — | — | — | — |',
      ].join('\n'),
    );
    assert.equal(checkOpFiles(root).sort(), [
      'engine/ops/unlisted.ts is not listed in docs/ops.md',
      'good: test/gone.test.ts is listed but does not exist',
      'misnamed: the op column lacks engine/ops/misnamed.ts',
    ]);
    write('docs/ops.md', '| op | files |\n|---|---|\n');
    assert.throws(() => checkOpFiles(root), /no table with the columns/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
