"""The runs of the ranking benchmark in a JSON file that only grows, each with its recipe, version and machine."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ranking.recipes import Recipe
from benchmarks.ranking.topologies import Topology
from graphspec import InputError

SCHEMA = 1


def machine() -> dict[str, Any]:
    """What a benchmark's figures were measured on (a run's AP is reproducible on the same kind of CPU, with the
    same thread count)."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    """Write a benchmark's results file (indented JSON) atomically, and say where."""
    from effdet_graph.atomic import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from ``cpuinfo`` (Linux), else the platform's processor or architecture."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name") and ":" in line]
    return next((name for name in names if name), platform.processor() or platform.machine())


RunKey = tuple[str, str, int, str]  # topology name, spec hash, seed, recipe hash


def project_version() -> str:
    """The installed effdet-graph version."""
    return importlib.metadata.version("effdet-graph")


class RunStore:
    """Runs in a JSON file that only grows: :meth:`add` refuses a key already stored; :meth:`save` writes
    every run it read plus the new ones (atomically)."""

    def __init__(self, path: Path):
        """Read the runs stored at ``path`` (none when it does not exist).

        Raises:
            InputError: The file is not JSON, or not a store of runs (one line naming the file and, for JSON, the
                line and column).
        """
        self.path = path
        self.runs: list[dict[str, Any]] = []
        self._by_key: dict[RunKey, dict[str, Any]] = {}
        if not path.exists():
            return
        try:
            self.runs = list(json.loads(path.read_text(encoding="utf-8"))["runs"])
            self._by_key = {self.key_of(run): run for run in self.runs}
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); restore the file") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: not a store of ranking runs ({exc!r}); restore the file") from None

    @staticmethod
    def key_of(run: Mapping[str, Any]) -> RunKey:
        """The key of a stored run."""
        return (run["topology"], run["spec_hash"], int(run["seed"]), run["recipe_hash"])

    @staticmethod
    def key(topology: Topology, seed: int, recipe: Recipe) -> RunKey:
        """The key of a run to be made."""
        return (topology.name, topology.spec_hash, seed, recipe.hash)

    def has(self, key: RunKey) -> bool:
        """Whether the run is stored."""
        return key in self._by_key

    def get(self, key: RunKey) -> Mapping[str, Any] | None:
        """The stored run with ``key`` (:meth:`key`), or ``None``."""
        return self._by_key.get(key)

    def add(self, topology: Topology, seed: int, recipe: Recipe, metrics: Mapping[str, float], seconds: float) -> None:
        """Store one run.

        Raises:
            KeyError: The run is already stored.
        """
        key = self.key(topology, seed, recipe)
        if key in self._by_key:
            raise KeyError(f"run already stored: {key}")
        run = {
            "topology": topology.name,
            "spec_hash": topology.spec_hash,
            "seed": seed,
            "recipe_hash": recipe.hash,
            "recipe": recipe.as_json(),
            "version": project_version(),
            "machine": machine(),
            "source": topology.source,
            "seconds": round(seconds, 1),
            "metrics": {name: float(value) for name, value in metrics.items()},
        }
        self._by_key[key] = run
        self.runs.append(run)

    def save(self) -> None:
        """Write the file."""
        from effdet_graph.atomic import atomic_output

        with atomic_output(self.path) as tmp:
            tmp.write_text(json.dumps({"schema": SCHEMA, "runs": self.runs}, indent=1) + "\n", encoding="utf-8")

    def complete(
        self, recipe: Recipe, topologies: Sequence[Topology], seeds: Sequence[int]
    ) -> dict[str, dict[int, float]]:
        """:meth:`ap_table` of the topologies that have a run with every one of ``seeds``."""
        table = self.ap_table(recipe, topologies)
        return {name: runs for name, runs in table.items() if all(s in runs for s in seeds)}

    def mean_seconds(self, recipe: Recipe, topologies: Sequence[Topology]) -> float:
        """The mean recorded seconds of this recipe's runs of these topologies."""
        keys = {(t.name, t.spec_hash) for t in topologies}
        seconds = [
            r["seconds"]
            for r in self.runs
            if r["recipe_hash"] == recipe.hash and (r["topology"], r["spec_hash"]) in keys
        ]
        return float(np.mean(seconds)) if seconds else float("nan")

    def ap_table(
        self, recipe: Recipe, topologies: Sequence[Topology], metric: str = "AP"
    ) -> dict[str, dict[int, float]]:
        """topology name -> seed -> ``metric`` of this recipe's runs of exactly these spec texts (runs stored
        without ``metric`` left out)."""
        wanted = {(t.name, t.spec_hash) for t in topologies}
        table: dict[str, dict[int, float]] = {}
        for run in self.runs:
            if (
                run["recipe_hash"] == recipe.hash
                and (run["topology"], run["spec_hash"]) in wanted
                and metric in run["metrics"]
            ):
                table.setdefault(run["topology"], {})[int(run["seed"])] = run["metrics"][metric]
        return table


def checkpoint_path(work: Path, key: RunKey) -> Path:
    """Where :func:`train_and_evaluate` leaves the checkpoint of the run with ``key`` (:meth:`RunStore.key`)."""
    from effdet_graph.training import CHECKPOINT_NAME

    topology, spec_hash, seed, recipe_hash = key
    return work / "runs" / recipe_hash / f"{topology}-{spec_hash}-seed{seed}" / CHECKPOINT_NAME
