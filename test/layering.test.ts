// The layering check (scripts/layering.ts): no import circles and no wrong-way imports in the
// repository, and a negative control showing the check catches both.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLayering } from '../scripts/layering.ts';

test('layering: the repository has no circles and no wrong-way imports', () => {
  const problems = checkLayering(fileURLToPath(new URL('..', import.meta.url)));
  assert.equal(problems, [], problems.join('\n'));
});

test('layering: a planted circle and wrong-way imports are reported', () => {
  const root = mkdtempSync(join(tmpdir(), 'layering-'));
  try {
    for (const d of ['engine/ops', 'nets', 'samplers/score', 'samplers/inverse']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'engine/tape.ts'), "import { add } from './ops/add.ts';\n");
    writeFileSync(join(root, 'engine/ops/add.ts'), "import type { Node } from '../tape.ts';\nimport { cases } from '../cases/add.ts';\n");
    mkdirSync(join(root, 'engine/cases'));
    writeFileSync(join(root, 'engine/cases/add.ts'), "export const cases = [];\n");
    writeFileSync(join(root, 'nets/net.ts'), "import { x } from '../samplers/inverse/a.ts';\n");
    writeFileSync(join(root, 'samplers/inverse/a.ts'), "export const x = 1;\n");
    writeFileSync(join(root, 'samplers/score/s.ts'), "import { x } from '../inverse/a.ts';\n");
    const problems = checkLayering(root);
    assert.ok(problems.some((p) => p.startsWith('circle: engine/ops/add.ts <-> engine/tape.ts')), problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('engine/tape.ts imports engine/ops/add.ts')), problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('engine/ops/add.ts imports engine/cases/add.ts')), problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('nets/net.ts imports samplers/inverse/a.ts')), problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('samplers/score/s.ts imports samplers/inverse/a.ts')), problems.join('\n'));
    assert.is(problems.length, 5, problems.join('\n'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('layering: engine/io and engine/reference may import the host tensor type, nothing else of the engine', () => {
  const root = mkdtempSync(join(tmpdir(), 'layering-'));
  try {
    for (const d of ['engine/io', 'engine/reference']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'engine/host_tensor.ts'), 'export interface HostTensor { shape: number[] }\n');
    writeFileSync(join(root, 'engine/tensor.ts'), 'export const t = 1;\n');
    writeFileSync(join(root, 'engine/io/read.ts'), "import type { HostTensor } from '../host_tensor.ts';\nimport { t } from '../tensor.ts';\n");
    writeFileSync(join(root, 'engine/reference/host.ts'), "import type { HostTensor } from '../host_tensor.ts';\n");
    const problems = checkLayering(root);
    assert.equal(problems, ['wrong way: engine/io/read.ts imports engine/tensor.ts (file formats stand alone: engine/io imports only engine/io and the type file host_tensor.ts)']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
