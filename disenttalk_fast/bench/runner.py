"""Runs benchmark cases across providers and collects rows for the report."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass

from disenttalk_fast._torch import torch
from disenttalk_fast.bench import providers as prov
from disenttalk_fast.bench.op_cases import OpCase
from disenttalk_fast.bench.timing import measure


@dataclass
class Row:
    suite: str            # "op" or "model"
    name: str             # op or model job
    shape: str
    provider: str
    status: str           # "ok" or "skipped: why" / "failed: why"
    ms: float | None = None
    speedup_vs_eager: float | None = None
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
             progress=None) -> list[Row]:
    """Time `case` under each provider. `compile_mode`: torch.compile's mode for an op case's
    "compile" provider (model cases compile their model themselves). `progress(row)` is called
    as each row is measured, so a long run that is cut off still shows what it measured."""
    rows: list[Row] = []
    eager_ms = None
    for p in providers:
        reason = prov.unavailable_reason(p, device)
        if reason:
            rows.append(Row(suite, _name(case), case.shape, p, f"skipped: {reason}"))
            continue
        fn = _callable(case, p, compile_mode)
        try:
            t = measure(fn, device, budget_s=budget_s, warmup=getattr(case, "warmup", 3),
                        min_repeats=getattr(case, "min_repeats", 5))
        except Exception as exc:  # a provider that cannot run this case is reported, not fatal
            msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            rows.append(Row(suite, _name(case), case.shape, p, f"skipped: {msg}"))
            if progress:
                progress(rows[-1])
            continue
        if p == "eager":
            eager_ms = t.median_ms
        row = Row(suite, _name(case), case.shape, p, "ok", round(t.median_ms, 4))
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

