"""One results folder per search: a leaderboard (table and CSV), the best spec(s), a Pareto plot.

Engines turn their trials into :class:`TrialRecord` s; everything here is engine-independent.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from effdet_graph.atomic import atomic_output
from effdet_graph.comparison import pareto_front, scatter_plot
from search.objective import Objective

LEADERBOARD = "leaderboard.csv"
BEST = "best"
PARETO = "pareto.png"
RESULT_FILES = (LEADERBOARD, f"{BEST}/", PARETO, "trials/")
"""What a results folder may hold (folders with a ``/``); ``summary`` names those that exist."""
#: What a trial's AP is, by search strategy (the Pareto plot's axis).
MEASURED_BY = {"proxy": "proxy task", "oneshot": "inherited weights"}


@dataclass
class TrialRecord:
    """What the leaderboard shows of one trial.

    Attributes:
        number: the trial's number, counted from 0 (it names ``trials/<nnnn>/`` and the spec file).
        state: ``complete``, ``pruned`` (stopped early), ``rejected`` (invalid or over budget: not trained),
            ``failed`` (raised, NaN, killed) or ``running``.
        spec_file: the candidate's spec, if one was made.
        params: the parameters counted for the budget (the whole detector's where the budget is on it).
        macs: the MACs counted likewise.
        metrics: what the evaluate returned (:data:`search.objective.EVALUATE_METRICS`).
        wall_s: the trial's seconds, sampling to metrics.
        error: one line: why it failed, was rejected or pruned.
    """

    number: int
    state: str
    spec_file: str | None = None
    params: int | None = None
    macs: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float | None = None
    error: str | None = None


def ranked(records: Sequence[TrialRecord], objective: Objective) -> list[TrialRecord]:
    """Complete trials first, best first on the objective's first metric; then the others by number."""
    key = objective.metrics[0]
    sign = -1.0 if objective.directions[0] == "maximize" else 1.0
    done = sorted(
        (r for r in records if r.state == "complete" and key in _values(r)),
        key=lambda r: (sign * _values(r)[key], r.number),
    )
    rest = sorted((r for r in records if r not in done), key=lambda r: r.number)
    return done + rest


def best_records(records: Sequence[TrialRecord], objective: Objective) -> list[TrialRecord]:
    """The best trial (single objective) or the Pareto-optimal trials (AP against cost)."""
    done = [r for r in ranked(records, objective) if r.state == "complete"]
    if not objective.multi or not done:
        return done[:1]
    xs = [_values(r)[objective.metrics[1]] for r in done]
    ys = [_values(r)[objective.metrics[0]] for r in done]
    return [done[i] for i in pareto_front(xs, ys)]


def _values(record: TrialRecord) -> dict[str, float]:
    values = dict(record.metrics)
    if record.macs is not None:
        values["macs"] = float(record.macs)
    return values


def leaderboard_table(records: Sequence[TrialRecord], objective: Objective, limit: int | None = None) -> str:
    header = f"{'trial':>5} {'state':<9} {'params':>11} {'GMACs':>8} {'AP':>6} {'AP50':>6} {'wall s':>7}  spec / note"
    lines = [header, "-" * len(header)]
    for r in ranked(records, objective)[:limit]:
        ap, ap50 = r.metrics.get("AP"), r.metrics.get("AP50")
        lines.append(
            f"{r.number:>5} {r.state:<9} {_fmt(r.params, ',')} {_fmt(r.macs and r.macs / 1e9, '.3f', 8)} "
            f"{_fmt(ap, '.3f', 6)} {_fmt(ap50, '.3f', 6)} {_fmt(r.wall_s, '.1f', 7)}  "
            f"{r.error or (Path(r.spec_file).name if r.spec_file else '')}"
        )
    return "\n".join(lines)


def _fmt(value: float | int | None, spec: str, width: int = 11) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def write_results(
    records: Sequence[TrialRecord], objective: Objective, results_dir: Path, strategy: str = "proxy"
) -> list[Path]:
    """Write ``leaderboard.csv``, and ``best/<spec>.yaml`` and ``pareto.png`` where a trial completed, into
    ``results_dir`` (a ``best/`` or ``pareto.png`` left by an earlier call is removed where none is written now);
    return the best spec files. The plot says what the ``strategy``'s AP is (:data:`MEASURED_BY`)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    metric_names = sorted({name for r in records for name in r.metrics})
    with atomic_output(results_dir / LEADERBOARD) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "state", "spec_file", "params", "macs", *metric_names, "wall_s", "error"])
        for r in ranked(records, objective):
            writer.writerow(
                [
                    r.number,
                    r.state,
                    r.spec_file or "",
                    r.params or "",
                    r.macs or "",
                    *[r.metrics.get(name, "") for name in metric_names],
                    r.wall_s or "",
                    r.error or "",
                ]
            )
    best_dir = results_dir / BEST
    shutil.rmtree(best_dir, ignore_errors=True)
    best = []
    for record in best_records(records, objective):
        if record.spec_file and Path(record.spec_file).is_file():
            best_dir.mkdir(exist_ok=True)
            target = best_dir / Path(record.spec_file).name
            shutil.copyfile(record.spec_file, target)
            best.append(target)
    (results_dir / PARETO).unlink(missing_ok=True)
    done = [r for r in records if r.state == "complete" and "AP" in r.metrics and r.macs is not None]
    if done:
        scatter_plot(
            [(r.macs or 0) / 1e9 for r in done],
            [r.metrics["AP"] for r in done],
            [str(r.number) for r in done],
            results_dir / PARETO,
            xlabel="GMACs",
            ylabel=f"COCO AP ({MEASURED_BY[strategy]})",
            title=f"{results_dir.name}: AP against GMACs",
            pareto=True,
        )
    return best
