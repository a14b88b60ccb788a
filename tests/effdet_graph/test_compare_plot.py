"""The scatter plot of ``compare --plot`` and a search's Pareto plot: one readable label per distinct point."""

from __future__ import annotations

from effdet_graph.comparison.plots import point_labels, scatter_plot


def test_points_that_coincide_share_one_label():
    """After ``compare --match-params bifpn`` FPN and PANet have the same parameters and MACs: one point, one
    label naming both, instead of two labels drawn over each other."""
    xs, ys = [1.5, 1.5, 2.0, 1.5], [0.3, 0.3, 0.3, 0.4]
    labels = ["fpn", "panet", "bifpn", "qufpn"]
    assert point_labels(xs, ys, labels) == [(1.5, 0.3, "fpn, panet"), (2.0, 0.3, "bifpn"), (1.5, 0.4, "qufpn")]


def test_a_plot_of_coinciding_points_is_written(tmp_path):
    path = tmp_path / "plot.png"
    scatter_plot([1.0, 1.0, 2.0], [0.5, 0.5, 0.6], ["a", "b", "c"], path, xlabel="x", ylabel="y", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
