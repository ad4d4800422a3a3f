"""Runs benchmark cases across providers and collects rows for the report."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass

from disenttalk_fast._torch import torch
from disenttalk_fast.bench import providers as prov
from disenttalk_fast.bench.op_cases import OpCase
from disenttalk_fast.bench.timing import Timing, measure_interleaved


@dataclass
class Row:
    suite: str            # "op" or "model"
    name: str             # op or model job
    shape: str
    provider: str
    status: str           # "ok" or "skipped: why" / "failed: why"
    ms: float | None = None        # median
    min_ms: float | None = None
    speedup_vs_eager: float | None = None   # of the medians
    gbps: float | None = None
    bandwidth_fraction: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def run_case(suite: str, case, device: torch.device, providers, budget_s: float,
             peak_gbps: float | None, compile_mode: str | None = None,
             progress=None, warmed=None) -> list[Row]:
    """Time `case` under each provider, the providers interleaved (`measure_interleaved`) so
    their ratios are measured under the same conditions. `compile_mode`: torch.compile's mode
    for an op case's "compile" provider (model cases compile their model themselves).
    `progress(row)` is called for each row once the case is measured, so a long run that is cut
    off still shows the cases it finished; `warmed(name, shape, provider, seconds)` after each
    provider's warm-up."""
    skipped, fns = {}, {}
    for p in providers:
        reason = prov.unavailable_reason(p, device)
        if reason:
            skipped[p] = reason
        else:
            fns[p] = _callable(case, p, compile_mode)
    on_warm = (lambda p, sec: warmed(_name(case), case.shape, p, sec)) if warmed else None
    timings = measure_interleaved(fns, device, budget_s=budget_s,
                                  warmup=getattr(case, "warmup", 3),
                                  min_repeats=getattr(case, "min_repeats", 5), on_warm=on_warm)
    eager = timings.get("eager")
    eager_ms = eager.median_ms if isinstance(eager, Timing) else None
    rows: list[Row] = []
    for p in providers:
        t = timings.get(p)
        if p in skipped:
            row = Row(suite, _name(case), case.shape, p, f"skipped: {skipped[p]}")
        elif not isinstance(t, Timing):  # a provider that cannot run this case: reported
            msg = str(t).splitlines()[0][:120] if str(t) else type(t).__name__
            row = Row(suite, _name(case), case.shape, p, f"skipped: {msg}")
        else:
            row = Row(suite, _name(case), case.shape, p, "ok", round(t.median_ms, 4),
                      round(t.min_ms, 4))
            if eager_ms:
                row.speedup_vs_eager = round(eager_ms / t.median_ms, 3)
            nbytes = getattr(case, "bytes_moved", None)
            if nbytes:
                row.gbps = round(nbytes / (t.median_ms * 1e-3) / 1e9, 2)
                if peak_gbps:
                    row.bandwidth_fraction = round(row.gbps / peak_gbps, 3)
        rows.append(row)
        if progress:
            progress(row)
    return rows


def _name(case) -> str:
    return getattr(case, "name", None) or case.op


def _callable(case, provider: str, compile_mode: str | None):
    if provider == "eager":
        return case.run_reference
    if provider == "compile" and isinstance(case, OpCase):
        return torch.compile(case.run_reference, mode=compile_mode)
    return lambda: case.run_backend(provider)   # model cases compile the model themselves

