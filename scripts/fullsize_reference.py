# The reference of scripts/fullsize.ts: rosinality's model.Generator (config-f: style 512, 8 mapping
# layers, channel multiplier 2) with the weights the engine wrote (DIR/generator.safetensors), the
# inputs of DIR/inputs.safetensors, one intermediate-layer step in float32 on CPU:
#   features = blocks 0..layer from W+ (noise maps given), image = blocks layer+1.. from features
#   (the RGB of earlier blocks discarded, as nets/stylegan2.ts fromLayer), and
#   d sum(image * R) / d W+ and / d features.
# Writes statistics (mean, RMS, max |x|) and 256 sampled elements of each output and gradient as
# JSON, small enough to commit. Development-time only; run from the repository root:
#   REFS=/work/refs /usr/bin/python3 scripts/fullsize_reference.py out/fullsize/1024 test/fixtures/fullsize/expected-1024.json [--layer 4]
# Needs python3-torch; the rosinality checkout is read, not modified (its CUDA op builds are stubbed,
# model.py takes its CPU fallbacks). Threads: torch's default (set OMP_NUM_THREADS to limit).
import json
import os
import resource
import sys
import time
import types

import numpy as np
import torch
import torch.utils.cpp_extension

ROS = os.path.join(os.environ.get('REFS', '/work/refs'), 'rosinality+stylegan2-pytorch')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from replay_reference import Rosinality  # noqa: E402

torch.utils.cpp_extension.load = lambda *a, **k: types.SimpleNamespace()
sys.path.insert(0, ROS)
import model  # noqa: E402

SAMPLES = 256


def read_safetensors(path):
  raw = open(path, 'rb').read()
  n = int.from_bytes(raw[:8], 'little')
  header = json.loads(raw[8:8 + n])
  meta = header.pop('__metadata__', {})
  data = raw[8 + n:]
  out = {}
  for name, e in header.items():
    assert e['dtype'] == 'F32', f'{name}: {e["dtype"]}'
    a, b = e['data_offsets']
    out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype='<f4').copy()).reshape(e['shape'])
  return out, meta


def summary(t):
  flat = t.detach().reshape(-1).to(torch.float64)
  n = flat.numel()
  # A fixed spread of indices: multiplicative hashing of 0..SAMPLES-1 over the whole tensor.
  index = sorted({(i * 2654435761 + 12345) % n for i in range(SAMPLES)})
  return {
    'shape': list(t.shape), 'mean': flat.mean().item(), 'rms': flat.pow(2).mean().sqrt().item(),
    'absmax': flat.abs().max().item(), 'index': index, 'value': [flat[i].item() for i in index],
  }


def main():
  args = [a for a in sys.argv[1:]]
  layer = 4
  if '--layer' in args:
    i = args.index('--layer')
    layer = int(args[i + 1])
    del args[i:i + 2]
  if len(args) != 2:
    sys.exit('usage: fullsize_reference.py DIR OUT.json [--layer 4]')
  folder, out_path = args
  weights, meta = read_safetensors(os.path.join(folder, 'generator.safetensors'))
  config = json.loads(meta['config'])['stylegan2']
  size, style = config['size'], config['styleDim']
  latent_avg = weights.pop('latent_avg')
  g = model.Generator(size, style, config['nMlp'], channel_multiplier=2, lr_mlp=config['lrMlp'])
  missing, unexpected = g.load_state_dict(weights, strict=False)
  assert not unexpected, unexpected
  # The engine's files hold every parameter and noise buffer; the FIR kernels model.py makes itself.
  assert all(k.endswith('.kernel') for k in missing), missing
  g.eval()
  inputs, _ = read_safetensors(os.path.join(folder, 'inputs.safetensors'))
  net = Rosinality(g, latent_avg)
  L = net.n_blocks
  noise = [inputs[f'in.noise.{i}'] for i in range(g.num_layers)]
  R = inputs['in.upstream']
  t0 = time.time()
  wplus = inputs['in.wplus'].clone().requires_grad_(True)
  features = net.blocks(wplus, noise, 0, layer, None)[0]
  image = net.blocks(wplus, noise, layer + 1, L - 1, features)[1]
  gw, gf = torch.autograd.grad((image * R).sum(), [wplus, features])
  seconds = time.time() - t0
  tensors = {'out.image': image, f'out.features.{layer}': features, 'grad.wplus': gw, f'grad.features.{layer}': gf}
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  result = {
    'about': f'config-f {size} with the engine\'s seeded weights and inputs ({folder}), rosinality model.py, '
             f'PyTorch {torch.__version__} float32 CPU: image from W+, backward to W+ and the features after block {layer}',
    'tolerance': {'output_max_rel': 1e-4, 'grad_rel_rms': 5e-3},
    'reference': {'seconds': round(seconds, 1), 'threads': torch.get_num_threads(), 'peak_rss_bytes': peak},
    'tensors': {k: summary(v) for k, v in tensors.items()},
  }
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  with open(out_path, 'w') as f:
    json.dump(result, f, indent=1)
  print(f'wrote {out_path}: forward + backward {seconds:.1f} s on {torch.get_num_threads()} threads, peak RSS {peak / 2**30:.2f} GiB')


if __name__ == '__main__':
  main()
