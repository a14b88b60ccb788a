"""The ranking-fidelity harness behind ``benchmarks/bench_ranking.py``, one idea a module: the training
recipes (:mod:`ranking.recipes`), the ground-truth set of topologies (:mod:`ranking.topologies`), the store of runs
that only grows (:mod:`ranking.store`), making runs (:mod:`ranking.runs`), rank agreement (:mod:`ranking.correlation`),
the ranking methods (:mod:`ranking.methods`) and their scores (:mod:`ranking.scoring`), and the report
(:mod:`ranking.reports`)."""

from __future__ import annotations

from pathlib import Path

#: The project's root (the clone).
ROOT = Path(__file__).resolve().parents[2]
#: Where the benchmarks' results are stored.
RESULTS_DIR = ROOT / "benchmarks" / "results"
