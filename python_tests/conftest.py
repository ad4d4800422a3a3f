"""Test configuration shared by every test module.

Without a CUDA device the Triton kernels run under Triton's CPU interpreter. The variable must be
set before any Triton kernel module is imported, which is why it happens here at collection time.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Keep the C++ pool and PyTorch's pool at the machine's size; tests are small.
torch.manual_seed(0)
