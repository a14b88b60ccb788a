"""Scatter plots of topologies or trials (e.g. AP against GMACs), with the Pareto front marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from effdet_graph.atomic import atomic_output
from graphspec import InputError

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x, higher y), by increasing x."""
    order = sorted(range(len(xs)), key=lambda i: (xs[i], -ys[i]))
    front, best = [], float("-inf")
    for i in order:
        if ys[i] > best:
            front.append(i)
            best = ys[i]
    return front


def point_labels(xs: Sequence[float], ys: Sequence[float], labels: Sequence[str]) -> list[tuple[float, float, str]]:
    """One label per distinct point: the labels of points that coincide (topologies matched to the same
    parameters and MACs) joined into one, ``"fpn, panet"``, which would otherwise be drawn over each other."""
    joined: dict[tuple[float, float], list[str]] = {}
    for x, y, label in zip(xs, ys, labels):
        joined.setdefault((x, y), []).append(label)
    return [(x, y, ", ".join(names)) for (x, y), names in joined.items()]


def scatter_plot(
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    pareto: bool = False,
) -> None:
    """Write a labelled scatter plot to ``path`` (.png, .svg or .pdf), atomically."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(f"{path}: unsupported plot type; use one of {', '.join(PLOT_SUFFIXES)}")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(xs, ys, s=36, color="#4c72b0", zorder=3)
    for x, y, label in point_labels(xs, ys, labels):
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if pareto and len(xs) > 1:
        front = pareto_front(xs, ys)
        axes.plot(
            [xs[i] for i in front],
            [ys[i] for i in front],
            color="#c44e52",
            lw=1.5,
            zorder=2,
            marker="o",
            markersize=11,
            markerfacecolor="none",
            markeredgewidth=1.5,
            label="Pareto front",
        )
        axes.legend(frameon=False, fontsize=8)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lower().lstrip("."), dpi=150)
