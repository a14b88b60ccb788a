"""Making the runs of the ranking benchmark: train and evaluate each (topology, seed) a store lacks, one torch
thread a process, resuming killed runs; and making a stored run again to check that it reproduces."""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from benchmarks.ranking import RESULTS_DIR
from benchmarks.ranking.recipes import Recipe
from benchmarks.ranking.store import SCHEMA, RunStore, checkpoint_path, machine, project_version
from benchmarks.ranking.topologies import CONTROL_SPEC, Topology, write_specs

VERIFY_RESULTS = RESULTS_DIR / "verify.json"


#: Trains and evaluates one (topology, seed) under a recipe: (topology, spec path, seed, recipe, data, work
#: folder) -> metrics (at least ``AP``).
RunFn = Callable[[Topology, Path, int, Recipe, Path, Path], Mapping[str, float]]


def train_and_evaluate(
    topology: Topology, spec: Path, seed: int, recipe: Recipe, data: Path, work: Path
) -> dict[str, float]:
    """One real run: :func:`effdet_graph.train` (resuming a killed one), then
    :func:`effdet_graph.evaluate_checkpoint` on val (with the class-agnostic AP, which
    ``benchmarks.bench_class_agnostic`` reports)."""
    import effdet_graph as eg

    checkpoint = checkpoint_path(work, RunStore.key(topology, seed, recipe))
    resume = checkpoint if checkpoint.exists() else None  # a killed run resumes where its last epoch ended, exactly
    options = eg.TrainOptions(data=data, spec=spec, out=checkpoint.parent, resume=resume, **recipe.options(seed))
    result = eg.train(options, progress=False)
    return dict(eg.evaluate_checkpoint(result.checkpoint, data, "val", class_agnostic=True))


def log_rows(run: Path) -> list[dict[str, str]]:
    """The rows of a training run's ``log.csv`` (none when it has no log)."""
    path = run / "log.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def training_seconds(rows: Sequence[Mapping[str, str]], batch_size: int) -> float:
    """Seconds the logged steps took, from the images per second of each logged interval (:func:`log_rows`):
    checkpoints and evaluation left out."""
    seconds, previous = 0.0, 0
    for row in rows:
        step = int(row["step"])
        seconds += (step - previous) * batch_size / float(row["images_per_s"])
        previous = step
    return seconds


def timed_run(run: RunFn, topology: Topology, spec: Path, seed: int, recipe: Recipe, data: Path, work: Path) -> Any:
    """``run``'s metrics and seconds. A run that resumes a killed one adds the logged seconds of the steps the
    killed one made: the log rows the resume kept (a resumed log drops the rows after the checkpoint)."""
    checkpoint = checkpoint_path(work, RunStore.key(topology, seed, recipe))
    before = log_rows(checkpoint.parent) if checkpoint.exists() else []
    started = time.perf_counter()
    metrics = run(topology, spec, seed, recipe, data, work)
    seconds = time.perf_counter() - started
    after = log_rows(checkpoint.parent)
    kept = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    return dict(metrics), seconds + training_seconds(after[:kept], int(recipe.train["batch_size"]))


def prepare_data(recipe: Recipe, work: Path) -> Path:
    """The recipe's synthetic data set under ``work`` (made once; recipes with the same data set share it)."""
    from effdet_graph import make_dataset

    key = hashlib.sha256(json.dumps(dict(recipe.dataset), sort_keys=True).encode()).hexdigest()[:16]
    data = work / "data" / key
    if not (data / "val").exists():
        make_dataset(data, **dict(recipe.dataset))
    return data


