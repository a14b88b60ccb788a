"""Topologies side by side, inside the same EfficientDet backbone and heads: measured rows (:mod:`.table`),
trained with one shared recipe (:mod:`.training`), as a text table (:mod:`.text`) and as scatter plots with the
Pareto front marked (:mod:`.plots`)."""

from effdet_graph.comparison.plots import pareto_front, scatter_plot
from effdet_graph.comparison.table import (
    NOISE_RULE,
    CompareRow,
    ap_spread,
    compare_specs,
    measure_latency_ms,
    rows_to_json,
)
from effdet_graph.comparison.text import format_table
from effdet_graph.comparison.training import CompareTraining, make_trainer

__all__ = [
    "compare_specs",
    "CompareRow",
    "rows_to_json",
    "measure_latency_ms",
    "ap_spread",
    "NOISE_RULE",
    "CompareTraining",
    "make_trainer",
    "format_table",
    "scatter_plot",
    "pareto_front",
]
