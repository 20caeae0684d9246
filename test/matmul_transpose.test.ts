// A Linear's x W^T (W stored [N, K]) with many rows: on the subgroup kernels the matmul op first
// copies W into [K, N] (engine/ops/matmul.ts, TRANSPOSE_B_MIN_ROWS). The product and its gradients
// against the float64 reference, the product bit for bit equal to the one from an explicit W^T
// tensor (the same kernel, the same order of additions), and the copy made exactly when it should.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { matmulKernels } from '../engine/device.ts';
import { dispatchCountsByKernel } from '../engine/kernel.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { matmulForward, matmulVjp } from '../engine/reference/matmul.ts';
import { HostRandom, host } from '../engine/reference/host.ts';
import { grad } from '../engine/tape.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { assertClose, relativeToMax } from './helpers.ts';

const test = suite('matmul_transpose');

const gathers = () => [...dispatchCountsByKernel()].filter(([k]) => k.startsWith('layout.layout_gather')).reduce((s, [, n]) => s + n, 0);

test('x W^T at 256 and 64 rows: reference values and gradients, bit-equal to x (W^T), W copied only for many rows on the subgroup kernels', async () => {
  const subgroup = matmulKernels(engine().gpu) === 'subgroup';
  for (const [M, K, N] of [[256, 128, 384], [64, 128, 384], [200, 36, 20]]) {
    const rng = new HostRandom(M + N);
    const draw = (n: number) => Float64Array.from({ length: n }, () => Math.fround(rng.normal()));
    const [xd, wd, gyd] = [draw(M * K), draw(N * K), draw(M * N)];
    const wtd = new Float64Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wtd[k * N + n] = wd[n * K + k];
    const before = gathers();
    const [y, gx, gw] = await scope(async () => {
      const x = tensor(xd, [M, K]).requireGrad();
      const w = tensor(wd, [N, K]).requireGrad();
      const out = matmul(x, w, { transposeB: true });
      const gs = grad(out, [x, w], { upstream: tensor(gyd, [M, N]) });
      return Promise.all([out, ...gs].map((t) => t.readF32()));
    });
    const copied = gathers() - before;
    assert.is(copied, subgroup && M >= 128 ? 1 : 0, `[${M}, ${K}] x [${N}, ${K}]^T: W copies`);
    const ref = { transposeB: true };
    const want = matmulForward(host([M, K], xd), host([N, K], wd), ref).data;
    const [wgx, wgw] = matmulVjp(host([M, K], xd), host([N, K], wd), host([M, N], gyd), ref);
    assertClose(y, want, relativeToMax(want, 1e-5), `y [${M}, ${N}]`);
    assertClose(gx, wgx, relativeToMax(wgx, 1e-5), `gx [${M}, ${K}]`);
    assertClose(gw, wgw, relativeToMax(wgw, 1e-5), `gw [${N}, ${K}]`);
    const plain = await scope(() => matmul(tensor(xd, [M, K]), tensor(wtd, [K, N])).readF32());
    assert.ok(
      y.every((v, i) => Object.is(v, plain[i])),
      `[${M}, ${N}]: x W^T and x (W^T) differ`,
    );
  }
});

test.run();
