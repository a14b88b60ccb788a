"""The ranking-fidelity harness behind ``benchmarks.bench_ranking``, one idea a module: the training recipes
(:mod:`benchmarks.ranking.recipes`), the ground-truth set of topologies (:mod:`benchmarks.ranking.topologies`), the
store of runs that only grows (:mod:`benchmarks.ranking.store`), making runs (:mod:`benchmarks.ranking.runs`), rank
agreement (:mod:`benchmarks.ranking.correlation`), the ranking methods (:mod:`benchmarks.ranking.methods`) and their
scores (:mod:`benchmarks.ranking.scoring`), and the report (:mod:`benchmarks.ranking.reports`)."""

from __future__ import annotations

from pathlib import Path

#: The project's root (the clone).
ROOT = Path(__file__).resolve().parents[2]
#: Where the benchmarks' results are stored.
RESULTS_DIR = ROOT / "benchmarks" / "results"
