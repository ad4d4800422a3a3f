"""disenttalk_fast: audio-driven 3DMM talking faces by region-disentangled diffusion, with fused
C++ / CUDA / Triton kernels.

Importing the package needs PyTorch but never CUDA or Triton.
"""

from disenttalk_fast import _torch  # noqa: F401  (one-line error when torch is missing)
from disenttalk_fast.build_info import build_info

__all__ = ["build_info"]
