"""What a search leaves in `--out`: front.json, summary.json, run_config.json and pareto.png (atomic writes)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.files import atomic_path, atomic_write_json

from nas.front import FrontEntry

FRONT_FILE = "front.json"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "run_config.json"
PLOT_FILE = "pareto.png"


def write_json(out: str | os.PathLike[str], name: str, obj: Any) -> Path:
    path = Path(out) / name
    atomic_write_json(path, obj)
    return path


def plot_front(path: str | os.PathLike[str], all_values: np.ndarray, feasible: np.ndarray, front_values: np.ndarray,
               objectives: Sequence[str], title: str, budgets: dict[str, float | None]) -> Path:
    """Accuracy against latency (or the second objective), all trials faint, the front highlighted; size (when
    an objective) as the front's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"accuracy": "top-1 accuracy (%)", "latency": "latency (ms)", "size": "size (MB)"}
    obj = list(objectives)
    xi = obj.index("latency") if "latency" in obj else (obj.index("size") if "size" in obj else 1)
    yi = obj.index("accuracy") if "accuracy" in obj else 0
    ci = obj.index("size") if "size" in obj and obj[xi] != "size" else None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    v = np.asarray(all_values, dtype=float).reshape(-1, len(obj))
    fe = np.asarray(feasible, dtype=bool)
    if len(v):
        ax.scatter(v[~fe, xi], v[~fe, yi], s=4, c="#d0d0d0", label="infeasible", rasterized=True)
        ax.scatter(v[fe, xi], v[fe, yi], s=4, c="#8fb3d9", label="feasible", rasterized=True)
    f = np.asarray(front_values, dtype=float).reshape(-1, len(obj))
    if len(f):
        order = np.argsort(f[:, xi])
        colour = {"c": f[order, ci], "cmap": "viridis"} if ci is not None else {"c": "#c0392b"}
        sc = ax.scatter(f[order, xi], f[order, yi], s=18, edgecolors="k", linewidths=0.3, label="Pareto front",
                        zorder=3, **colour)
        if ci is not None:
            fig.colorbar(sc, ax=ax, label=labels[obj[ci]])
    budget_key = {"latency": "latency_ms", "size": "size_mb"}.get(obj[xi])
    if budget_key and budgets.get(budget_key) is not None:
        ax.axvline(float(budgets[budget_key]), color="k", ls="--", lw=0.8, label=f"{budget_key} budget")
    if budgets.get("min_accuracy") is not None and obj[yi] == "accuracy":
        ax.axhline(float(budgets["min_accuracy"]), color="k", ls=":", lw=0.8, label="min accuracy")
    ax.set_xlabel(labels[obj[xi]])
    ax.set_ylabel(labels[obj[yi]])
    ax.set_title(title, fontsize=9)
    if ax.get_legend_handles_labels()[0]:  # nothing labelled when no trial was evaluated yet
        ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def front_json(entries: Sequence[FrontEntry], meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "entries": [e.to_dict() for e in entries]}
