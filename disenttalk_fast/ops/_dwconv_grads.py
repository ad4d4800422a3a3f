"""Backward formulas of the depthwise temporal convolutions, in plain PyTorch ops.

They serve every backend (C++, CUDA, Triton): the pointwise projection's gradients are two GEMMs
that the vendor BLAS already runs near peak, and a depthwise conv's input gradient is the same
conv with the taps reversed. Writing them out (instead of re-running the reference under autograd)
keeps them traceable by torch.compile and usable for double backward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F

from disenttalk_fast._torch import torch
from disenttalk_fast.reference.dwconv import depthwise_conv


def depthwise_conv_backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                            dilation: int, needs: Sequence[bool] = (True, True)):
    """Gradients of `depthwise_conv(x, weight, bias, dilation)` -> (grad_x, grad_weight, grad_bias).

    y[t] = b + sum_j w[j] x[t + (j - h) d] with h = k // 2, so dL/dx is the same conv of the
    incoming gradient with the taps reversed, and dL/dw[j] pairs the gradient with x shifted by
    (j - h) d (zero outside the sequence).
    """
    C, k = weight.shape
    h, L = k // 2, x.shape[1]
    grad_x = depthwise_conv(grad, weight.flip(-1), None, dilation) if needs[0] else None
    grad_w = None
    if needs[1]:
        xp = F.pad(x, (0, 0, h * dilation, h * dilation))
        grad_w = torch.stack([(grad * xp[:, j * dilation: j * dilation + L]).sum(dim=(0, 1))
                              for j in range(k)], dim=-1)
    return grad_x, grad_w, grad.sum(dim=(0, 1))


def multi_dilation_dwconv_backward(grad: torch.Tensor, x: torch.Tensor, dw_weight: torch.Tensor,
                                   dw_bias: torch.Tensor, pw_weight: torch.Tensor,
                                   dilations: Sequence[int], needs: Sequence[bool]):
    """-> (grad_x, grad_dw_weight, grad_dw_bias, grad_pw_weight, grad_pw_bias)."""
    C, Cout = x.shape[-1], pw_weight.shape[0]
    grad_pw = None
    if needs[3]:
        # The concatenated depthwise outputs are recomputed, not saved: the forward never
        # materialises them, and recomputing costs less than storing (B, L, n*C).
        D = torch.cat([depthwise_conv(x, dw_weight[i], dw_bias[i], d)
                       for i, d in enumerate(dilations)], dim=-1)
        grad_pw = grad.reshape(-1, Cout).t() @ D.reshape(-1, D.shape[-1])
    grad_D = grad @ pw_weight  # (B, L, n*C)
    grad_x, grad_dw, grad_db = None, [], []
    for i, d in enumerate(dilations):
        gx, gw, gb = depthwise_conv_backward(grad_D[..., i * C:(i + 1) * C], x, dw_weight[i], d,
                                             (needs[0], needs[1]))
        if gx is not None:
            grad_x = gx if grad_x is None else grad_x + gx
        grad_dw.append(gw)
        grad_db.append(gb)
    return (grad_x, torch.stack(grad_dw) if needs[1] else None, torch.stack(grad_db),
            grad_pw, grad.sum(dim=(0, 1)))
