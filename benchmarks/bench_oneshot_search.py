"""The one-shot search end to end on the ranking benchmark's space, and its winners retrained stand-alone.

    python -m benchmarks.bench_oneshot_search [--trials 300] [--retrain 3] [--retrain-seeds 2]

Runs ``effdet-graph search specs/search/bifpn_edges_bench.yaml --strategy oneshot --trials N --retrain K`` (Optuna,
NSGA-II for AP against MACs; the supernet and its candidates on the surround recipe's data, detector and
training) into ``runs/ranking/oneshot-search/``, then writes ``benchmarks/results/oneshot_search.json``: the
machine; the seconds of the supernet's training (with the data set and the study's setup) and of the trials; the
trials' count and the Pareto front; the retraining table (the template, BiFPN, and the K best trials no larger
than it, each with seeds 0 to N-1 and the surround recipe's training); and the issue's targets measured:
the search's compute in stand-alone trainings (against the surround recipe's mean run seconds) and the best retrained
trial's mean AP against BiFPN's. A killed run continues where it stopped (the study, the supernet and every
training resume); a finished one is read back, not run again.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import bench_ranking as br
from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.runs import log_rows, training_seconds
from benchmarks.ranking.store import RunStore, machine
from benchmarks.ranking.topologies import ground_truth_set, shown

RESULTS = RESULTS_DIR / "oneshot_search.json"
SPACE = ROOT / "specs" / "search" / "bifpn_edges_bench.yaml"
OUT = ROOT / "runs" / "ranking" / "oneshot-search"


def measure(trials: int, retrain: int, retrain_seeds: int, out: Path) -> dict[str, Any]:
    """Run (or resume) the search and its retraining; the results as JSON data."""
    from effdet_graph.comparison import ap_spread, rows_to_json
    from search.objective import OBJECTIVES
    from search.reporting import RETRAIN_DIR, best_records
    from search.request import SearchRequest
    from search.run import run_search
    from search.space import load_search_space
    from search.strategies.oneshot import SUPERNET_DIR

    outcome = run_search(
        SearchRequest(
            SPACE,
            strategy="oneshot",
            trials=trials,
            results_dir=out,
            progress=False,
            retrain=retrain,
            retrain_seeds=retrain_seeds,
        )
    )
    complete = [r for r in outcome.records if r.state == "complete"]
    batch_size = load_search_space(SPACE).proxy.batch_size
    supernet_seconds = training_seconds(log_rows(out / SUPERNET_DIR), batch_size)
    trial_seconds = sum(r.wall_s or 0.0 for r in complete)
    front = sorted(best_records(outcome.records, OBJECTIVES["ap_macs"]), key=lambda r: r.macs or 0)
    spreads = {row.spec: ap_spread(row) for row in outcome.retrained}
    template = outcome.retrained[0].spec
    template_spread = spreads[template]
    trained = {name: s.mean for name, s in spreads.items() if s is not None and name != template}
    best = max(trained, key=lambda name: trained[name]) if trained else None
    run_seconds = RunStore(br.RESULTS).mean_seconds(br.RECIPES["surround"], ground_truth_set())
    retrain_runs = sorted(p for p in (out / RETRAIN_DIR).iterdir() if (p / "log.csv").exists())
    return {
        "machine": machine(),
        "space": shown(SPACE),
        "results_dir": shown(out),
        "trials": len(complete),
        "supernet_train_seconds": round(supernet_seconds, 1),
        "trial_seconds": round(trial_seconds, 1),
        "mean_trial_seconds": round(trial_seconds / max(len(complete), 1), 2),
        "pareto_front": [
            {"trial": r.number, "macs": r.macs, "params": r.params, "inherited_ap": round(r.metrics["AP"], 4)}
            for r in front
        ],
        "retrain": {
            "seeds": retrain_seeds,
            "train_seconds": round(sum(training_seconds(log_rows(p), batch_size) for p in retrain_runs), 1),
            "rows": rows_to_json(outcome.retrained),
        },
        "targets": {
            "ground_truth_run_seconds": round(run_seconds, 1),
            "search_in_trainings": round((supernet_seconds + trial_seconds) / run_seconds, 2),
            "template": template,
            "template_mean_ap": round(template_spread.mean, 4) if template_spread else None,
            "best_trial": best,
            "best_trial_mean_ap": round(trained[best], 4) if best else None,
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_oneshot_search", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--retrain", type=int, default=3, metavar="K")
    parser.add_argument("--retrain-seeds", type=int, default=2, metavar="N")
    parser.add_argument("--out", type=Path, default=OUT, help="the search's results folder")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = measure(args.trials, args.retrain, args.retrain_seeds, args.out)
    args.results.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    targets = result["targets"]
    print(
        f"{result['trials']} trials; supernet {result['supernet_train_seconds']:.0f} s, trials "
        f"{result['trial_seconds']:.0f} s ({targets['search_in_trainings']:.2f} surround-recipe trainings); "
        f"retrained best {targets['best_trial']} {targets['best_trial_mean_ap']} against "
        f"{targets['template']} {targets['template_mean_ap']}"
    )
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
