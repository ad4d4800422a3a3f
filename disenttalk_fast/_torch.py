"""Import PyTorch once, with a one-line error when it is missing.

torch is deliberately not a pip dependency of this package (a bare requirement would pull a
multi-GB CUDA build onto machines that want the CPU one), so its absence must read as an
instruction, not a traceback.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "disenttalk_fast needs PyTorch, which is not installed: install the build you want first, "
        "e.g. `pip install torch==2.13.0` (CPU) — see README.md"
    ) from exc

# The short dtype names the CLI and `load_model` take.
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

__all__ = ["torch", "DTYPES"]
