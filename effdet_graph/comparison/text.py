"""The comparison as a text table (``effdet-graph compare``, a search's retraining)."""

from __future__ import annotations

from effdet_graph.comparison.table import NOISE_RULE, CompareRow, ap_spread, within_noise
from effdet_graph.inference.evaluate import METRICS

__all__ = ["format_table"]


def _seed_columns(row: CompareRow, close: list[str]) -> str:
    """The ``AP sd``, ``AP min-max`` and ``within noise of`` cells of a row trained with several seeds."""
    spread = ap_spread(row)
    if spread is None:
        return f" {'':>6} {'':>11}  -"
    return f" {spread.std:>6.3f} {f'{spread.low:.3f}-{spread.high:.3f}':>11}  {', '.join(close) or '-'}"


def format_table(rows: list[CompareRow]) -> str:
    """The rows as a text table; with several training seeds, also each row's AP spread and the rows it is
    within noise of (:data:`~effdet_graph.comparison.table.NOISE_RULE`), explained below the table."""
    metric_names = [name for name in METRICS if any(name in row.metrics for row in rows)]
    seeds = max((len(row.seed_metrics) for row in rows), default=0)
    name = max([18, *(len(row.spec) for row in rows)])
    header = (
        f"{'spec':<{name}} {'width':>5} {'reps':>4} {'params':>11} {'GMACs':>7} {'FN params':>10} "
        f"{'FN GMACs':>8} {'latency ms':>10}" + "".join(f" {name:>6}" for name in metric_names)
    )
    if seeds > 1:
        header += f" {'AP sd':>6} {'AP min-max':>11}  within noise of"
    lines = [header, "-" * len(header)]
    noise = within_noise(rows)
    for row, close in zip(rows, noise):
        lines.append(
            f"{row.spec:<{name}} {row.width:>5} {row.repeats:>4} {row.params:>11,} {row.macs / 1e9:>7.2f} "
            f"{row.fpn_params:>10,} {row.fpn_macs / 1e9:>8.3f} {row.latency_ms:>10.1f}"
            + "".join(f" {row.metrics.get(name, float('nan')):>6.3f}" for name in metric_names)
            + (_seed_columns(row, [rows[j].spec for j in close]) if seeds > 1 else "")
        )
    device = rows[0].device if rows else "cpu"
    classes = rows[0].num_classes if rows else 0
    lines.append(
        f"\nsame backbone and heads ({classes} classes) for every row; FN = feature network; "
        f"latency: batch 1 on {device}"
    )
    if seeds > 1:
        lines.append(
            f"AP columns: mean over training seeds 0-{seeds - 1}; AP sd: sample standard deviation over the seeds; "
            f"within noise of: specs with {NOISE_RULE}"
        )
    return "\n".join(lines)
