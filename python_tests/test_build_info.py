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
    assert isinstance(info["cpu_blas_borrowed"], bool)
    if not info["backend_env"]:
        assert info["backend_env_error"] is None


def test_info_command_prints_json(tmp_path):
    # The installed console script, run away from the source tree so that the installed
    # package (with its compiled _C) is the one imported.
    script = Path(sys.executable).with_name("disenttalk")
    out = subprocess.run([str(script), "info", "--json"], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert json.loads(out.stdout)["cpu_kernels"] is True


def test_info_reports_bad_environment_variables_instead_of_failing(monkeypatch, capsys):
    """`disenttalk info` is the diagnostic command: a bad DISENTTALK_BACKEND (once exit 2 and no
    report) or DISENTTALK_THREAD_POOL (once silently read as 'torch') shows up in the report,
    as one stderr line each, and in the exit status 1."""
    from disenttalk_fast.cli import main

    monkeypatch.setenv("DISENTTALK_BACKEND", "bogus")
    monkeypatch.setenv("DISENTTALK_THREAD_POOL", "mine")
    assert main(["info", "--json"]) == 1
    printed = capsys.readouterr()
    info = json.loads(printed.out)
    assert info["backend_env"] == "bogus" and info["auto_backend_cpu"] is None
    assert "DISENTTALK_BACKEND: unknown backend 'bogus'" in info["backend_env_error"]
    assert info["thread_pool_env"] == "mine"
    assert "DISENTTALK_THREAD_POOL: unknown thread pool 'mine'" in info["thread_pool_env_error"]
    assert printed.err.count("disenttalk info: error: ") == 2
    assert len(printed.err.strip().splitlines()) == 2

    # A known backend that 'auto' cannot run on CPU tensors: reported, the table still printed;
    # an error where no device here runs it, a warning where a GPU does.
    from disenttalk_fast import build_info

    monkeypatch.setenv("DISENTTALK_BACKEND", "cuda")
    monkeypatch.delenv("DISENTTALK_THREAD_POOL")
    runs_somewhere = build_info()["auto_backend_cuda"] is not None
    assert main(["info"]) == (0 if runs_somewhere else 1)
    printed = capsys.readouterr()
    assert "needs CUDA tensors" in printed.err and "torch_version" in printed.out
    assert f"info: {'warning' if runs_somewhere else 'error'}: " in printed.err
    assert any(line.startswith("backend_env_error") and "DISENTTALK_BACKEND=cuda" in line
               for line in printed.out.splitlines())


def test_info_exits_0_with_good_environment_variables(monkeypatch, capsys):
    from disenttalk_fast.cli import main

    monkeypatch.setenv("DISENTTALK_BACKEND", "reference")
    monkeypatch.setenv("DISENTTALK_THREAD_POOL", "own")
    assert main(["info", "--json"]) == 0
    printed = capsys.readouterr()
    info = json.loads(printed.out)
    assert info["auto_backend_cpu"] == "reference" and printed.err == ""
    assert info["backend_env_error"] is None and info["thread_pool_env_error"] is None


def test_triton_kernels_installed_inside_package():
    import importlib.util

    assert importlib.util.find_spec("disenttalk_fast._triton") is not None
    assert importlib.util.find_spec("kernels") is None or "site-packages" not in str(
        importlib.util.find_spec("kernels").origin)


def test_build_records_cpu_target():
    # The default build (`pip install .`) tunes the kernels for this machine and asks no check.
    from disenttalk_fast import _cpu_target

    assert disenttalk_fast.build_info()["cpu_kernels_target"] == _cpu_target.TARGET
    assert _cpu_target.TARGET in ("native", "x86-64-v3", "default")
    if _cpu_target.TARGET != "x86-64-v3":
        assert _cpu_target.FEATURES == ()


def test_missing_cpu_features():
    from disenttalk_fast import _native

    required = ("avx", "avx2", "fma")
    assert _native.missing_cpu_features(required, frozenset({"sse2", "avx"})) == ["avx2", "fma"]
    assert _native.missing_cpu_features(required, frozenset(required) | {"sse2"}) == []
    assert _native.missing_cpu_features(required, None) == []   # unknown: import as before
    flags = _native.cpu_flags()
    assert flags is None or "fpu" in flags or "fp" in flags   # x86 / ARM spelling


def test_cpu_flags_without_proc_cpuinfo_come_from_torch(monkeypatch):
    """macOS / Windows: no /proc/cpuinfo, so PyTorch's dispatch level stands in for the flags."""
    from disenttalk_fast import _native

    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(_native, "open", no_proc, raising=False)
    cpu = torch.backends.cpu
    for level, missing in [("AVX2", []), ("AVX512", []), ("DEFAULT", ["avx2", "fma"]),
                           ("NO AVX", ["avx2", "fma"])]:
        monkeypatch.setattr(cpu, "get_cpu_capability", lambda level=level: level)
        assert _native.missing_cpu_features(("avx2", "fma"), _native.cpu_flags()) == missing
    monkeypatch.setattr(cpu, "get_cpu_capability", lambda: "SVE256")   # says nothing about x86
    assert _native.cpu_flags() is None


def test_portable_build_on_an_old_cpu_reports_kernels_unavailable(tmp_path):
    # A portable x86-64 build (x86-64-v3) on a CPU without AVX2 must not import _C (it would
    # die on an illegal instruction): the kernels are reported unavailable, with the reason, and
    # "auto" falls back to the reference. Simulated in a fresh interpreter by a _cpu_target that
    # asks for a flag no CPU has.
    code = """
import sys, types
fake = types.ModuleType("disenttalk_fast._cpu_target")
fake.TARGET, fake.FEATURES = "x86-64-v3", ("avx2", "no-such-flag")
sys.modules["disenttalk_fast._cpu_target"] = fake
import json, disenttalk_fast
info = disenttalk_fast.build_info()
print(json.dumps([info["cpu_kernels"], info["cpu_kernels_error"], info["auto_backend_cpu"]]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    available, error, auto = json.loads(out.stdout.strip().splitlines()[-1])
    assert available is False
    assert "built for x86-64-v3" in error and "no-such-flag" in error, error
    assert auto == "reference"
