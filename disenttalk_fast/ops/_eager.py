"""When an op may call its kernel directly instead of through the torch.library dispatcher.

Going through a `torch.library.custom_op` costs ~35 µs of Python per call on this CPU, which is
more than a FiLM on a 250-frame window takes; a denoiser step makes ~30 such calls. The dispatcher
is needed for autograd, torch.compile / fake tensors, tensor subclasses, functorch transforms and
dispatch modes — and for nothing else. So an op runs the very same implementation function
directly exactly when none of those is in play: plain tensors, no gradient wanted, eager mode.
"""

from __future__ import annotations

from torch.utils._python_dispatch import _get_current_dispatch_mode

from disenttalk_fast._torch import torch

# Private PyTorch hooks; if a future release drops one, answer conservatively (use the dispatcher).
_is_wrapped = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", None)


# nn.Parameter is a plain tensor for this purpose (it opts out of __torch_function__); other
# subclasses (FakeTensor, DTensor, ...) need the dispatcher.
_PLAIN = (torch.Tensor, torch.nn.Parameter)


def direct_call_ok(*tensors) -> bool:
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    if _is_wrapped is None or _transforms_active is None:
        return False
    if _get_current_dispatch_mode() is not None or _transforms_active():
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t is None:
            continue
        if type(t) not in _PLAIN or _is_wrapped(t) or (grad and t.requires_grad):
            return False
    return True
