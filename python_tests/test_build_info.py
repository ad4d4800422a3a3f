"""build_info() and `disenttalk info` report what was compiled in and what can run."""

import json
import subprocess
import sys
from pathlib import Path

import torch

import disenttalk_fast


def test_build_info_fields():
    info = disenttalk_fast.build_info()
    assert info["torch_version"] == torch.__version__
    assert info["cpu_kernels"] is True, info["cpu_kernels_error"]
    assert isinstance(info["cuda_kernels"], bool)
    if info["cuda_kernels"]:
        assert info["cuda_architectures"], "CUDA compiled in but no architectures reported"
    assert info["cuda_device_usable"] == (torch.cuda.is_available() and info["cuda_kernels"])
    assert info["auto_backend_cpu"] in ("cpu", "reference")


def test_info_command_prints_json(tmp_path):
    # The installed console script, run away from the source tree so that the installed
    # package (with its compiled _C) is the one imported.
    script = Path(sys.executable).with_name("disenttalk")
    out = subprocess.run([str(script), "info", "--json"], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert json.loads(out.stdout)["cpu_kernels"] is True


def test_triton_kernels_installed_inside_package():
    import importlib.util

    assert importlib.util.find_spec("disenttalk_fast._triton") is not None
    assert importlib.util.find_spec("kernels") is None or "site-packages" not in str(
        importlib.util.find_spec("kernels").origin)
