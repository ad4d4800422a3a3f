"""The memory bandwidth a bandwidth-bound kernel is judged against."""

from __future__ import annotations

from disenttalk_fast._torch import torch
from disenttalk_fast.bench.timing import measure

# Datasheet peak DRAM bandwidth (GB/s) by device-name fragment. Devices not listed (and CPUs) are
# judged against a measured device-to-device copy, which understates the peak by ~10%.
PEAK_GBPS = {"H200": 4800.0, "H100 SXM": 3350.0, "H100 80GB HBM3": 3350.0, "H100 PCIe": 2000.0,
             "H100 NVL": 3900.0, "A100-SXM4-80GB": 2039.0, "A100 80GB PCIe": 1935.0,
             "A100-SXM4-40GB": 1555.0, "A100-PCIE-40GB": 1555.0, "L40S": 864.0, "L4": 300.0}


def copy_gbps(device: torch.device, nbytes: int = 256 << 20) -> float:
    """Achieved bandwidth of a device-to-device copy (bytes read + written per second)."""
    n = nbytes // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = measure(lambda: dst.copy_(src), device, warmup=2, min_repeats=5, budget_s=0.5)
    return 2 * n * 4 / (t.median_ms * 1e-3) / 1e9


def peak_gbps(device: torch.device) -> tuple[float, str]:
    """(GB/s, where the figure comes from): the datasheet for known GPUs, else a measured copy."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, gbps in PEAK_GBPS.items():
            if key in name:
                return gbps, "datasheet"
    return copy_gbps(device), "measured copy"
