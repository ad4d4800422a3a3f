"""Test configuration shared by every test module.

Without a CUDA device the Triton kernels run under Triton's CPU interpreter. The variable must be
set before any Triton kernel module is imported, which is why it happens here at collection time.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# The built-in face is built in each test process, not read from or written to the user's cache
# (test_facemodel.py tests the cache in temporary folders).
os.environ.setdefault("DISENTTALK_CACHE_DIR", "off")

# Keep the C++ pool and PyTorch's pool at the machine's size; tests are small.
torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a whole test module: `pytestmark =
    pytest.mark.usefixtures("one_thread")`. Model-level tests are dominated by many small ops,
    for which one thread is faster than two (far faster on a shared, loaded machine); the op
    tests keep the default thread count so that the C++ thread pool is exercised."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
