# The networks of the PyTorch CPU peer (bench/peers/torch_peer.py), written for this repository from
# the definitions in docs/design.md ("StyleGAN2", "Score model"), computing what nets/stylegan2.ts
# and nets/score_vit.ts compute, on the same state-dict names (rosinality's generator layout; the
# score model's SGILO names). Plain PyTorch ops only, as a CPU user would write them.
#
# Dimensions: N batch, S style dim, L blocks, W+ [N, 2L, S], noise i [N or 1, 1, r_i, r_i],
# features after block k [N, C_r, r, r] (r = 4 * 2^k), image [N, 3, size, size].
#
# Modulated convolution, as the engine's op: y = coef[n, o] * conv(x * s[n, i], W * scale) with
# scale = 1 / sqrt(Ci k k) and coef = rsqrt(sum_i s^2 sum_k (scale W)^2 + 1e-8) (demodulation) or 1,
# which equals the per-sample-weight form but shares W across the batch (one conv2d, no groups);
# "up" is a stride-2 transposed conv followed by the [1, 3, 3, 1] blur (x4), padding (1, 1).
# ToRGB's skip is upfirdn2d(up 2, [1, 3, 3, 1] x 4, pad (2, 1)), i.e. a depthwise stride-2
# transposed conv with padding 1.

