# The PyTorch CPU peer of `sgilo bench goals` (bench/torch_peer.ts spawns it; optional: without
# PyTorch the goals report says the rows are skipped). Our own implementation of the same networks
# (bench/peers/torch_nets.py) on the same weights and inputs.
#
#   python3 bench/peers/torch_peer.py <row> '<json args>'
#   rows: probe | stylegan2 | ilo | sgilo | train | fullsize
#
# Each row first (when args.check is set) recomputes what the engine computed on the same inputs,
# read from args.inputs (a safetensors file the bench wrote, the engine's outputs included), and
# reports two relative differences per compared tensor; then it warms up and times `iters` iterations
# in float32.
# The check runs the same code in float64 (the gated number) and in float32 (reported beside it):
# in float32 a pre-activation within rounding of 0 can take the other LeakyReLU slope than the
# engine's, which moves single gradient elements by a factor of 5 without any bug (seen on the
# Fashion generator with PyTorch's oneDNN convolutions).
# Prints exactly one JSON line on stdout:
#   {"row", "torch", "threads", "ms": [per-iteration ms], "msPerIter": median, "peakRssBytes",
#    "check": {"maxRelErr", "relRms", "tensors": {name: {"maxRelErr", "relRms"}}, "what"} | null}
# or {"error": "..."} with exit code 1. Per compared tensor (b the engine's, a the peer's in float64):
# max|a - b| / max|b| (maxRelErr) and rms(a - b) / rms(b) (relRms); the losses of a round are one
# tensor over the steps. "maxRelErr" and "relRms" are the worst over the tensors; the bench gates
# each row by one of them (bench/torch_rows.ts).

import json
import math
import resource
import sys
import time

import torch

from torch_nets import Generator, ScoreViT, VPSDE, noise_side, read_safetensors


def peak_rss():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def rel_errs(a, b):
  """(max|a - b| / max|b|, rms(a - b) / rms(b)); both inf where a is not finite."""
  a, b = a.detach().double().reshape(-1), b.detach().double().reshape(-1)
  if a.shape != b.shape:
    raise ValueError(f'shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}')
  if not torch.isfinite(a).all():
    return math.inf, math.inf
  d = a - b
  max_rel = (d.abs().max() / b.abs().max().clamp_min(1e-30)).item()
  rel_rms = (d.pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp_min(1e-30)).item()
  return max_rel, rel_rms


def check_of(compute, engine):
  """compute(dtype) -> {name: tensor}; engine: {name: the engine's tensor}. Gated: float64."""
  errs = {}
  for dtype in (torch.float64, torch.float32):
    ours = compute(dtype)
    errs[dtype] = {n: rel_errs(ours[n], engine[n]) for n in ours}
  e64, e32 = errs[torch.float64], errs[torch.float32]
  worst = lambda e, k: max((v[k], n) for n, v in e.items())
  (m64, nm), (r64, nr) = worst(e64, 0), worst(e64, 1)
  worst_names = nm if nm == nr else f'{nm} max-relative, {nr} relative RMS'
  names = next(iter(ours)) if len(ours) == 1 else f'{len(ours)} tensors (worst: {worst_names})'
  return {
    'maxRelErr': m64,
    'relRms': r64,
    'tensors': {n: {'maxRelErr': m, 'relRms': r} for n, (m, r) in e64.items()},
    'what': f'{names}; the peer in float32: max-relative {worst(e32, 0)[0]:.1e}, relative RMS {worst(e32, 1)[0]:.1e}',
  }


def median(xs):
  s = sorted(xs)
  n = len(s)
  return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def timed(fn, iters, warmup):
  for _ in range(warmup):
    fn()
  ms = []
  for _ in range(iters):
    t0 = time.perf_counter()
    fn()
    ms.append((time.perf_counter() - t0) * 1000)
  return ms


def load_generator(path, dtype=torch.float32):
  if path.endswith('.pt'):
    ck = torch.load(path, map_location='cpu')
    return Generator(ck['g_ema'] if 'g_ema' in ck else ck, dtype)
  return Generator(read_safetensors(path)[0], dtype)


def noises(t, n):
  return [t[f'noise.{i}'] for i in range(n)]


def row_stylegan2(a):
  """Synthesis forward + backward to W+ and the noise maps, upstream R."""
  t, _ = read_safetensors(a['inputs'])

  def make(dtype):
    g = load_generator(a['model'], dtype)
    wplus = t['wplus'].to(dtype).requires_grad_()
    noise = [n.to(dtype).requires_grad_() for n in noises(t, g.n_noise)]
    R = t['upstream'].to(dtype)

    def step():
      img = g.synthesis(wplus, noise)
      return img, torch.autograd.grad(img, [wplus, *noise], R)
    return step

  def compute(dtype):
    img, grads = make(dtype)()
    return {'image': img, 'grad.wplus': grads[0], **{f'grad.noise.{i}': gr for i, gr in enumerate(grads[1:])}}

  check = check_of(compute, t) if a.get('check') else None
  return timed(make(torch.float32), a['iters'], a['warmup']), check


