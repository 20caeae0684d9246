// The kernel registry: binding checks against the WGSL, specialization, uniform packing by name,
// the debug switch, dispatch counts, and errors surfaced from WebGPU validation.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { Kernel, dispatchCountsByKernel, setDebugWgsl } from '../engine/kernel.ts';
import { registerShaderTexts, shaderText, specialize, withIncludes } from '../engine/shader_source.ts';
import { empty, tensor, zeros } from '../engine/tensor.ts';
import { binary, unary, exp } from '../engine/ops/elementwise.ts';
import { gradCases } from '../engine/cases/index.ts';
import { matmulSpecialization } from '../engine/ops/matmul.ts';

const test = suite('kernel registry');

// Kernels made with `new Kernel` are not declared, so the coverage check ignores them.
const matmulSpec = { shader: 'matmul', entry: 'matmul', specialize: matmulSpecialization(16, 1, 1), bindings: { a: 'read', b: 'read', out: 'read_write', params: 'uniform' } } as const;
const params = { M: 1, N: 1, K: 1, a_batch: 0, a_m: 1, a_k: 1, b_batch: 0, b_k: 1, b_n: 1 };

/** A read buffer `a` and a separate write buffer `o` (WebGPU forbids aliasing a writable binding). */
function withBuffers(fn: (a: ReturnType<typeof zeros>, o: ReturnType<typeof zeros>) => void): void {
  const a = zeros([4]);
  const o = zeros([4]);
  try {
    fn(a, o);
  } finally {
    a.dispose();
    o.dispose();
  }
}

test('a binding declared with the wrong access is refused, naming it', () => {
  const k = new Kernel({ ...matmulSpec, bindings: { ...matmulSpec.bindings, out: 'read' } });
  withBuffers((a, o) => assert.throws(() => k.dispatch({ a, b: a, out: o, params }, [1, 1, 1]), /binding "out" is declared read by the op but is read_write in the WGSL/));
});

test('a binding the WGSL lacks, or one the op lacks, is refused', () => {
  const extra = new Kernel({ ...matmulSpec, bindings: { ...matmulSpec.bindings, bias: 'read' } });
  withBuffers((a, o) => assert.throws(() => extra.dispatch({ a, b: a, out: o, params, bias: a }, [1]), /declares binding "bias" but the WGSL entry point does not use it/));
  const { b: _b, ...fewer } = matmulSpec.bindings;
  const missing = new Kernel({ ...matmulSpec, bindings: fewer });
  withBuffers((a, o) => assert.throws(() => missing.dispatch({ a, out: o, params }, [1]), /uses binding "b" that the op does not declare/));
});

test('a uniform is declared as storage -> refused', () => {
  const k = new Kernel({ ...matmulSpec, bindings: { ...matmulSpec.bindings, params: 'read' } });
  withBuffers((a, o) => assert.throws(() => k.dispatch({ a, b: a, out: o, params: a }, [1]), /"params" is declared read by the op but is uniform/));
});

test('unknown entry points, shaders, bindings and uniform members give clear errors', () => {
  withBuffers((a, o) => {
    assert.throws(() => new Kernel({ ...matmulSpec, entry: 'nope' }).dispatch({}, [1]), /no @compute entry point "nope"/);
    assert.throws(() => new Kernel({ ...matmulSpec, shader: 'no_such_file' }).dispatch({}, [1]), /shader "no_such_file": cannot read/);
    const k = new Kernel(matmulSpec);
    assert.throws(() => k.dispatch({ a, b: a, out: o, params, extra: a }, [1]), /unknown binding "extra"/);
    assert.throws(() => k.dispatch({ a, b: a, out: o }, [1]), /binding "params" was not given/);
    assert.throws(() => k.dispatch({ a, b: a, out: o, params: { ...params, Q: 1 } }, [1]), /uniform has no member "Q"/);
    const { K: _k, ...noK } = params;
    assert.throws(() => k.dispatch({ a, b: a, out: o, params: noK }, [1]), /uniform member "K" was not given/);
    assert.throws(() => k.dispatch({ a, b: a, out: o, params: { ...params, M: 1.5 } }, [1]), /"M" is u32 but got 1.5/);
    assert.throws(() => k.dispatch({ a, b: a, out: o, params }, [70000]), /workgroup count 70000 is outside/);
  });
});