import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def read_safetensors(path):
  """name -> float32 tensor, and the metadata dict (F32 tensors only: what the repo writes)."""
  with open(path, 'rb') as f:
    raw = f.read()
  (n,) = struct.unpack('<Q', raw[:8])
  header = json.loads(raw[8:8 + n])
  meta = header.pop('__metadata__', {}) or {}
  base = 8 + n
  out = {}
  for name, h in header.items():
    if h['dtype'] != 'F32':
      raise ValueError(f'{path}: tensor {name} is {h["dtype"]}, only F32 is read')
    a, b = h['data_offsets']
    arr = np.frombuffer(raw, dtype='<f4', count=(b - a) // 4, offset=base + a)
    out[name] = torch.from_numpy(arr.copy()).reshape(h['shape'])
  return out, meta


def _blur_kernel(scale):
  k = torch.tensor([1.0, 3.0, 3.0, 1.0])
  k2 = torch.outer(k, k)
  return k2 / k2.sum() * scale


class Generator:
  """The synthesis network (and nothing of the mapping network: ILO/SGILO use W+ directly)."""

  def __init__(self, sd, dtype=torch.float32):
    self.p = {k: v.to(dtype) for k, v in sd.items()}
    self.L = 1
    while f'to_rgbs.{self.L - 1}.bias' in self.p:
      self.L += 1
    self.size = 4 * 2 ** (self.L - 1)
    self.S = self.p['conv1.conv.modulation.weight'].shape[1]
    self.n_noise = 2 * self.L - 1
    # The [1,3,3,1] blur per channel, built once per channel count.
    self._blur = {}
    self._up = _blur_kernel(4.0).to(dtype)

  def blur_weight(self, c):
    if c not in self._blur:
      self._blur[c] = self._up.reshape(1, 1, 4, 4).repeat(c, 1, 1, 1).contiguous()
    return self._blur[c]

  def styles(self, w, name):
    W = self.p[f'{name}.conv.modulation.weight']
    return F.linear(w, W / math.sqrt(W.shape[1]), self.p[f'{name}.conv.modulation.bias'])

  def modconv(self, x, name, s, demod, up):
    W = self.p[f'{name}.conv.weight'][0]  # [Co, Ci, k, k]
    co, ci, k, _ = W.shape
    Ws = W * (1.0 / math.sqrt(ci * k * k))
    xs = x * s[:, :, None, None]
    if up:
      y = F.conv_transpose2d(xs, Ws.transpose(0, 1), stride=2)
      y = F.conv2d(F.pad(y, (1, 1, 1, 1)), self.blur_weight(co), groups=co)
    else:
      y = F.conv2d(xs, Ws, padding=k // 2)
    if demod:
      wsq = (Ws * Ws).sum(dim=(2, 3))  # [Co, Ci]
      coef = torch.rsqrt((s * s) @ wsq.t() + 1e-8)  # [N, Co]
      y = y * coef[:, :, None, None]
    return y

  def styled_conv(self, x, w, name, noise, up):
    y = self.modconv(x, name, self.styles(w, name), True, up)
    y = y + noise * self.p[f'{name}.noise.weight']
    return F.leaky_relu(y + self.p[f'{name}.activate.bias'][None, :, None, None], 0.2) * SQRT2

  def to_rgb(self, x, w, name, skip):
    y = self.modconv(x, name, self.styles(w, name), False, False) + self.p[f'{name}.bias']
    if skip is None:
      return y
    return y + F.conv_transpose2d(skip, self.blur_weight(3), stride=2, padding=1, groups=3)

  def blocks(self, wplus, noise, frm, to, layer_in=None):
    """Blocks frm..to; returns (features after block `to`, the RGB summed from block frm on)."""
    N = wplus.shape[0]
    rgb = None
    k = frm
    if frm == 0:
      c = self.p['input.input']
      x = c.expand(N, *c.shape[1:])
      x = self.styled_conv(x, wplus[:, 0], 'conv1', noise[0], False)
      rgb = self.to_rgb(x, wplus[:, 1], 'to_rgb1', None)
      k = 1
    else:
      x = layer_in
    while k <= to:
      x = self.styled_conv(x, wplus[:, 2 * k - 1], f'convs.{2 * k - 2}', noise[2 * k - 1], True)
      x = self.styled_conv(x, wplus[:, 2 * k], f'convs.{2 * k - 1}', noise[2 * k], False)
      rgb = self.to_rgb(x, wplus[:, 2 * k + 1], f'to_rgbs.{k - 1}', rgb)
      k += 1
    return x, rgb

  def synthesis(self, wplus, noise):
    return self.blocks(wplus, noise, 0, self.L - 1)[1]

  def from_layer(self, wplus, noise, k, layer_in):
    return self.blocks(wplus, noise, k, self.L - 1, layer_in)[1]


def noise_side(i):
  return 2 ** ((i + 5) // 2)


class ScoreViT(torch.nn.Module):
  """eps(x, t) of the shipped score models ('token' time conditioning: one scalar per token)."""

  def __init__(self, sd, heads):
    super().__init__()
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items() if not k.startswith('train.') and not k.startswith('gaussian.')}
    if 'transformer.layers.0.0.fn.time_mod.weight' in sd:
      raise ValueError("the peer implements the 'token' time conditioning only")
    self.params = torch.nn.ParameterDict({k.replace('.', '__'): torch.nn.Parameter(v.float().clone()) for k, v in sd.items()})
    self.params['embed__0__W'].requires_grad_(False)
    _, self.T, self.D = sd['pos_embedding'].shape
    self.C = sd['to_patch_embedding.1.weight'].shape[1]
    self.depth = 0
    while f'transformer.layers.{self.depth}.0.fn.norm.weight' in sd:
      self.depth += 1
    self.heads = heads
    self.dh = sd['transformer.layers.0.0.fn.fn.to_qkv.weight'].shape[0] // 3 // heads

  def w(self, name):
    return self.params[name.replace('.', '__')]

  def linear(self, x, name, bias=True):
    return F.linear(x, self.w(f'{name}.weight'), self.w(f'{name}.bias') if bias else None)

  def named_weights(self):
    """(repo name, parameter) of every trainable tensor (the Fourier features are fixed)."""
    return [(k.replace('__', '.'), p) for k, p in self.params.items() if p.requires_grad]

  def forward(self, x, t):
    B, C, H, W = x.shape
    T = H * W
    tokens = x.reshape(B, C, T).transpose(1, 2)
    proj = t[:, None] * self.w('embed.0.W')[None, :] * (2 * math.pi)
    e = self.linear(F.silu(self.linear(torch.cat([torch.sin(proj), torch.cos(proj)], 1), 'embed.1')), 'dense.dense')
    z = self.linear(tokens, 'to_patch_embedding.1') + self.w('pos_embedding') + e[:, :T, None]
    h, dh = self.heads, self.dh
    for i in range(self.depth):
      a = f'transformer.layers.{i}.0.fn'
      f = f'transformer.layers.{i}.1.fn'
      u = F.layer_norm(z, (self.D,), self.w(f'{a}.norm.weight'), self.w(f'{a}.norm.bias'), 1e-5)
      qkv = F.linear(u, self.w(f'{a}.fn.to_qkv.weight')).reshape(B, T, 3, h, dh).permute(2, 0, 3, 1, 4)
      att = torch.softmax((qkv[0] @ qkv[1].transpose(-1, -2)) * dh ** -0.5, dim=-1)
      o = (att @ qkv[2]).permute(0, 2, 1, 3).reshape(B, T, h * dh)
      z = z + self.linear(o, f'{a}.fn.to_out.0')
      u = F.layer_norm(z, (self.D,), self.w(f'{f}.norm.weight'), self.w(f'{f}.norm.bias'), 1e-5)
      z = z + self.linear(F.gelu(self.linear(u, f'{f}.fn.net.0')), f'{f}.fn.net.3')
    return self.linear(z, 'projector').transpose(1, 2).reshape(B, C, H, W)


class VPSDE:
  """docs/design.md, "VP-SDE": beta0 0.1, beta1 20 unless the model says otherwise."""

  def __init__(self, beta0=0.1, beta1=20.0):
    self.beta0, self.beta1 = beta0, beta1

  def mean_coeff(self, t):
    return torch.exp(-t * t * (self.beta1 - self.beta0) / 4 - t * self.beta0 / 2)

  def std(self, t):
    m = self.mean_coeff(t)
    return torch.sqrt(1 - m * m)
