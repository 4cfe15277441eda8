"""The embedding ablation (``ablation.png`` and its table): model x embedding heat-map of
the primary metric, mean over seeds, when the run compared two or more embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.report.context import ReportContext
from bench.report.style import Plot, new_figure

__all__ = ["ablation_figure"]


def ablation_figure(ctx: ReportContext) -> tuple[Plot, str] | None:
    """Heat-map and Markdown table of ``PRIMARY`` per (model, embedding): models whose key
    names an embedding (``RunKey.embedding``), averaged over seeds. ``data``: one row per
    cell: model, embedding, value (mean over seeds), spread (sd), n_seeds."""
    primary = stats.METRIC_TABLE[0]
    cells: dict[tuple[str, str], list[float]] = {}
    for m in ctx.ok:
        if m.key.embedding is not None:
            cells.setdefault((m.key.model, m.key.embedding), []).append(
                m.metrics[primary.name]["estimate"]
            )
    embs = list(dict.fromkeys(e for _, e in cells))
    bases = list(dict.fromkeys(b for b, _ in cells))
    if len(embs) < 2:
        return None
    grid = np.full((len(bases), len(embs)), np.nan)
    spread = np.zeros_like(grid)
    nseed = np.zeros(grid.shape, dtype=int)
    for (b, e), v in cells.items():
        i, j = bases.index(b), embs.index(e)
        grid[i, j] = float(np.mean(v))
        spread[i, j] = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
        nseed[i, j] = len(v)
    fig = new_figure(1.8 + 1.5 * len(embs), 1.4 + 0.7 * len(bases))
    ax = fig.subplots()
    im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    for i in range(len(bases)):
        for j in range(len(embs)):
            if not np.isfinite(grid[i, j]):
                ax.text(j, i, "–", ha="center", va="center", color="0.4")
                continue
            txt = f"{grid[i, j]:.3f}"
            if nseed[i, j] > 1:
                txt += f"\n± {spread[i, j]:.3f} ({nseed[i, j]} seeds)"
            dark = hi > lo and (grid[i, j] - lo) / (hi - lo) > 0.5
            ax.text(
                j, i, txt, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    ax.set_xticks(
        range(len(embs)),
        embs,
        rotation=30 if max(map(len, embs)) > 8 else 0,
        ha="right" if max(map(len, embs)) > 8 else "center",
    )
    ax.set_yticks(range(len(bases)), bases)
    ax.set_xlabel("embedding")
    ax.set_ylabel("model")
    ax.set_title(f"Embedding ablation: test {primary.label} (lower is better)")
    fig.colorbar(im, ax=ax, label=f"{primary.label} ({ctx.unit})")
    body = [
        [
            b,
            *[
                "–" if not np.isfinite(grid[i, j]) else f"{grid[i, j]:.4f}"
                for j in range(len(embs))
            ],
        ]
        for i, b in enumerate(bases)
    ]
    table = tabulate(body, headers=["model", *embs], tablefmt="github", disable_numparse=True)
    data = pd.DataFrame(
        [
            {
                "model": b,
                "embedding": e,
                "value": grid[i, j],
                "spread": spread[i, j],
                "n_seeds": int(nseed[i, j]),
            }
            for i, b in enumerate(bases)
            for j, e in enumerate(embs)
        ]
    )
    return Plot(fig, data), table
