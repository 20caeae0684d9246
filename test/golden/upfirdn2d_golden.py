# Golden values for test/upfirdn.test.ts, computed with PyTorch (CPU, float32) using NVlabs'
# reference formulas (stylegan2-ada-pytorch torch_utils/ops/upfirdn2d.py `_upfirdn2d_ref` and
# bias_act.py `_bias_act_ref`, copied below), gradients by autograd of sum(y * R).
# Development-time only (Debian python3-torch); the tests read upfirdn2d_golden.json.
#   /usr/bin/python3 test/golden/upfirdn2d_golden.py > test/golden/upfirdn2d_golden.json
import json
import math

import numpy as np
import torch
import torch.nn.functional as F


def upfirdn2d_ref(x, f, up, down, padding):
    # up = [upx, upy], down = [downx, downy], padding = [padx0, padx1, pady0, pady1]
    batch_size, num_channels, in_height, in_width = x.shape
    upx, upy = up
    downx, downy = down
    padx0, padx1, pady0, pady1 = padding
    x = x.reshape([batch_size, num_channels, in_height, 1, in_width, 1])
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape([batch_size, num_channels, in_height * upy, in_width * upx])
    x = F.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0): x.shape[2] - max(-pady1, 0), max(-padx0, 0): x.shape[3] - max(-padx1, 0)]
    f = f.flip(list(range(f.ndim)))  # flip_filter=False: a true convolution
    f = f[np.newaxis, np.newaxis].repeat([num_channels, 1] + [1] * f.ndim)
    x = F.conv2d(input=x, weight=f, groups=num_channels)
    return x[:, :, ::downy, ::downx]


def bias_act_ref(x, b, dim, act, alpha, gain, clamp):
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if act == 'lrelu':
        x = F.leaky_relu(x, alpha)
    x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


torch.manual_seed(0)
cases = []
upfirdn = [
    # name, x shape, kernel, up, down, pad
    ('up2-asym4x4', [2, 3, 5, 4], torch.rand(4, 4) + 0.25, [2, 2], [1, 1], [2, 1, 2, 1]),
    ('mixed-3x2', [1, 2, 6, 7], torch.rand(3, 2) + 0.25, [1, 2], [2, 1], [-1, 2, 1, -2]),
    ('down2-crop', [2, 2, 7, 6], torch.rand(4, 4) + 0.25, [1, 1], [2, 2], [0, -1, 1, 2]),
    ('upsample2d', [1, 3, 4, 4], None, [2, 2], [1, 1], [2, 1, 2, 1]),
]
for name, shape, f, up, down, pad in upfirdn:
    if f is None:
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        f = k[None, :] * k[:, None]
        f = f / f.sum() * 4  # rosinality make_kernel, times factor^2
    x = torch.randn(shape, requires_grad=True)
    y = upfirdn2d_ref(x, f, up, down, pad)
    r = torch.randn(y.shape)
    (gx,) = torch.autograd.grad((y * r).sum(), [x])
    cases.append({'op': 'upfirdn2d', 'name': name, 'up': up, 'down': down, 'pad': pad,
                  'kernel_shape': list(f.shape), 'kernel': flat(f),
                  'x_shape': shape, 'x': flat(x), 'y_shape': list(y.shape), 'y': flat(y),
                  'upstream': flat(r), 'gx': flat(gx)})

for name, shape, dim, act, clamp in [('lrelu-clamp', [2, 3, 4, 4], 1, 'lrelu', 0.6), ('linear-dim2', [2, 4, 5], 2, 'linear', None)]:
    x = torch.randn(shape, requires_grad=True)
    b = (torch.randn(shape[dim]) * 0.3).requires_grad_(True)
    alpha, gain = (0.2, math.sqrt(2)) if act == 'lrelu' else (1.0, 1.0)
    y = bias_act_ref(x, b, dim, act, alpha, gain, clamp)
    r = torch.randn(y.shape)
    gx, gb = torch.autograd.grad((y * r).sum(), [x, b])
    cases.append({'op': 'bias_act', 'name': name, 'act': act, 'dim': dim, 'clamp': clamp,
                  'x_shape': shape, 'x': flat(x), 'bias': flat(b), 'y': flat(y),
                  'upstream': flat(r), 'gx': flat(gx), 'gbias': flat(gb)})

print(json.dumps({'torch': torch.__version__, 'cases': cases}))