def prepare_feature_caches(recipe: Recipe, data: Path, seeds: Sequence[int], work: Path) -> None:
    """Build the backbone-feature caches that the recipe's runs with ``seeds`` train on (a recipe with
    ``feature_cache``), with all of this process's threads, before the runs start: ``--jobs N`` runs, one thread
    each, then open it instead of waiting while the first of them builds it on one thread. The cache does not
    depend on the feature network (the control's spec stands in for every topology); a pretrained backbone gives
    every seed the same one."""
    if not recipe.train.get("feature_cache"):
        return
    import effdet_graph as eg
    from effdet_graph.training import prepare_feature_cache

    fixed = recipe.train.get("pretrained_backbone") or recipe.train.get("backbone_weights")
    for seed in seeds[:1] if fixed else seeds:  # the weights a file gives are every seed's
        options = eg.TrainOptions(data=data, spec=CONTROL_SPEC, out=work, **recipe.options(seed))
        prepare_feature_cache(options, progress=False)


def one_thread() -> None:
    """Pool initializer: one torch thread per process, so that N processes on N cores do not oversubscribe
    them."""
    import torch

    torch.set_num_threads(1)


def run_missing(
    topologies: Sequence[Topology],
    seeds: Sequence[int],
    recipe: Recipe,
    store: RunStore,
    work: Path,
    data: Path,
    run: RunFn = train_and_evaluate,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> int:
    """Make every (topology, seed) run the store lacks, saving after each; the number made."""
    paths = write_specs(topologies, work / "specs")
    todo = [(t, s) for s in seeds for t in topologies if not store.has(store.key(t, s, recipe))]  # seed by seed
    log(f"{len(topologies) * len(seeds) - len(todo)} runs stored, {len(todo)} to make (recipe {recipe.name})")

    def keep(topology: Topology, seed: int, metrics: Mapping[str, float], seconds: float) -> None:
        store.add(topology, seed, recipe, metrics, seconds)
        store.save()
        log(f"  {topology.name} seed {seed}: AP {metrics['AP']:.4f} ({seconds:.0f} s)")

    if jobs <= 1:
        one_thread()  # as each process of --jobs N runs, so that a run's AP does not depend on --jobs
        for topology, seed in todo:
            keep(topology, seed, *timed_run(run, topology, paths[topology.name], seed, recipe, data, work))
    else:
        with ProcessPoolExecutor(jobs, initializer=one_thread) as pool:
            futures = {pool.submit(timed_run, run, t, paths[t.name], s, recipe, data, work): (t, s) for t, s in todo}
            for future in as_completed(futures):
                keep(*futures[future], *future.result())
    return len(todo)


def verify(
    topology: Topology, seed: int, recipe: Recipe, store: RunStore, work: Path, run: RunFn = train_and_evaluate
) -> dict[str, Any]:
    """Make the stored run of ``topology`` with ``seed`` again with ``run`` in a fresh folder (one thread, as
    ``--jobs`` runs) and compare: the stored and the new AP, and the machine each was made on (the stored run's
    where recorded).

    Raises:
        KeyError: No such run is stored.
    """
    key = store.key(topology, seed, recipe)
    stored = store.get(key)
    if stored is None:
        raise KeyError(f"no stored run of {topology.name} seed {seed} with recipe {recipe.name}")
    one_thread()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_specs([topology], Path(tmp) / "specs")[topology.name]
        again = run(topology, path, seed, recipe, prepare_data(recipe, work), Path(tmp))
    return {
        "topology": topology.name,
        "seed": seed,
        "recipe": recipe.name,
        "recipe_hash": recipe.hash,
        "stored_ap": stored["metrics"]["AP"],
        "stored_version": stored["version"],
        "stored_machine": stored.get("machine"),
        "ap": again["AP"],
        "same": again["AP"] == stored["metrics"]["AP"],
        "seconds": round(time.perf_counter() - started, 1),
        "version": project_version(),
        "machine": machine(),
    }


def record_verification(outcome: Mapping[str, Any], path: Path = VERIFY_RESULTS) -> None:
    """Add ``outcome`` (:func:`verify`) to the verifications stored at ``path`` (a file that only grows)."""
    from effdet_graph.atomic import atomic_output

    runs = json.loads(path.read_text(encoding="utf-8"))["runs"] if path.exists() else []
    data = {"schema": SCHEMA, "runs": [*runs, dict(outcome)]}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
