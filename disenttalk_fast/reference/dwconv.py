"""Depthwise temporal convolutions (paper Eq. 5 and the F_conv path of Eq. 6).

All tensors are channels-last, (B, L, C), the layout of the model's hidden state; convolutions
use zero "same" padding so the output has the input's length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F

from disenttalk_fast._torch import torch

DILATIONS = (1, 2, 4)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   dilation: int = 1) -> torch.Tensor:
    """x: (B, L, C); weight: (C, k) with k odd; bias: (C,) or None. Returns (B, L, C)."""
    C, k = weight.shape
    if x.shape[1] == 0:
        # conv1d refuses an empty time axis; "same" padding keeps it empty. Built from x, weight
        # and bias, so that autograd still gives each a (zero) gradient, as the fused ops do.
        y = x * weight[:, 0]
        return y if bias is None else y + bias
    y = F.conv1d(x.transpose(1, 2), weight.unsqueeze(1), bias,
                 padding=dilation * (k // 2), dilation=dilation, groups=C)
    return y.transpose(1, 2)


def multi_dilation_dwconv(x: torch.Tensor, dw_weight: torch.Tensor, dw_bias: torch.Tensor,
                          pw_weight: torch.Tensor, pw_bias: torch.Tensor | None,
                          dilations: Sequence[int] = DILATIONS) -> torch.Tensor:
    """Three depthwise convs (kernel 3, one per dilation) -> concat -> pointwise projection.

    x: (B, L, C); dw_weight: (n, C, 3); dw_bias: (n, C); pw_weight: (C_out, n * C);
    pw_bias: (C_out,) or None; n = len(dilations). The concatenation is dilation-major:
    channels [0, C) come from dilations[0], [C, 2C) from dilations[1], and so on.
    Returns (B, L, C_out).
    """
    branches = [depthwise_conv(x, dw_weight[i], dw_bias[i], d) for i, d in enumerate(dilations)]
    return F.linear(torch.cat(branches, dim=-1), pw_weight, pw_bias)


def local_dwconv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The local window conv F_conv of Eq. 6: depthwise, kernel k (5 by default), dilation 1."""
    return depthwise_conv(x, weight, bias, 1)
