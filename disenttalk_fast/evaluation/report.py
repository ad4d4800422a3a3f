"""The Markdown table and PNG plots that `disenttalk eval` writes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

LABELS = {"ground_truth": "ground truth", "generated": "generated (DDIM)",
          "mismatched_audio": "control: another clip's audio", "mean_motion": "control: mean motion"}
COLUMNS = (("lse_c", "sync conf. (LSE-C-like) ↑", 3), ("lse_d", "sync dist. (LSE-D-like) ↓", 3),
           ("abs_offset", "mean abs. best offset (frames)", 2), ("mouth_corr", "mouth-open corr. ↑", 3),
           ("lmd", "lip vertex dist. ↓", 4), ("blink_rate", "blinks / s", 3),
           ("jitter", "jitter", 4), ("clips", "clips", 0))


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return str(int(value)) if digits == 0 else f"{value:.{digits}f}"


def table(rows: dict[str, dict], labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    head = "| motion | " + " | ".join(c[1] for c in COLUMNS) + " |"
    sep = "|---|" + "---:|" * len(COLUMNS)
    lines = [head, sep]
    for key, r in rows.items():
        cells = [_fmt(r.get(c[0]), c[2]) for c in COLUMNS]
        lines.append(f"| {labels.get(key, LABELS.get(key, key))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks(main: dict, ddpm: dict | None) -> list[tuple[str, bool, str]]:
    """The issue's acceptance criteria as (criterion, passed, numbers)."""
    gt, gen, mis = main["ground_truth"], main["generated"], main["mismatched_audio"]
    out = [
        ("sync confidence >= 0.8 x ground truth's", gen["lse_c"] >= 0.8 * gt["lse_c"],
         f"{gen['lse_c']:.3f} vs 0.8 x {gt['lse_c']:.3f} = {0.8 * gt['lse_c']:.3f}"),
        ("sync confidence >= 2 x the mismatched-audio control's",
         gen["lse_c"] >= 2 * mis["lse_c"],
         f"{gen['lse_c']:.3f} vs 2 x {mis['lse_c']:.3f} = {2 * mis['lse_c']:.3f}"),
        ("blink rate within 0.28-0.45 / s", 0.28 <= gen["blink_rate"] <= 0.45,
         f"{gen['blink_rate']:.3f} / s (ground truth {gt['blink_rate']:.3f})"),
        ("jitter within 1.5 x ground truth's", gen["jitter"] <= 1.5 * gt["jitter"],
         f"{gen['jitter']:.4f} vs 1.5 x {gt['jitter']:.4f} = {1.5 * gt['jitter']:.4f}"),
    ]
    if ddpm:
        a, b = ddpm["ddim"]["lse_c"], ddpm["ddpm"]["lse_c"]
        out.append((f"DDIM-25 within 10% of DDPM-{ddpm['timesteps']} on sync confidence",
                    abs(a - b) <= 0.1 * abs(b), f"{a:.3f} vs {b:.3f}"))
    return out


def _save(fig, path) -> None:
    """Write the figure atomically (never a half-written PNG under the final name) and close it."""
    import matplotlib.pyplot as plt

    from disenttalk_fast._atomic import atomic_output

    try:
        with atomic_output(path, suffix=".tmp.png") as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)


def plot_eye_openness(path: Path, gt, gen, title: str) -> None:
    """Eye openness (lid distance, both eyes averaged) over time, like the paper's Fig. 5."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=110)
    t = np.arange(len(gt)) / 25.0
    ax.plot(t, gt.mean(axis=1), label="ground truth", lw=1.4)
    ax.plot(t[:len(gen)], gen.mean(axis=1), label="generated", lw=1.4)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("eye openness")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def plot_mouth_vs_energy(path: Path, energy_db, mouth_gt, mouth_gen, title: str) -> None:
    """Mouth opening (ground truth and generated) against the audio's frame energy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=110)
    t = np.arange(len(mouth_gt)) / 25.0
    ax.plot(t, mouth_gt, label="mouth opening, ground truth", lw=1.3)
    ax.plot(t[:len(mouth_gen)], mouth_gen, label="mouth opening, generated", lw=1.3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("inner-lip distance")
    ax2 = ax.twinx()
    ax2.fill_between(t, energy_db[:len(t)], energy_db.min(), color="grey", alpha=0.25,
                     label="audio energy (dB)")
    ax2.set_ylabel("audio energy (dB)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
