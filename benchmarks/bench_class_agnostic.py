"""Boxes or classes: how much of each stored ranking run's AP, and of its seed-to-seed spread, comes from finding
and placing boxes rather than from naming their class.

    python -m benchmarks.bench_class_agnostic [--recipe no-jitter] [--work runs/ranking]

For every run of the recipe stored in ``benchmarks/results/ranking.json`` (the built-in topologies and the control
first), the class-agnostic AP of its checkpoint (``effdet-graph eval --class-agnostic``: the same detections with
the classes ignored) is measured next to its AP; runs made since ``benchmarks.bench_ranking`` stores it carry it
already. A run whose checkpoint is gone (``--work`` is where ``benchmarks.bench_ranking`` left it) is skipped; a run
measured once is kept in ``benchmarks/results/class_agnostic.json`` (keyed as in ``ranking.json``) and not measured
again. Per topology the report gives both means and both seed standard deviations; when AP follows class-agnostic
AP run by run, the spread is in the boxes, not the classes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import bench_ranking as br
from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.runs import prepare_data
from benchmarks.ranking.store import RunStore, checkpoint_path, machine
from benchmarks.ranking.topologies import BUILTIN_SET

RESULTS = RESULTS_DIR / "class_agnostic.json"


def run_key(run: dict[str, Any]) -> str:
    """A stored run's key as one string (its ``ranking.json`` key)."""
    return "/".join(str(part) for part in RunStore.key_of(run))


def measure(checkpoint: Path, data: Path) -> dict[str, float]:
    """``AP`` and ``AP_agnostic`` of ``checkpoint`` on ``data``'s val split."""
    import effdet_graph as eg

    metrics = eg.evaluate_checkpoint(checkpoint, data, "val", class_agnostic=True)
    return {"AP": float(metrics["AP"]), "AP_agnostic": float(metrics["AP_agnostic"])}


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per topology (in the order of ``rows``): its seeds, mean and seed sd of AP and of class-agnostic AP."""
    by_topology: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_topology.setdefault(row["topology"], []).append(row)
    summary = []
    for name, runs in by_topology.items():
        ap = [r["AP"] for r in runs]
        agnostic = [r["AP_agnostic"] for r in runs]
        spread = len(runs) > 1
        summary.append(
            {
                "topology": name,
                "seeds": [r["seed"] for r in runs],
                "AP": [round(a, 4) for a in ap],
                "AP_agnostic": [round(a, 4) for a in agnostic],
                "mean_AP": round(float(np.mean(ap)), 4),
                "mean_AP_agnostic": round(float(np.mean(agnostic)), 4),
                "sd_AP": round(float(np.std(ap, ddof=1)), 4) if spread else None,
                "sd_AP_agnostic": round(float(np.std(agnostic, ddof=1)), 4) if spread else None,
            }
        )
    return summary


def overall_figures(rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean seed sd of AP and of class-agnostic AP over the topologies with several seeds (``None`` without
    any), and the median and lowest AP / class-agnostic AP over the runs that found any box (class-agnostic AP
    above 0.05): near 1, every box found is also named right."""
    spread = [row for row in summary if row["sd_AP"] is not None]
    ratios = [row["AP"] / row["AP_agnostic"] for row in rows if row["AP_agnostic"] > 0.05]

    def mean_of(key: str) -> float | None:
        return round(float(np.mean([row[key] for row in spread])), 4) if spread else None

    return {
        "runs": len(rows),
        "mean_sd_AP": mean_of("sd_AP"),
        "mean_sd_AP_agnostic": mean_of("sd_AP_agnostic"),
        "median_ratio": round(float(np.median(ratios)), 4) if ratios else None,
        "lowest_ratio": round(float(np.min(ratios)), 4) if ratios else None,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_class_agnostic", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--recipe", choices=sorted(br.RECIPES), default="no-jitter")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ranking", help="as benchmarks.bench_ranking's")
    args = parser.parse_args(argv)

    recipe = br.RECIPES[args.recipe]
    stored = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {"runs": {}}
    measured: dict[str, dict[str, Any]] = stored["runs"]
    runs = [r for r in RunStore(br.RESULTS).runs if r["recipe_hash"] == recipe.hash]
    runs.sort(key=lambda r: (r["topology"] not in BUILTIN_SET, r["topology"], r["seed"]))
    data: Path | None = None  # made (or found) only when a run needs measuring
    rows = []
    for run in runs:
        key = run_key(run)
        if key not in measured and "AP_agnostic" in run["metrics"]:  # measured when it was made
            measured[key] = {name: run["metrics"][name] for name in ("AP", "AP_agnostic")}
        if key not in measured:
            checkpoint = checkpoint_path(args.work, RunStore.key_of(run))
            if not checkpoint.exists():
                continue
            data = data or prepare_data(recipe, args.work)
            measured[key] = measure(checkpoint, data)
            print(
                f"  {run['topology']} seed {run['seed']}: AP {measured[key]['AP']:.4f}, class-agnostic "
                f"{measured[key]['AP_agnostic']:.4f}",
                flush=True,
            )
        rows.append({"topology": run["topology"], "seed": run["seed"], **measured[key]})

    summary = sorted(summarise(rows), key=lambda row: -row["mean_AP"])
    overall = overall_figures(rows, summary)
    print(f"recipe {recipe.name} ({recipe.hash}): {len(rows)} runs")
    print(f"{'topology':<28}{'mean AP':>9}{'sd':>8}{'agnostic':>10}{'sd':>8}")
    for row in summary:
        sds = [f"{row[k]:>8.3f}" if row[k] is not None else f"{'-':>8}" for k in ("sd_AP", "sd_AP_agnostic")]
        print(f"{row['topology']:<28}{row['mean_AP']:>9.3f}{sds[0]}{row['mean_AP_agnostic']:>10.3f}{sds[1]}")
    shown = {key: "-" if value is None else f"{value:.3f}" for key, value in overall.items()}
    print(
        f"mean seed sd: AP {shown['mean_sd_AP']}, class-agnostic AP {shown['mean_sd_AP_agnostic']}; "
        f"AP / class-agnostic AP over the runs: median {shown['median_ratio']}, lowest {shown['lowest_ratio']}"
    )
    from effdet_graph.atomic import atomic_output

    with atomic_output(RESULTS) as tmp:
        report = {"machine": machine(), "runs": measured, "reports": stored.get("reports", {})}
        report["reports"][recipe.name] = {"recipe_hash": recipe.hash, **overall, "topologies": summary}
        tmp.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