def ilo_lr(t, base, rampdown=0.75, rampup=0.05):
  ramp = min(1.0, (1 - t) / rampdown)
  ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
  return base * ramp * min(1.0, t / rampup)


def row_round(a, sgilo):
  """One ILO/SGILO round at block k from the engine's start state; per-step times."""
  st, _ = read_safetensors(a['inputs'])
  px, _ = read_safetensors(a['proxy'])
  k, steps = a['block'], a['steps']
  rownorm = lambda x: x.pow(2).sum(-1, keepdim=True).sqrt()

  def run(noise_scale, dtype):
    g = load_generator(a['model'], dtype)
    pmean, pstd, mask, y = (px['mean'].to(dtype), px['std'].to(dtype), st['mask'].to(dtype), st['y'].to(dtype))
    idx = [i for i in range(g.n_noise) if 2 * k - 1 <= i <= 4 + 2 * k]
    net = None
    if sgilo:
      net = ScoreViT(read_safetensors(a['score'])[0], a['heads']).to(dtype)
      net.requires_grad_(False)
    p = a['prior']
    z = st['z'].to(dtype).clone().requires_grad_()
    noise = [n.to(dtype).clone() for n in noises(st, g.n_noise)]
    for i in idx:
      noise[i].requires_grad_()
    feat = st['features'].to(dtype).clone().requires_grad_()
    # ILO's spherical projection keeps the norms the round starts with.
    znorm, nnorm = rownorm(z.detach()), {i: rownorm(noise[i].detach()) for i in idx}
    variables = [z] + [noise[i] for i in idx] + [feat]
    opt = torch.optim.Adam(variables, lr=a['lr'])
    losses, ms = [], []
    for s in range(steps):
      t0 = time.perf_counter()
      opt.param_groups[0]['lr'] = max(ilo_lr((s + 1) / steps, a['lr']), 1e-12)
      delta = None
      if net is not None:
        with torch.no_grad():
          rng = p['max'] - p['min']
          x = (feat - p['min']) / rng
          eps = net(x, torch.full((x.shape[0],), p['t'], dtype=dtype))
          delta = ((p['a'] - 1) * x - p['b'] * eps) * rng
      img = g.from_layer(F_lrelu(z * pstd + pmean), noise, k, feat)
      # The engine's loss: each sample's mean squared residual, summed over samples (its gradient
      # does not depend on the batch); the recorded loss is the mean over samples.
      loss = ((img * mask - y) ** 2).flatten(1).mean(1).sum()
      grads = torch.autograd.grad(loss, variables)
      for v, gr in zip(variables, grads):
        v.grad = gr
      opt.step()
      with torch.no_grad():
        if not sgilo:
          z.mul_(znorm / rownorm(z))
          for i in idx:
            noise[i].mul_(nnorm[i] / rownorm(noise[i]))
        if delta is not None:
          feat.add_(a['temperature'] * delta + noise_scale * torch.randn_like(feat))
      losses.append(loss.item() / img.shape[0])
      ms.append((time.perf_counter() - t0) * 1000)
    return losses, ms

  # The engine's check run has no added noise (its random stream is not PyTorch's).
  check = check_of(lambda dtype: {'losses': torch.tensor(run(0.0, dtype)[0])}, st) if a.get('check') else None
  for _ in range(a['warmup']):
    run(a['noiseScale'], torch.float32)
  _, ms = run(a['noiseScale'], torch.float32)
  return (ms[1:] if len(ms) > 1 else ms), check


def F_lrelu(x):
  return torch.nn.functional.leaky_relu(x, 0.2)


