// `replay score`: computes, with our engine, every `out.*` and `grad.*` quantity of the score fixture
// (test/fixtures/reference-tiny/README.md) from the `in.*` tensors alone:
//   in.x [B, C, H, W], in.t [B], in.upstream R [B, C, H, W]
//   out.eps = eps(in.x, in.t); grad.x and grad.param.<name> (every trainable parameter) of sum(out.eps * R).

import { scope } from '../engine/tensor.ts';
import { grad, clearTape } from '../engine/tape.ts';
import type { ScoreViT } from './score_vit.ts';
import { host, inputReader, type TensorMap } from './replay_generator.ts';

export async function replayScore(net: ScoreViT, inputs: TensorMap): Promise<TensorMap> {
  const get = inputReader('replay score', inputs);
  const out: TensorMap = new Map();
  const params = net.trainable();
  await scope(async () => {
    const x = get('in.x').requireGrad();
    for (const [, p] of params) p.requireGrad();
    try {
      const eps = net.forward(x, get('in.t'));
      out.set('out.eps', await host(eps));
      const gs = grad(eps, [x, ...params.map(([, p]) => p)], { upstream: get('in.upstream') });
      out.set('grad.x', await host(gs[0]));
      for (const [i, [name]] of params.entries()) out.set(`grad.param.${name}`, await host(gs[i + 1]));
    } finally {
      clearTape();
      for (const [, p] of params) p.requireGrad(false);
    }
  });
  return out;
}