test('a buffer bound for writing and also bound elsewhere is refused', () => {
  const k = new Kernel(matmulSpec);
  withBuffers((a, o) => assert.throws(() => k.dispatch({ a, b: o, out: o, params }, [1]), /"out" is written but its buffer is also bound as "b"/));
});

test('unknown ops are refused with the list of known ones', () => {
  const x = zeros([2]);
  assert.throws(() => unary('cosh', x), /unknown unary op "cosh" \(known: neg, exp/);
  assert.throws(() => binary('pow', x, x), /unknown binary op "pow"/);
  assert.throws(() => gradCases('nope'), /gradcheck: unknown op "nope"/);
  x.dispose();
});

test('specialization fills every slot and refuses unknown or missing ones', () => {
  assert.is(specialize('y = {{A}} + {{B}};', { A: 'x', B: 2 }, 't'), 'y = x + 2;');
  assert.throws(() => specialize('y = {{A}};', {}, 't'), /slot \{\{A\}\} has no value/);
  assert.throws(() => specialize('y = 1;', { A: 'x' }, 't'), /no slot \{\{A\}\}/);
});

test('includes: `// #include <name>` lines become shaders/<name>.wgsl, one level deep', () => {
  const expanded = withIncludes('fn f() {}\n// #include <index_math>\nfn g() {}', 't');
  assert.ok(expanded.includes(shaderText('index_math').trimEnd()), 'the file text is inlined');
  assert.ok(expanded.startsWith('fn f() {}\n') && expanded.endsWith('\nfn g() {}'), 'the rest is kept');
  assert.not.ok(/#include/.test(expanded.replace(/`[^`]*`/g, '')), 'no directive is left');
  assert.is(withIncludes('x; // #include <index_math> is only a directive on a line of its own', 't'), 'x; // #include <index_math> is only a directive on a line of its own');
  assert.throws(() => withIncludes('// #include <no_such_helper>', 't'), /shader "no_such_helper": cannot read/);
  registerShaderTexts({ test_nested_include: '// #include <index_math>' });
  assert.throws(() => withIncludes('// #include <test_nested_include>', 't'), /includes another file \(one level only\)/);
});

test('WGSL that does not compile is reported with the kernel name at the next sync', async () => {
  const bad = new Kernel({ shader: 'unary', entry: 'unary_forward', variant: 'broken', specialize: { FWD: 'undefined_fn(a)', BWD: '1.0' }, bindings: { x: 'read', y: 'read_write', params: 'uniform' } });
  const x = zeros([4]);
  const y = empty([4]);
  let err: unknown = null;
  try {
    bad.dispatch({ x, y, params: { n: 4, p0: 0, p1: 0 } }, [1]);
    await engine().sync();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, 'an error must be raised');
  assert.match((err as Error).message, /unary\.unary_forward<broken>/);
  assert.match((err as Error).message, /undefined_fn/);
  // The engine keeps working afterwards.
  const z = exp(x);
  assert.equal(Array.from(await z.read()), [1, 1, 1, 1]);
  x.dispose();
  y.dispose();
  z.dispose();
});

test('the debug switch prints the final WGSL of each new pipeline', () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(String(s));
  setDebugWgsl(true);
  try {
    const k = new Kernel({ shader: 'unary', entry: 'unary_forward', variant: 'debug-probe', specialize: { FWD: 'a + 123.0', BWD: '1.0' }, bindings: { x: 'read', y: 'read_write', params: 'uniform' } });
    const y = zeros([4]);
    withBuffers((a, o) => k.dispatch({ x: a, y, params: { n: 0, p0: 0, p1: 0 } }, [1]));
    y.dispose();
  } finally {
    setDebugWgsl(false);
    console.log = log;
  }
  const text = lines.join('\n');
  assert.match(text, /unary\.unary_forward<debug-probe>/);
  assert.match(text, /return a \+ 123\.0;/);
});

test('dispatches are counted per entry point and variant', async () => {
  const before = dispatchCountsByKernel().get('unary.unary_forward<exp>') ?? 0;
  const x = tensor([0, 1], [2]);
  const y = exp(exp(x));
  assert.is(dispatchCountsByKernel().get('unary.unary_forward<exp>'), before + 2);
  await y.read();
  x.dispose();
  y.dispose();
});

test.run();
