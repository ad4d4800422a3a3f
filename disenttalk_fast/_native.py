"""Access to the compiled core `disenttalk_fast._C`, which may be missing or lack CUDA."""

from __future__ import annotations

_C = None
IMPORT_ERROR: str | None = None
try:
    from disenttalk_fast import _C  # type: ignore[attr-defined, no-redef]
except ImportError as exc:  # e.g. a source checkout that was never built
    IMPORT_ERROR = f"{exc}"


def cpu_available() -> bool:
    return _C is not None


def cuda_compiled() -> bool:
    return _C is not None and bool(_C.cuda_compiled())


def require_cpu():
    if _C is None:
        raise RuntimeError(
            "disenttalk_fast: the C++ kernels are not built "
            f"({IMPORT_ERROR}); reinstall with `pip install .` or use backend='reference'"
        )
    return _C


def require_cuda():
    lib = require_cpu()
    if not lib.cuda_compiled():
        raise RuntimeError(
            "disenttalk_fast: this build has no CUDA kernels (no CUDA compiler was found when it "
            "was built); rebuild on a machine with nvcc or use backend='triton' or 'reference'"
        )
    return lib
