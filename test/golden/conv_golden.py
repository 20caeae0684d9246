# Golden values for test/conv.test.ts, computed with PyTorch (CPU, float32): F.conv2d and
# F.conv_transpose2d forward, and the gradients of sum(y * R) (R random) for input, weight and bias
# by autograd. Development-time only (Debian python3-torch); the tests read conv_golden.json.
#   /usr/bin/python3 test/golden/conv_golden.py > test/golden/conv_golden.json
# Padding in the JSON is symmetric [py, px] (PyTorch's own argument); outputPadding for transposed.
import json

import torch
import torch.nn.functional as F

torch.manual_seed(0)

CASES = [
    # op, name, x shape, w shape, bias, stride, padding, dilation, groups, output_padding
    ('conv2d', '3x3 same, odd sizes', [2, 3, 5, 7], [5, 3, 3, 3], True, [1, 1], [1, 1], [1, 1], 1, None),
    ('conv2d', '4x3 stride 2 groups 2 dilation', [1, 4, 9, 8], [6, 2, 4, 3], True, [2, 1], [2, 1], [1, 2], 2, None),
    ('conv2d', '1x1 toRGB', [2, 6, 4, 3], [3, 6, 1, 1], True, [1, 1], [0, 0], [1, 1], 1, None),
    ('conv_transpose2d', 'StyleGAN2 up: 3x3 stride 2 no padding', [2, 3, 3, 4], [3, 5, 3, 3], False, [2, 2], [0, 0], [1, 1], 1, [0, 0]),
    ('conv_transpose2d', 'stride 2 padding 1 output padding 1 groups 2', [1, 4, 3, 5], [4, 3, 3, 3], True, [2, 2], [1, 1], [1, 1], 2, [1, 1]),
    ('conv_transpose2d', 'stride (3, 2) 4x3 dilation', [1, 2, 3, 2], [2, 3, 4, 3], True, [3, 2], [1, 0], [1, 2], 1, [2, 1]),
]


def flat(t):
    return [float('%.9g' % v) for v in t.detach().reshape(-1).tolist()]  # 9 digits: exact float32


out = {'torch': torch.__version__, 'cases': []}
for op, name, xs, ws, has_bias, stride, padding, dilation, groups, opad in CASES:
    x = torch.randn(xs, requires_grad=True)
    w = torch.randn(ws, requires_grad=True)
    cout = ws[0] if op == 'conv2d' else ws[1] * groups
    b = torch.randn([cout], requires_grad=True) if has_bias else None
    if op == 'conv2d':
        y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    else:
        y = F.conv_transpose2d(x, w, b, stride=stride, padding=padding, output_padding=opad, groups=groups, dilation=dilation)
    r = torch.randn(y.shape)
    (y * r).sum().backward()
    case = {'op': op, 'name': name, 'stride': stride, 'padding': padding, 'dilation': dilation, 'groups': groups,
            'x_shape': xs, 'w_shape': ws, 'y_shape': list(y.shape), 'x': flat(x), 'w': flat(w), 'r': flat(r),
            'y': flat(y), 'gx': flat(x.grad), 'gw': flat(w.grad)}
    if opad is not None:
        case['output_padding'] = opad
    if has_bias:
        case['b'] = flat(b)
        case['gb'] = flat(b.grad)
    out['cases'].append(case)
print(json.dumps(out))
