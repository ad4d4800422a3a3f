"""CUDA kernel logic checked on the CPU: a kernel's per-thread body, written `__host__
__device__`, is compiled by nvcc into a host program that runs it for every item of the
kernel's grid against a plain loop. For machines with nvcc but no GPU (this project's CI); a GPU
runs the kernels themselves in the op tests."""

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CSRC = HERE.parent / "csrc"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
@pytest.mark.parametrize("program", ["local_dwconv_run.cu", "attention_split.cu"])
def test_kernel_body_on_host(program, tmp_path):
    exe = tmp_path / Path(program).stem
    build = subprocess.run(["nvcc", "-std=c++17", "-O1", "-arch=sm_80", f"-I{CSRC}",
                            str(HERE / "cuda_host" / program), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
