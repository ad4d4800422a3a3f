"""Prints, saves and plots benchmark rows: a table per suite, JSON for machines, a PNG chart."""

from __future__ import annotations

import json

from disenttalk_fast._atomic import atomic_output
from disenttalk_fast.bench.runner import Row


def format_table(rows: list[Row], header: str) -> str:
    lines = [header, ""]
    cols = ("name", "shape", "provider", "ms", "min ms", "x eager", "GB/s", "of peak BW",
            "note")
    table = [cols]
    for r in rows:
        table.append((
            r.name, r.shape, r.provider,
            f"{r.ms:.3f}" if r.ms is not None else "-",
            f"{r.min_ms:.3f}" if r.min_ms is not None else "-",
            f"{r.speedup_vs_eager:.2f}" if r.speedup_vs_eager is not None else "-",
            f"{r.gbps:.1f}" if r.gbps is not None else "-",
            f"{100 * r.bandwidth_fraction:.0f}%" if r.bandwidth_fraction is not None else "-",
            "" if r.status == "ok" else r.status,
        ))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(cols))]
    for i, row in enumerate(table):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def save_json(rows: list[Row], meta: dict, path: str) -> None:
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        json.dump({"meta": meta, "rows": [r.to_dict() for r in rows]}, f, indent=1)


def save_chart(rows: list[Row], title: str, path: str) -> bool:
    """Grouped bars: speed-up over the eager reference per (name, shape) and provider. False
    (and no file) when no row has one to draw: every case skipped or failed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.status == "ok" and r.speedup_vs_eager is not None]
    groups = list(dict.fromkeys(f"{r.name}\n{r.shape}" for r in ok))
    provs = list(dict.fromkeys(r.provider for r in ok))
    if not groups:
        return False
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups)), 4))
    width = 0.8 / max(len(provs), 1)
    for j, p in enumerate(provs):
        vals = [next((r.speedup_vs_eager for r in ok
                      if f"{r.name}\n{r.shape}" == g and r.provider == p), 0) for g in groups]
        ax.bar([i + j * width for i in range(len(groups))], vals, width, label=p)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(provs) - 1) / 2 for i in range(len(groups))])
    ax.set_xticklabels(groups, fontsize=7)
    ax.set_ylabel("speed-up over eager reference")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return True
