"""The evaluation's figures as PNG files (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MAX_COLOURS = 12  # labels beyond the most common ones are drawn as "other"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from musicrec.store import storage

    storage.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    _pyplot().close(fig)
    return path


def explained_variance(groups: dict[str, list[float]], path: Path) -> Path:
    """Each feature group's PCA: the cumulative share of the group's variance its components keep."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, ratios in groups.items():
        x = np.arange(1, len(ratios) + 1)
        ax.plot(x, np.cumsum(ratios), marker=".", label=f"{name} ({len(ratios)} components)")
    ax.set(xlabel="principal component", ylabel="cumulative share of variance", ylim=(0, 1))
    ax.set(title="PCA explained variance, by feature group")
    ax.legend(loc="lower right")
    return _save(fig, path)


def library_map(coords: np.ndarray, labels: pd.Series, title: str, path: Path) -> Path:
    """The tracks on the embedding's first two components, coloured by label."""
    plt = _pyplot()
    labels = labels.fillna("(none)")
    common = labels.value_counts().index[: MAX_COLOURS - 1]
    shown = labels.where(labels.isin(common), "other")
    fig, ax = plt.subplots(figsize=(7, 5.5))
    colours = plt.get_cmap("tab20")
    for i, (name, rows) in enumerate(shown.groupby(shown).groups.items()):
        where = labels.index.get_indexer(rows)
        ax.scatter(coords[where, 0], coords[where, 1], s=14, color=colours(i % 20), label=str(name)[:30])
    ax.set(xlabel="pc_01", ylabel="pc_02", title=title)
    ax.legend(fontsize=7, loc="best", markerscale=1.5)
    return _save(fig, path)


def k_occurrence(occurrence: dict[str, list[int]], k: int, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max(max(v) for v in occurrence.values()) + 1
    bins = np.arange(0, top + 1) - 0.5
    for method, values in occurrence.items():
        ax.hist(values, bins=bins, alpha=0.55, label=method)
    ax.set(xlabel=f"times a track is in someone's top {k}", ylabel="tracks", title="k-occurrence (hubness)")
    ax.legend()
    return _save(fig, path)
