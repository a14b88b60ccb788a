"""The Quick start's main job, measured: its wall time, its leaderboard, and how far one trial's AP moves with the
seed of its training, so that the README can say whether the leaderboard's order is within noise.

    python -m benchmarks.bench_quickstart [--seeds 5]

Runs the README's main job (``search/topology.py --space bifpn_edges --trials 6 --objective ap_macs``: a local
Ray, two trials side by side with one thread each) into a fresh temporary results folder, timed from the command's
start to its end, and keeps the leaderboard it prints. Then trains the best trial's spec again through the space's
own proxy training (:func:`search.strategies.proxy.proxy_options`: the same data set, steps, pretrained frozen
backbone and feature cache) with ``--seeds`` seeds, 0 being the search's own, two at a time with one thread each as
in the search. Two single runs of one candidate differ by more than 1.96·√2·sd about one time in 20 (normal, with the sd
estimated from the seeds): the noise band that the leaderboard's gaps are set against.

Writes ``benchmarks/results/quickstart.json`` with the machine it was measured on.
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.store import machine, write_results

RESULTS = RESULTS_DIR / "quickstart.json"
SPACE = "bifpn_edges"
COMMAND = ["search/topology.py", "--space", SPACE, "--trials", "6", "--objective", "ap_macs"]
TARGET_AP = 0.08
#: Trainings side by side, one thread each: the search's two Ray workers on a 2-core machine.
WORKERS = 2
#: Two-sided 95% normal quantile.
Z95 = 1.96


def run_main_job(out: Path) -> tuple[float, list[str]]:
    """Run the Quick start's command into ``out``; its wall seconds and the lines of the leaderboard it printed."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *COMMAND, "--out", str(out)], cwd=ROOT, check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("trial state"))
    last = next(i for i, line in enumerate(lines) if line.startswith("best: "))
    return seconds, [line.rstrip() for line in lines[first:last] if line.strip()]


def read_leaderboard(out: Path) -> list[dict[str, str]]:
    """The search's ``leaderboard.csv`` rows."""
    with open(out / "leaderboard.csv", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def train_seed(data: Path, spec: Path, out: Path, seed: int) -> tuple[float, float]:
    """Train ``spec`` as a trial of the space does, with ``seed``; its AP on val and the seconds it took."""
    import torch

    from effdet_graph.training import train_and_evaluate
    from search.space import builtin_space, load_search_space, topology_choices
    from search.strategies import proxy_options

    torch.set_num_threads(1)
    space = load_search_space(builtin_space(SPACE))
    options = proxy_options(space, topology_choices(space).detector, data, spec, out, space.proxy.steps, seed, "cpu")
    start = time.perf_counter()
    metrics = train_and_evaluate(options, progress=False).metrics
    return metrics["AP"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="trainings of the best trial (default 5: seeds 0-4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / SPACE
        wall_s, printed = run_main_job(out)
        print("\n".join(printed))
        rows = read_leaderboard(out)
        complete = sorted((r for r in rows if r["state"] == "complete"), key=lambda r: -float(r["AP"]))
        best = complete[0]
        spec = Path(best["spec_file"])
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
            runs = [pool.submit(train_seed, out / "data", spec, Path(tmp) / f"seed{s}", s) for s in range(args.seeds)]
            trained = [run.result() for run in runs]
    aps = [ap for ap, _ in trained]
    sd = statistics.stdev(aps)
    band = Z95 * math.sqrt(2) * sd
    leaderboard_aps = [float(r["AP"]) for r in complete]
    gap = leaderboard_aps[0] - leaderboard_aps[1]
    results = {
        "machine": machine(),
        "command": " ".join(COMMAND),
        "wall_s": round(wall_s, 1),
        "printed": printed,
        "leaderboard": [{"trial": int(r["trial"]), "AP": float(r["AP"])} for r in complete],
        "rejected": sum(r["state"] == "rejected" for r in rows),
        "best": {"trial": int(best["trial"]), "AP": float(best["AP"]), "target": TARGET_AP},
        "spread": leaderboard_aps[0] - leaderboard_aps[-1],
        "gap_first_second": gap,
        "seeds": {
            "aps": aps,
            "seconds": [round(s, 1) for _, s in trained],
            "mean": statistics.fmean(aps),
            "sd": sd,
            "noise_band": band,
            "seed0_equals_search": aps[0] == float(best["AP"]),
        },
        "first_within_noise_of_second": gap <= band,
    }
    print(
        f"best trial {best['trial']}: AP {float(best['AP']):.3f} (target {TARGET_AP}); leaderboard spread "
        f"{results['spread']:.3f}, first-second gap {gap:.3f}; {args.seeds} seeds of the best: sd {sd:.3f}, "
        f"noise band of a difference {band:.3f}; wall {wall_s:.0f} s"
    )
    write_results(RESULTS, results)


if __name__ == "__main__":
    main()
