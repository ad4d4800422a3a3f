"""Helpers for testing a fused op against its pure-PyTorch reference.

- `backend_cases()`: every (backend, device, dtype) a machine can run, with skip marks for the
  rest, so CUDA cases skip cleanly without a GPU and bf16 stays off the Triton interpreter.
- `assert_matches_reference()`: fp32 is held to a tight tolerance; half precision is held to an
  error budget of twice the error the reference itself makes in that precision (the
  flash-attention rule), plus a small absolute floor.
- `strided()`: the same values with non-trivial strides (a slice of a wider tensor).
"""

from __future__ import annotations

import pytest
import torch

from disenttalk_fast import _native, backends

HAS_CUDA = torch.cuda.is_available()
CUDA_KERNELS = _native.cuda_compiled()
TRITON = backends.triton_available()

FP32_TOL = dict(rtol=3e-4, atol=1e-4)
# The same kernel with its keys split or not: fp32 sums in another order, then one rounding to
# the output dtype (up to a unit or two in the last place of fp16 / bf16).
SPLIT_TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=2e-3, atol=2e-3),
             torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2)}


def backend_cases(include_reference: bool = False):
    """pytest params of (backend, device, dtype)."""
    cases = []
    if include_reference:
        cases.append(pytest.param("reference", "cpu", torch.float32, id="reference-cpu-fp32"))
    cases.append(pytest.param("cpu", "cpu", torch.float32, id="cpu-fp32",
                              marks=pytest.mark.skipif(not _native.cpu_available(),
                                                       reason="C++ kernels not built")))
    for dtype, tag in ((torch.float32, "fp32"), (torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        cases.append(pytest.param("cuda", "cuda", dtype, id=f"cuda-{tag}", marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device"),
            pytest.mark.skipif(not CUDA_KERNELS, reason="CUDA kernels not compiled in"),
        ]))
    # Triton: on the GPU when there is one, else on the CPU interpreter (fp32/fp16; the
    # interpreter's bf16 dot products are unreliable, so bf16 is GPU-only).
    tdev = "cuda" if HAS_CUDA else "cpu"
    for dtype, tag in ((torch.float32, "fp32"), (torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        marks = [pytest.mark.skipif(not TRITON, reason="triton not installed")]
        if dtype == torch.bfloat16 and not HAS_CUDA:
            marks.append(pytest.mark.skip(reason="bf16 Triton runs on the GPU only"))
        cases.append(pytest.param("triton", tdev, dtype, id=f"triton-{tdev}-{tag}", marks=marks))
    return cases


def cross_shapes(cases, shapes, interpreter_shapes, shape_id=str):
    """(backend, device, dtype, shape) params: every case with every shape, except that Triton
    under the CPU interpreter (slow) gets `interpreter_shapes` instead."""
    out = []
    for case in cases:
        backend, device = case.values[0], case.values[1]
        use = interpreter_shapes if backend == "triton" and device == "cpu" else shapes
        for shape in use:
            out.append(pytest.param(*case.values, shape, marks=case.marks,
                                    id=f"{case.id}-{shape_id(shape)}"))
    return out


_AOT_SCRIPT = """
import json, sys
import triton
from triton.compiler import ASTSource
from triton.backends.compiler import GPUTarget
import importlib
spec = json.loads(sys.argv[1])
fn = getattr(importlib.import_module(spec["module"]), spec["kernel"])
names = fn.arg_names
sig = {n: spec["types"].get(n, "constexpr" if n in spec["constexprs"] else "i32") for n in names}
consts = {(names.index(k),): v for k, v in spec["constexprs"].items()}
kernel = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts),
                        target=GPUTarget("cuda", spec["arch"], 32), options=spec["options"])
print(json.dumps({"shared": kernel.metadata.shared}))
"""


def compile_triton_for_gpu(module: str, kernel: str, types: dict, constexprs: dict,
                           arch: int = 90, options: dict | None = None) -> dict:
    """Compile a Triton kernel to GPU code (PTX and cubin via Triton's bundled ptxas) without a
    GPU, in a subprocess without TRITON_INTERPRET. Catches what the interpreter accepts but the
    compiler rejects. `types`: Triton signature types of the non-i32, non-constexpr arguments;
    `options`: compile options such as num_warps. Returns {"shared": bytes of shared memory per
    program}, which a GPU checks against its limit only at launch."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    spec = json.dumps(dict(module=module, kernel=kernel, types=types, constexprs=constexprs,
                           arch=arch, options=options or {}))
    # cwd away from the source tree: `python -c` puts the cwd first on sys.path, and the
    # checkout's disenttalk_fast/ (no compiled parts, no _triton) must not shadow the install.
    proc = subprocess.run([sys.executable, "-c", _AOT_SCRIPT, spec], env=env,
                          capture_output=True, text=True, timeout=600,
                          cwd=tempfile.gettempdir())
    assert proc.returncode == 0, f"{kernel} does not compile for sm_{arch}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def strided(t: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """A non-contiguous view holding the same values: every other element of a wider tensor."""
    shape = list(t.shape)
    shape[dim] *= 2
    wide = torch.zeros(shape, dtype=t.dtype, device=t.device)
    index = [slice(None)] * t.dim()
    index[dim] = slice(0, None, 2)
    view = wide[tuple(index)]
    view.copy_(t)
    assert not view.is_contiguous() or t.numel() <= 1
    return view


def assert_matches_reference(out, ref_fn, inputs, *, rtol=None, atol=None, budget=2.0,
                             floor=None):
    """Compare `out` (computed in inputs' dtype) with `ref_fn` evaluated in fp32 on the CPU.

    fp32: plain allclose. fp16/bf16: max |out - ref32| must be ≤ budget × the max error of the
    reference run in that same low precision, plus an absolute floor.
    """
    to32 = [x.detach().float().cpu() if isinstance(x, torch.Tensor) else x for x in inputs]
    ref32 = ref_fn(*to32)
    outs, refs = _as_tuple(out), _as_tuple(ref32)
    for o, r in zip(outs, refs):
        o = o.detach().float().cpu()
        assert o.shape == r.shape, f"shape {tuple(o.shape)} != reference {tuple(r.shape)}"
        assert torch.isfinite(o).all(), "non-finite values in kernel output"
        if outs[0].dtype == torch.float32 and inputs_dtype(inputs) == torch.float32:
            torch.testing.assert_close(o, r, rtol=rtol or FP32_TOL["rtol"],
                                       atol=atol or FP32_TOL["atol"])
    if inputs_dtype(inputs) != torch.float32:
        low = ref_fn(*[x.detach().cpu() if isinstance(x, torch.Tensor) else x for x in inputs])
        for o, r, lo in zip(outs, refs, _as_tuple(low)):
            ref_err = (lo.float() - r).abs().max().item()
            err = (o.detach().float().cpu() - r).abs().max().item()
            scale = r.abs().max().item()
            allowed = budget * ref_err + (floor if floor is not None else 1e-3 * max(scale, 1.0))
            assert err <= allowed, f"low-precision error {err:.3g} > allowed {allowed:.3g} " \
                                   f"(reference's own error {ref_err:.3g})"


def inputs_dtype(inputs):
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return x.dtype
    return torch.float32


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)
