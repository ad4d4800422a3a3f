"""Access to the compiled core `disenttalk_fast._C`, which may be missing or lack CUDA.

On import, the C++ kernels' parallel loops are pointed at the OpenMP runtime PyTorch itself
loaded, so they run on PyTorch's threads instead of fighting them for the cores (see
csrc/parallel.h). DISENTTALK_THREAD_POOL=own keeps the kernels on their own pool.
"""

from __future__ import annotations

import os
import re
import warnings


def cpu_flags() -> frozenset[str] | None:
    """This CPU's feature flags as Linux reports them (/proc/cpuinfo); elsewhere (macOS, Windows)
    what PyTorch's own CPU dispatch detected (`_flags_from_torch`); None where unknown."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):   # x86 / ARM spelling
                    return frozenset(value.split())
    except OSError:
        pass
    return _flags_from_torch()


# x86-64-v3's features as /proc/cpuinfo names them (see CMakeLists.txt): every CPU with AVX2 and
# FMA, which PyTorch's "AVX2" dispatch level requires, has the others too (Haswell and later).
X86_64_V3 = frozenset({"avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe"})


def _flags_from_torch() -> frozenset[str] | None:
    """The x86-64-v3 flags when PyTorch dispatches to AVX2 / AVX-512 kernels, none when it runs
    its baseline ones, None when it says nothing. (ATEN_CPU_CAPABILITY=default lowers its level
    on purpose, and then the C++ kernels are reported unavailable too.)"""
    try:
        from disenttalk_fast._torch import torch

        level = torch.backends.cpu.get_cpu_capability()
    except Exception:  # no torch, or a build without the query: unknown
        return None
    if level.startswith(("AVX2", "AVX512")):
        return X86_64_V3
    if level in ("DEFAULT", "NO AVX"):
        return frozenset()
    return None


def missing_cpu_features(required, flags) -> list[str]:
    """Which of `required` the flags lack; none when the flags are unknown (None)."""
    return [] if flags is None else [f for f in required if f not in flags]


def _build_target() -> tuple[str | None, tuple[str, ...]]:
    """(TARGET, FEATURES) of disenttalk_fast/_cpu_target.py, written by CMake next to _C; (None,
    ()) in a checkout that was never built."""
    try:
        from disenttalk_fast import _cpu_target
    except ImportError:
        return None, ()
    return _cpu_target.TARGET, tuple(_cpu_target.FEATURES)


_TARGET, _FEATURES = _build_target()


def _cpu_refusal() -> str | None:
    """Why _C must not be imported on this CPU, or None. A portable x86-64 build uses AVX2 / FMA
    instructions (see CMakeLists.txt): on a CPU without them importing it would kill the process
    with an illegal instruction, so the kernels are reported unavailable instead."""
    missing = missing_cpu_features(_FEATURES, cpu_flags())
    if not missing:
        return None
    return (f"the C++ kernels were built for {_TARGET} and this CPU lacks {', '.join(missing)}; "
            f"build from source on this machine (pip install --no-binary disenttalk_fast ...) "
            f"or use backend='reference'")


_C = None
IMPORT_ERROR: str | None = _cpu_refusal()
if IMPORT_ERROR is None:
    try:
        from disenttalk_fast import _C  # type: ignore[attr-defined, no-redef]
    except ImportError as exc:  # e.g. a source checkout that was never built
        IMPORT_ERROR = f"{exc}"


def cpu_target() -> str | None:
    """What the C++ kernels were compiled for ("native", "x86-64-v3", "default"), None if not
    built."""
    return _TARGET


# GNU libgomp (PyTorch's Linux wheels, as libgomp.so.1 or libgomp-<hash>.so.1), LLVM libomp,
# Intel libiomp5: all export the GOMP_parallel entry point the kernels call.
_OPENMP_NAME = re.compile(r"^lib(gomp|omp|iomp5)([-.][^/]*)?\.(so|dylib)(\.[0-9]+)*$")
# Where PyTorch's BLAS lives: MKL linked into libtorch_cpu (x86 Linux wheels), or a bundled
# OpenBLAS / MKL runtime. Any of them exporting `sgemm_` serves the C++ denoiser loop.
_BLAS_NAME = re.compile(r"^lib(torch_cpu|openblas[^/]*|mkl_rt)\.(so|dylib)(\.[0-9]+)*$")


def _loaded_libraries(pattern: re.Pattern) -> list[str]:
    """Paths of the shared libraries mapped into this process (Linux) whose file name matches
    `pattern`, in address order; [] where /proc/self/maps cannot be read."""
    from disenttalk_fast._torch import torch  # noqa: F401  (torch loads its libraries)

    found: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)   # address perms offset dev inode [path]
                path = fields[5].strip() if len(fields) == 6 else ""
                if (path.startswith("/") and pattern.match(os.path.basename(path))
                        and path not in found):
                    found.append(path)
    except OSError:
        pass
    return found


def loaded_openmp_runtime() -> str | None:
    """Path of the OpenMP runtime mapped into this process (Linux), or None."""
    found = _loaded_libraries(_OPENMP_NAME)
    return found[0] if found else None


def borrow_blas() -> bool:
    """Lend the C++ kernels PyTorch's BLAS `sgemm_` (for the one-call denoiser loop, which then
    multiplies as F.linear does); False where no loaded library exports it."""
    lib = require_cpu()
    return any(lib.use_blas_library(path) for path in _loaded_libraries(_BLAS_NAME))


def blas_available() -> bool:
    return _C is not None and bool(_C.blas_available())


def set_thread_pool(kind: str) -> str:
    """"torch": run the kernels' parallel loops on PyTorch's OpenMP threads (when its runtime is
    found), "own": on the kernels' own pool. Returns the pool now in use ("openmp" or "own")."""
    if kind not in ("torch", "own"):
        raise ValueError(f"thread pool must be 'torch' or 'own', got {kind!r}")
    lib = require_cpu()
    path = loaded_openmp_runtime() if kind == "torch" else None
    if not (path and lib.use_openmp_runtime(path)):
        lib.use_openmp_runtime("")
    return thread_pool()


def thread_pool() -> str:
    return "openmp" if _C is not None and _C.using_openmp_runtime() else "own"


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


THREAD_POOL_ENV = "DISENTTALK_THREAD_POOL"
THREAD_POOLS = ("torch", "own")


def thread_pool_env_error() -> str | None:
    """What is wrong with DISENTTALK_THREAD_POOL now, or None (unset, empty, or a known pool)."""
    value = os.environ.get(THREAD_POOL_ENV)
    if not value or value in THREAD_POOLS:
        return None
    return (f"{THREAD_POOL_ENV}: unknown thread pool {value!r} (choose from "
            f"{', '.join(THREAD_POOLS)}); it is read as 'torch'")


# Read once, here: "own" keeps the C++ kernels on their own thread pool, anything else means
# PyTorch's threads; a typo must not pass unseen (`disenttalk info` reports it too).
if thread_pool_env_error():
    warnings.warn(thread_pool_env_error(), RuntimeWarning, stacklevel=2)
if _C is not None and os.environ.get(THREAD_POOL_ENV) != "own":
    set_thread_pool("torch")
if _C is not None:
    borrow_blas()