def row_train(a):
  """Score-model training steps: DSM loss, global-norm clip, Adam (warm-up), EMA."""
  net = ScoreViT(read_safetensors(a['score'])[0], a['heads'])
  sde = VPSDE(a.get('beta0', 0.1), a.get('beta1', 20.0))
  named = net.named_weights()
  params = [p for _, p in named]
  check = None
  if a.get('check'):
    t, _ = read_safetensors(a['inputs'])

    def compute(dtype):
      m = ScoreViT(read_safetensors(a['score'])[0], a['heads']).to(dtype)
      nm = m.named_weights()
      loss = ((m(t['xt'].to(dtype), t['t'].to(dtype)) - t['z'].to(dtype)) ** 2).mean()
      grads = torch.autograd.grad(loss, [q for _, q in nm])
      return {'loss': loss.reshape(1), **{f'grad.{n}': gr for (n, _), gr in zip(nm, grads)}}
    check = check_of(compute, t)
  opt = torch.optim.Adam(params, lr=a['lr'])
  ema = [p.detach().clone() for p in params]
  B, C, H, W = a['batch'], net.C, int(math.isqrt(net.T)), int(math.isqrt(net.T))
  data = torch.rand(4 * B, C, H, W)
  state = {'step': 0}

  def step():
    s = state['step']
    x0 = data[(s % 4) * B:(s % 4 + 1) * B]
    tt = a['tEps'] + torch.rand(B) * (1 - a['tEps'])
    z = torch.randn_like(x0)
    xt = x0 * sde.mean_coeff(tt)[:, None, None, None] + z * sde.std(tt)[:, None, None, None]
    loss = ((net(xt, tt) - z) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if a['gradClip'] > 0:
      torch.nn.utils.clip_grad_norm_(params, a['gradClip'])
    opt.param_groups[0]['lr'] = a['lr'] * min(1.0, (s + 1) / a['warmup']) if a['warmup'] > 0 else a['lr']
    opt.step()
    d = min(a['emaDecay'], (1 + s) / (10 + s))
    with torch.no_grad():
      for e, p in zip(ema, params):
        e.mul_(d).add_(p, alpha=1 - d)
    loss.item()
    state['step'] += 1

  return timed(step, a['iters'], a['warmup_iters']), check


def row_fullsize(a):
  """config-f: the image from W+, backward to W+ and to the features after block `layer`."""
  t, _ = read_safetensors(a['inputs'])
  layer = a['layer']
  g = load_generator(a['generator'])
  wplus = t['wplus'].clone().requires_grad_()
  noise = noises(t, g.n_noise)

  def step():
    feat, _ = g.blocks(wplus, noise, 0, layer)
    img = g.from_layer(wplus, noise, layer + 1, feat)
    gw, gf = torch.autograd.grad(img, [wplus, feat], t['upstream'])
    return {'image': img, 'features': feat, 'grad.wplus': gw, 'grad.features': gf}

  ms = timed(step, a['iters'], a['warmup'])
  if not a.get('check'):
    return ms, None
  # After the timing: the float64 copy doubles the memory (the peak RSS then is the check's).
  def compute(dtype):
    if dtype == torch.float32:
      return step()
    g64 = load_generator(a['generator'], dtype)
    w = t['wplus'].to(dtype).requires_grad_()
    n = [x.to(dtype) for x in noise]
    feat, _ = g64.blocks(w, n, 0, layer)
    img = g64.from_layer(w, n, layer + 1, feat)
    gw, gf = torch.autograd.grad(img, [w, feat], t['upstream'].to(dtype))
    return {'image': img, 'features': feat, 'grad.wplus': gw, 'grad.features': gf}
  peak = peak_rss()
  check = check_of(compute, t)
  check['peakRssBeforeCheck'] = peak
  return ms, check


ROWS = {
  'stylegan2': row_stylegan2,
  'ilo': lambda a: row_round(a, False),
  'sgilo': lambda a: row_round(a, True),
  'train': row_train,
  'fullsize': row_fullsize,
}


def main(argv):
  if len(argv) < 2 or argv[1] in ('-h', '--help'):
    print(__doc__ or 'usage: torch_peer.py <probe|stylegan2|ilo|sgilo|train|fullsize> \'<json args>\'')
    return 0
  row = argv[1]
  try:
    a = json.loads(argv[2]) if len(argv) > 2 else {}
    threads = int(a.get('threads', 0)) or torch.get_num_threads()
    torch.set_num_threads(threads)
    out = {'row': row, 'torch': torch.__version__, 'threads': threads}
    if row != 'probe':
      if row not in ROWS:
        raise ValueError(f'unknown row "{row}" (rows: probe, {", ".join(ROWS)})')
      torch.manual_seed(int(a.get('seed', 0)))
      ms, check = ROWS[row](a)
      out.update({'ms': ms, 'msPerIter': median(ms), 'check': check})
    out['peakRssBytes'] = (out.get('check') or {}).pop('peakRssBeforeCheck', None) or peak_rss()
    # An infinite error (non-finite outputs) is a report, but JSON has no Infinity: 1e999 reads
    # back as Infinity in JavaScript. NaN stays bare, which the bench refuses.
    print(json.dumps(out).replace('Infinity', '1e999'))
    return 0
  except Exception as e:  # one line for the bench, whatever failed
    print(json.dumps({'row': row, 'error': f'{type(e).__name__}: {e}'.splitlines()[0]}))
    return 1


if __name__ == '__main__':
  sys.exit(main(sys.argv))
