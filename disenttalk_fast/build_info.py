"""`build_info()`: what this installation can run, in one dict."""

from __future__ import annotations

import os
from importlib import metadata

from disenttalk_fast import _native, backends
from disenttalk_fast._torch import torch


def _version() -> str:
    try:
        return metadata.version("disenttalk_fast")
    except metadata.PackageNotFoundError:  # a source checkout on sys.path
        return "0+unknown"


def build_info() -> dict:
    """Package and torch versions, compiled backends, and what is usable right now.

    Never raises for a bad environment variable: a DISENTTALK_BACKEND that "auto" cannot use
    here (an unknown name, or a backend these tensors cannot run on) leaves the auto_* fields it
    breaks None and says why in `backend_env_error`; a DISENTTALK_THREAD_POOL that is not a
    pool is reported in `thread_pool_env_error`."""
    lib = _native._C
    cuda_compiled = _native.cuda_compiled()
    triton_ok = backends.triton_available()
    triton_version = None
    if triton_ok:
        import triton

        triton_version = triton.__version__
    device_count = lib.cuda_device_count() if cuda_compiled else 0
    cpu_device = torch.device("cpu")
    cuda_device = torch.device("cuda") if torch.cuda.is_available() else None
    backend_env = os.environ.get(backends.ENV_VAR)
    backend_errors: list[str] = []

    def auto(resolve, device):
        """resolve(device), or None with the reason kept when DISENTTALK_BACKEND breaks it."""
        if device is None:
            return None
        try:
            return resolve(device)
        except RuntimeError as exc:   # BackendError, or the kernels it names are not built
            if not backend_env:
                raise
            reason = str(exc).splitlines()[0]
            if not reason.startswith(backends.ENV_VAR):
                reason = f"{backends.ENV_VAR}={backend_env}: {reason}"
            if reason not in backend_errors:
                backend_errors.append(reason)
            return None

    auto_cpu = auto(lambda d: backends.resolve("auto", d), cpu_device)
    auto_cuda = auto(lambda d: backends.resolve("auto", d), cuda_device)
    model_auto_cuda = auto(_model_auto, cuda_device)
    return {
        "version": _version(),
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cpu_kernels": lib is not None,
        "cpu_kernels_error": _native.IMPORT_ERROR,
        "cpu_kernels_target": _native.cpu_target(),
        "cuda_kernels": cuda_compiled,
        "cuda_architectures": lib.cuda_architectures().split(",") if cuda_compiled else [],
        "cuda_runtime_version": lib.cuda_runtime_version() if cuda_compiled else None,
        "cuda_device_usable": bool(device_count > 0 and torch.cuda.is_available()),
        "cuda_device_name": torch.cuda.get_device_name() if cuda_device is not None else None,
        "triton_available": triton_ok,
        "triton_version": triton_version,
        "triton_interpreted": backends.triton_interpreted(),
        "num_threads": torch.get_num_threads(),
        "cpu_thread_pool": _native.thread_pool() if lib is not None else None,
        "thread_pool_env": os.environ.get(_native.THREAD_POOL_ENV),
        "thread_pool_env_error": _native.thread_pool_env_error(),
        # Whether fp32 CPU inference runs the block stack as one C++ call (on PyTorch's sgemm).
        "cpu_blas_borrowed": _native.blas_available(),
        "backend_env": backend_env,
        "backend_env_error": "; ".join(backend_errors) or None,
        "auto_backend_cpu": auto_cpu,
        "auto_backend_cuda": auto_cuda,
        "fast_denoiser_auto_cuda": model_auto_cuda,
    }


def _model_auto(device) -> str:
    """The ops backend a default-config FastDenoiser with backend "auto" runs on `device`."""
    from disenttalk_fast.config import DisentTalkConfig
    from disenttalk_fast.model.fast import auto_op_backend

    return backends.resolve(auto_op_backend(device, DisentTalkConfig().head_dim), device)
