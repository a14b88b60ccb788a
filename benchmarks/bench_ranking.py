"""Ranking fidelity: how well ranking methods (short proxy trainings, parameter count, MACs, a zero-cost proxy)
order feature-network topologies the way fully trained detectors' COCO AP does, on a benchmark where the
topology matters.

    python benchmarks/bench_ranking.py [--recipe NAME] [--seeds 0 1 2] [--jobs 2] [--samples 10]
                                       [--proxies 100 200] [--only NAME ...] [--report-only] [--list]
                                       [--verify NAME SEED]

**Ground-truth set.** The no-fusion control ``benchmarks/specs/nofusion.yaml``, the built-in fpn, panet,
simplified_panet, bifpn, qufpn, nasfpn and fc_fpn, and ``--samples`` topologies sampled (seeded,
``--sample-seed``) from the ``bifpn_edges`` search space, written as spec files the way the search writes
candidates. Spec files go to ``--work``/specs.

**Recipes** are data, in ``benchmarks/recipes.yaml``, whose ``ground_truth`` names the recipe run and reported
by default (:data:`GROUND_TRUTH`). **Ground-truth recipe** (``fixed-init``). The ``beacon`` scene of the
synthetic data set (1,200 train and 1,600 val images of 128x128; an object's class is the tint of a band along
the far side of the image, beyond the reach of P3 features that see only their own level), EfficientDet-D0's
feature-network width with one cell and one-layer heads on MobileNetV2-0.5, 1,500 steps of 8 images, lr 0.12;
every run starts from the weights of seed 0, and its seed varies the data order and augmentation (the minutes a
run takes are in the report). The recipes on the way to it are kept with their runs: ``surround`` (the class
told by the tint beyond a grey disc around each object), on which the bench search space, its supernets and the
variance study were made; ``frame`` the first recipe of all (the context scene); ``beacon``, ``beacon-lr008``
and ``lr012-val1600``, the beacon with each run's own initial weights. ``quick`` only checks the machinery.

**Runs.** Each (topology, seed) is trained with ``effdet_graph.train`` and evaluated with
``effdet_graph.evaluate``; the built-in set first, seed by seed. ``--jobs N`` runs N at once, one torch thread
each (two two-thread runs would oversubscribe 2 cores). Runs are kept in ``benchmarks/results/ranking.json``,
keyed by topology name, spec text hash, seed and recipe hash, with the recipe and the project version; the file
only grows: a run already stored is skipped, and runs of another recipe are never mixed into a report.
``--verify NAME SEED`` trains a stored run again and compares its AP (the training is deterministic for a seed on
a given machine and thread count), adding the outcome with the machine to ``benchmarks/results/verify.json``.

**Report.** The ceiling is the mean pairwise Kendall tau between seeds (how well one seed's AP ranking predicts
another's), over the whole set and over the built-in topologies with the control; the control gap is how far
FPN's and BiFPN's mean AP lie above the control's, in seed standard deviations. Each method (``METHODS``, name
-> callable; add entries to plug in more) is scored against the mean AP over seeds: Kendall tau (tau-b),
Spearman rho and precision@3, with the seconds it took. The search's from-scratch proxy (its ``proxy``
settings at ``--proxies`` step budgets, seed 0, on the same data and detector) is a method whose cost is its
runs' seconds. The one-shot supernet's rows (``bench_oneshot.py``'s results, :func:`oneshot_methods`) rank the
topologies of their search space only; each row gives how many it ranked and the seed-to-seed tau over those.
A recipe's report goes to ``benchmarks/results/ranking_report-RECIPE.json``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import itertools
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphspec import InputError
from graphspec.errors import did_you_mean

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ranking.json"
VERIFY_RESULTS = ROOT / "benchmarks" / "results" / "verify.json"
ONESHOT_RESULTS = ROOT / "benchmarks" / "results" / "oneshot.json"
CONTROL_SPEC = ROOT / "benchmarks" / "specs" / "nofusion.yaml"
CONTROL_NAME = CONTROL_SPEC.stem
BUILTIN_TOPOLOGIES = ("fpn", "panet", "simplified_panet", "bifpn", "qufpn", "nasfpn", "fc_fpn")
BUILTIN_SET = frozenset((*BUILTIN_TOPOLOGIES, CONTROL_NAME))
#: Step budgets of the search-proxy rows (the search's default is 200).
PROXY_BUDGETS = (100, 200)
SEARCH_SPACE = "bifpn_edges"
#: The training options that set the detector a run trains (the rest set how it trains).
DETECTOR_OPTIONS = ("phi", "backbone", "head_depth", "overrides")
SCHEMA = 1


def machine() -> dict[str, Any]:
    """What a benchmark's figures were measured on."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


# -- recipes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How each run trains: ``train`` holds :class:`~effdet_graph.TrainOptions` values (not data, spec or out),
    ``dataset`` the arguments of :func:`~effdet_graph.data.synthetic.make_dataset` (``images``, ``image_size``,
    ``seed``, ``scene``, ...). A run's seed goes to the ``varies`` option: ``seed`` (weights, data order and
    augmentation, unless ``train`` fixes ``data_seed``) or ``data_seed`` (data order and augmentation only)."""

    name: str
    train: Mapping[str, Any]
    dataset: Mapping[str, Any]
    varies: str = "seed"

    def as_json(self) -> dict[str, Any]:
        """The recipe as JSON data (tuples become lists)."""
        data = {"name": self.name, "train": dict(self.train), "dataset": dict(self.dataset), "varies": self.varies}
        return json.loads(json.dumps(data))

    def options(self, seed: int) -> dict[str, Any]:
        """The :class:`~effdet_graph.TrainOptions` values of the run with ``seed`` (data, spec and out aside)."""
        return {**dict(self.train), self.varies: seed}

    def but(self, name: str, varies: str | None = None, **train: Any) -> Recipe:
        """A copy named ``name`` with ``train`` values changed (and the seed sent to ``varies``)."""
        return Recipe(name, {**dict(self.train), **train}, self.dataset, varies or self.varies)

    @property
    def overrides(self) -> dict[str, Any]:
        """The spec parameter values the runs set over the phi scaling (``train``'s ``overrides``)."""
        return dict(self.train.get("overrides", {}))

    @property
    def hash(self) -> str:
        """A short hash of the values (the name left out): the same values, the same hash."""
        data = self.as_json()
        del data["name"]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


RECIPE_FILE = ROOT / "benchmarks" / "recipes.yaml"


@dataclass(frozen=True)
class Recipes:
    """``benchmarks/recipes.yaml``: the ``detector`` values every recipe shares, the recipes by name, and the
    name of the ground truth's (``ground_truth``: the recipe the harness runs and reports by default)."""

    detector: dict[str, Any]
    recipes: dict[str, Recipe]
    ground_truth: str


def load_recipes(path: Path = RECIPE_FILE) -> Recipes:
    """The recipes of ``path`` (see its comments), each checked as :func:`check_recipe` says.

    Raises:
        ConfigError: One line ``FILE:LINE:COL: ...`` naming the recipe and the key.
    """
    from graphspec import ConfigError
    from graphspec.yaml_loader import load_yaml

    loaded = load_yaml(path, holds="the benchmark's recipes", merge_keys=True)

    def mapping(*keys: str) -> dict[str, Any]:
        value = loaded.data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, dict):
            raise ConfigError(f"`{'.'.join(keys)}` must be a mapping", loaded.where(keys), ".".join(keys))
        return value

    def values(block: Mapping[str, Any]) -> dict[str, Any]:  # YAML's lists are TrainOptions' pairs
        return {name: tuple(value) if isinstance(value, list) else value for name, value in block.items()}

    detector = values(mapping("detector"))
    recipes = {}
    for name, entry in mapping("recipes").items():
        train, dataset = mapping("recipes", name, "train"), mapping("recipes", name, "dataset")
        recipes[name] = Recipe(name, {**detector, **values(train)}, dataset, entry.get("varies", "seed"))
        check_recipe(recipes[name], lambda *keys, name=name: loaded.where(("recipes", name, *keys)))
    ground_truth = loaded.data.get("ground_truth")
    if ground_truth not in recipes:
        raise ConfigError(
            f"`ground_truth` must name a recipe of the file, got {ground_truth!r}"
            f"{did_you_mean(str(ground_truth), sorted(recipes))}",
            loaded.where(("ground_truth",)),
            "ground_truth",
        )
    return Recipes(detector, recipes, ground_truth)


def check_recipe(recipe: Recipe, where: Callable[..., Any]) -> None:
    """Refuse a recipe a run could not train with, when the file loads: a ``train`` key that is no
    :class:`~effdet_graph.TrainOptions` field (data, spec and out aside) or a value its rule refuses, a ``dataset``
    key that :func:`~effdet_graph.data.synthetic.make_dataset` does not take, a ``varies`` other than ``seed`` or
    ``data_seed``. ``where(*keys)`` is the location of the recipe's entry at ``keys`` (``"train", "lr"``).

    Raises:
        ConfigError: One line naming the location, the recipe and the key.
    """
    import dataclasses
    import inspect

    from effdet_graph.data.synthetic import make_dataset
    from effdet_graph.training.options import OptionError, TrainOptions, check_options
    from graphspec import ConfigError

    def refuse(message: str, *keys: str) -> ConfigError:
        return ConfigError(f"recipe {recipe.name!r}: {message}", where(*keys), ".".join(keys))

    known = {
        "train": {f.name for f in dataclasses.fields(TrainOptions)} - {"data", "spec", "out"},
        "dataset": set(inspect.signature(make_dataset).parameters) - {"out_dir"},
    }
    for part, block in (("train", recipe.train), ("dataset", recipe.dataset)):
        for key in block:
            if key not in known[part]:
                raise refuse(f"unknown `{part}` key {key!r}{did_you_mean(key, sorted(known[part]))}", part, key)
    if recipe.varies not in ("seed", "data_seed"):
        raise refuse(f"`varies` must be seed or data_seed, got {recipe.varies!r}", "varies")
    try:
        check_options(recipe.train)
    except OptionError as exc:
        raise refuse(exc.named(lambda name: f"`train.{name}`"), "train", exc.field) from None


try:
    RECIPE_BOOK = load_recipes()
except InputError as exc:  # a broken recipes.yaml: one line and exit 2, before any run starts
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
RECIPES = RECIPE_BOOK.recipes
#: The ground truth's recipe name (``ground_truth`` in ``benchmarks/recipes.yaml``).
GROUND_TRUTH = RECIPE_BOOK.ground_truth


def search_proxy_recipe(steps: int, ground_truth: Recipe) -> Recipe:
    """The search's from-scratch proxy training (the ``proxy`` block of the ``bifpn_edges`` space: its learning
    rate, EMA, batch, input size, scale jitter and warmup of a tenth of the steps) cut to ``steps``, on the ground
    truth's data set and detector (its phi, backbone, ``head_depth`` and spec ``overrides``), so that only the
    training differs."""
    from search.space import builtin_space, load_search_space

    proxy = load_search_space(builtin_space(SEARCH_SPACE)).proxy
    detector = {k: ground_truth.train[k] for k in DETECTOR_OPTIONS if k in ground_truth.train}
    train = dict(
        detector,
        image_size=proxy.image_size or ground_truth.train["image_size"],
        batch_size=proxy.batch_size,
        lr=proxy.lr,
        ema_decay=proxy.ema_decay,
        scale_range=proxy.scale_range,
        steps=steps,
        warmup_steps=max(1, steps // 10),
    )
    return Recipe(f"search proxy, {steps} steps", train, ground_truth.dataset)


# -- the ground-truth set -------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """One topology of the set: its name, complete spec file text, and where it came from."""

    name: str
    spec_text: str
    source: str

    @property
    def spec_hash(self) -> str:
        """A short hash of the spec text."""
        return hashlib.sha256(self.spec_text.encode()).hexdigest()[:16]

    def spec(self) -> Any:
        """The loaded :class:`graphspec.Spec`."""
        from graphspec import loads_spec

        return loads_spec(self.spec_text, f"{self.name}.yaml")


def sampled_topologies(count: int, seed: int = 0, max_draws: int = 1000) -> list[Topology]:
    """``count`` distinct topologies of the ``bifpn_edges`` space, drawn at random with ``seed``.

    Rejected points (invalid or over budget) and repeats of a topology already drawn are skipped; trial numbers
    count every draw, so a name (``bifpn_edges_trialNNNN``) says which draw it was.
    """
    from search.rejection import Rejected
    from search.sample import sample_point
    from search.space import builtin_space, load_search_space
    from search.trial import SeededTrial

    space = load_search_space(builtin_space(SEARCH_SPACE))
    rng = random.Random(seed)
    topologies: list[Topology] = []
    seen: set[str] = set()
    for number in range(max_draws):
        if len(topologies) == count:
            break
        try:
            candidate = sample_point(space, SeededTrial(rng, number))
        except Rejected:
            continue
        spec = candidate.spec()
        shape = json.dumps(
            [[n.id, n.level, list(n.inputs), n.fusion] for n in spec.nodes] + [sorted(spec.outputs.items())],
            default=str,
        )
        if shape in seen:
            continue
        seen.add(shape)
        name = candidate.file_name.removesuffix(".yaml")
        topologies.append(Topology(name, candidate.spec_text, f"{SEARCH_SPACE} draw {number} (seed {seed})"))
    if len(topologies) < count:
        raise RuntimeError(f"only {len(topologies)} of {count} topologies after {max_draws} draws")
    return topologies


def ground_truth_set(samples: int = 10, sample_seed: int = 0) -> list[Topology]:
    """The sampled topologies, the built-in ones and the no-fusion control."""
    from effdet_graph.builtin import specs_dir

    fixed = [CONTROL_SPEC] + [specs_dir() / f"{name}.yaml" for name in BUILTIN_TOPOLOGIES]
    return [Topology(path.stem, path.read_text(encoding="utf-8"), _shown(path)) for path in fixed] + sampled_topologies(
        samples, sample_seed
    )


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_specs(topologies: Iterable[Topology], folder: Path) -> dict[str, Path]:
    """Write each topology's spec file to ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for topology in topologies:
        path = folder / f"{topology.name}.yaml"
        if not path.exists() or path.read_text(encoding="utf-8") != topology.spec_text:
            path.write_text(topology.spec_text, encoding="utf-8")
        paths[topology.name] = path
    return paths


# -- storage that only adds ------------------------------------------------------------------------

RunKey = tuple[str, str, int, str]  # topology name, spec hash, seed, recipe hash


def project_version() -> str:
    """The installed effdet-graph version."""
    return importlib.metadata.version("effdet-graph")


class RunStore:
    """Runs in a JSON file that only grows: :meth:`add` refuses a key already stored; :meth:`save` writes
    every run it read plus the new ones (atomically)."""

    def __init__(self, path: Path):
        self.path = path
        self.runs: list[dict[str, Any]] = []
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.runs = list(data.get("runs", []))
        self._keys = {self.key_of(run) for run in self.runs}

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
        return key in self._keys

    def add(self, topology: Topology, seed: int, recipe: Recipe, metrics: Mapping[str, float], seconds: float) -> None:
        """Store one run.

        Raises:
            KeyError: The run is already stored.
        """
        key = self.key(topology, seed, recipe)
        if key in self._keys:
            raise KeyError(f"run already stored: {key}")
        self._keys.add(key)
        self.runs.append(
            {
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
        )

    def save(self) -> None:
        """Write the file."""
        from effdet_graph.io.atomic import atomic_output

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


#: Trains and evaluates one (topology, seed) under a recipe: (topology, spec path, seed, recipe, data, work
#: folder) -> metrics (at least ``AP``).
RunFn = Callable[[Topology, Path, int, Recipe, Path, Path], Mapping[str, float]]


def train_and_evaluate(
    topology: Topology, spec: Path, seed: int, recipe: Recipe, data: Path, work: Path
) -> dict[str, float]:
    """One real run: :func:`effdet_graph.train` (resuming a killed one), then :func:`effdet_graph.evaluate` on
    val (with the class-agnostic AP, which ``bench_class_agnostic.py`` reports)."""
    import effdet_graph as eg

    checkpoint = checkpoint_path(work, RunStore.key(topology, seed, recipe))
    resume = checkpoint if checkpoint.exists() else None  # a killed run resumes where its last epoch ended, exactly
    options = eg.TrainOptions(data=data, spec=spec, out=checkpoint.parent, resume=resume, **recipe.options(seed))
    result = eg.train(options, progress=False)
    return dict(eg.evaluate(result.checkpoint, data, "val", class_agnostic=True))


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


def _timed_run(run: RunFn, topology: Topology, spec: Path, seed: int, recipe: Recipe, data: Path, work: Path) -> Any:
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


def trained_spec(topology: Topology, phi: int, overrides: Mapping[str, Any]) -> Any:
    """``topology``'s spec as a run with ``phi`` and spec ``overrides`` trains it: EfficientDet-D``phi``'s scaling
    of the spec's parameters, then the overrides (:func:`effdet_graph.model.scaling.scale_document`)."""
    from effdet_graph.model.scaling import scale_document
    from graphspec.parse import loads_spec_document
    from search.detector import table_row

    return scale_document(loads_spec_document(topology.spec_text, f"{topology.name}.yaml"), table_row(phi), overrides)


def build_detector(recipe: Recipe, spec: Path, num_classes: int) -> Any:
    """The detector ``recipe``'s runs train around ``spec`` (its phi, backbone, ``overrides`` and
    ``head_depth``), with fresh weights, in train mode."""
    from effdet_graph.io.recipe import ModelRecipe

    train = recipe.train
    classes = tuple(f"class{i}" for i in range(num_classes))
    return ModelRecipe.create(
        str(spec),
        train["phi"],
        train.get("image_size"),
        list(range(1, num_classes + 1)),
        classes,
        train.get("backbone"),
        recipe.overrides,
        train.get("head_depth"),
    ).build()


def prepare_data(recipe: Recipe, work: Path) -> Path:
    """The recipe's synthetic data set under ``work`` (made once; recipes with the same data set share it)."""
    from effdet_graph.data.synthetic import make_dataset

    key = hashlib.sha256(json.dumps(dict(recipe.dataset), sort_keys=True).encode()).hexdigest()[:16]
    data = work / "data" / key
    if not (data / "val").exists():
        make_dataset(data, **dict(recipe.dataset))
    return data


def _one_thread() -> None:
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
        _one_thread()  # as each process of --jobs N runs, so that a run's AP does not depend on --jobs
        for topology, seed in todo:
            keep(topology, seed, *_timed_run(run, topology, paths[topology.name], seed, recipe, data, work))
    else:
        with ProcessPoolExecutor(jobs, initializer=_one_thread) as pool:
            futures = {pool.submit(_timed_run, run, t, paths[t.name], s, recipe, data, work): (t, s) for t, s in todo}
            for future in as_completed(futures):
                keep(*futures[future], *future.result())
    return len(todo)


# -- rank statistics -------------------------------------------------------------------------------


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either list corrected for, as ``scipy.stats.kendalltau``); nan if undefined."""
    n = len(x)
    if n != len(y):
        raise ValueError("x and y differ in length")
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(n), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    denominator = np.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return float((concordant - discordant) / denominator) if denominator else float("nan")


def _ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties given their mean rank."""
    array = np.asarray(values, dtype=float)
    order = np.argsort(array, kind="stable")
    ranks = np.empty(len(array))
    ranks[order] = np.arange(1, len(array) + 1)
    for value in np.unique(array):
        tied = array == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the (tie-averaged) ranks; nan if a list is constant."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def precision_at_k(truth: Sequence[float], scores: Sequence[float], k: int = 3) -> float:
    """The fraction of the ``k`` best items by ``truth`` that are among the ``k`` best by ``scores`` (higher
    is better in both; ties broken by position)."""
    best = set(np.argsort(-np.asarray(truth, dtype=float), kind="stable")[:k].tolist())
    picked = set(np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k].tolist())
    return len(best & picked) / k


def seed_to_seed_tau(table: Mapping[str, Mapping[int, float]], seeds: Sequence[int]) -> float:
    """Mean Kendall tau over pairs of seeds, on the topologies that have every one of them; nan if < 2 seeds."""
    names = [name for name, runs in table.items() if all(s in runs for s in seeds)]
    taus = [
        kendall_tau([table[n][a] for n in names], [table[n][b] for n in names])
        for a, b in itertools.combinations(seeds, 2)
    ]
    return float(np.mean(taus)) if taus else float("nan")


# -- ranking methods -------------------------------------------------------------------------------


@dataclass
class Context:
    """What a ranking method may use besides the topology: the recipe's backbone channels, image size, phi and
    spec ``overrides``."""

    in_channels: tuple[int, ...]
    image_size: int
    phi: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def spec(self, topology: Topology) -> Any:
        """``topology``'s spec as the recipe's runs train it (:func:`trained_spec`)."""
        return trained_spec(topology, self.phi, self.overrides)


#: A ranking method: (topology, context) -> score, higher meaning predicted better.
Method = Callable[[Topology, Context], float]


def _cost(topology: Topology, context: Context) -> Any:
    from graphspec.cost import estimate_cost

    return estimate_cost(context.spec(topology), context.in_channels, context.image_size).total


def params_score(topology: Topology, context: Context) -> float:
    """The feature network's parameter count (analytic)."""
    return float(_cost(topology, context).params)


def macs_score(topology: Topology, context: Context) -> float:
    """The feature network's MACs at the recipe's image size (analytic)."""
    return float(_cost(topology, context).macs)


def synflow(network: Any, inputs: Sequence[Any]) -> float:
    """SynFlow (Tanaka et al., NeurIPS 2020): sum over parameters of ``|theta * dL/dtheta|`` where ``L`` is the
    sum of the outputs of ``network`` with every weight replaced by its absolute value, BatchNorm in eval mode.
    The weights are restored afterwards. ``inputs``: the forward's argument (all ones, as the paper)."""
    import torch

    was_training = network.training
    network.eval()
    params = [p for p in network.parameters() if p.requires_grad]
    with torch.no_grad():
        signs = [torch.sign(p) for p in params]
        for p in params:
            p.abs_()
    try:
        network.zero_grad(set_to_none=True)
        outputs = network(list(inputs))
        loss = sum(out.sum() for out in outputs)
        loss.backward()
        score = sum(float((p.detach() * p.grad).abs().sum()) for p in params if p.grad is not None)
    finally:
        with torch.no_grad():
            for p, sign in zip(params, signs):
                p.mul_(sign)
        network.zero_grad(set_to_none=True)
        network.train(was_training)
    return score


def synflow_score(topology: Topology, context: Context) -> float:
    """SynFlow of the compiled feature network in float64 at the recipe's image size, all-ones inputs."""
    import torch

    from effdet_graph.fpn.compiler import compile_spec

    spec = context.spec(topology)
    torch.manual_seed(0)
    network = compile_spec(spec, context.in_channels).double()
    inputs = [
        torch.ones(1, c, context.image_size // 2**level, context.image_size // 2**level, dtype=torch.float64)
        for c, level in zip(context.in_channels, spec.backbone_levels)
    ]
    return synflow(network, inputs)


#: Ranking methods by name; add entries to evaluate more.
METHODS: dict[str, Method] = {"params": params_score, "macs": macs_score, "synflow": synflow_score}


@dataclass(frozen=True)
class StoredTraining:
    """A ranking method that trains: each topology's AP from a stored run of ``recipe`` with ``seed`` (made by
    ``--proxies``); its cost is the runs' recorded seconds, not the lookup's."""

    recipe: Recipe
    store: RunStore
    seed: int = 0

    def _run(self, topology: Topology) -> Mapping[str, Any]:
        for run in self.store.runs:
            if RunStore.key_of(run) == RunStore.key(topology, self.seed, self.recipe):
                return run
        raise KeyError(f"no stored run of {topology.name} seed {self.seed} with recipe {self.recipe.name}")

    def __call__(self, topology: Topology, context: Context) -> float:
        return float(self._run(topology)["metrics"]["AP"])

    def seconds(self, topologies: Sequence[Topology]) -> float:
        """The recorded seconds of the runs of ``topologies``."""
        return float(sum(self._run(t)["seconds"] for t in topologies))


def context_for(recipe: Recipe) -> Context:
    """The backbone channels, image size, phi and spec overrides of ``recipe``."""
    from search.budget import backbone_channels

    train = recipe.train
    channels = backbone_channels(train["backbone"], (3, 4, 5))
    return Context(channels, int(train["image_size"]), int(train["phi"]), recipe.overrides)


@dataclass(frozen=True)
class MethodResult:
    """One method's agreement with the ground truth."""

    name: str
    tau: float
    rho: float
    precision_at_3: float
    seconds: float
    topologies: int  # how many topologies it ranked (a supernet ranks those of its space)
    ceiling: float  # the seed-to-seed tau over those topologies


def score_methods(
    topologies: Sequence[Topology],
    table: Mapping[str, Mapping[int, float]],
    seeds: Sequence[int],
    context: Context,
    methods: Mapping[str, Method] = METHODS,
) -> list[MethodResult]:
    """Score every method against the mean AP over ``seeds`` on the topologies with a ground truth in
    ``table`` (and, for a method with ``covers``, that it covers)."""
    results = []
    for name, method in methods.items():
        covers = getattr(method, "covers", None)
        ranked = [t for t in topologies if t.name in table and (covers is None or covers(t))]
        target = [float(np.mean([table[t.name][s] for s in seeds])) for t in ranked]
        started = time.perf_counter()
        scores = [method(t, context) for t in ranked]
        seconds = method.seconds(ranked) if hasattr(method, "seconds") else time.perf_counter() - started
        ceiling = seed_to_seed_tau({t.name: table[t.name] for t in ranked}, seeds)
        results.append(
            MethodResult(
                name,
                kendall_tau(target, scores),
                spearman_rho(target, scores),
                precision_at_k(target, scores),
                seconds,
                len(ranked),
                ceiling,
            )
        )
    return results


@dataclass(frozen=True)
class StoredInherited:
    """A ranking method from ``bench_oneshot.py``'s results: each topology's AP with the weights it inherits
    from the supernet trained with ``sampling``, BatchNorm statistics recomputed on ``bn_batches`` batches (0:
    the supernet's own). It covers the topologies of the supernet's space; its cost is the supernet's training
    plus the measurements."""

    sampling: str
    bn_batches: int
    supernet: Mapping[str, Any]  # the sampling's entry of benchmarks/results/oneshot.json

    @property
    def scores(self) -> Mapping[str, Mapping[str, float]]:
        return self.supernet["scores"].get(str(self.bn_batches), {})

    def covers(self, topology: Topology) -> bool:
        return topology.name in self.scores

    def __call__(self, topology: Topology, context: Context) -> float:
        return float(self.scores[topology.name]["AP"])

    def seconds(self, topologies: Sequence[Topology]) -> float:
        """The supernet's training seconds plus the measurements of ``topologies``."""
        return float(self.supernet["train_seconds"] + sum(self.scores[t.name]["seconds"] for t in topologies))


def oneshot_methods(recipe: Recipe, path: Path = ONESHOT_RESULTS) -> dict[str, Method]:
    """The supernet rows of ``bench_oneshot.py``'s results for ``recipe``: each sampling, without and with
    BatchNorm recalibration (on the search's default number of batches, else the most measured)."""
    from search.space import OneShotConfig

    if not path.exists():
        return {}
    entry = json.loads(path.read_text(encoding="utf-8")).get(recipe.hash, {})
    methods: dict[str, Method] = {}
    for sampling, supernet in entry.get("supernets", {}).items():
        measured = sorted(int(k) for k, scores in supernet.get("scores", {}).items() if scores)
        default = OneShotConfig.bn_batches if OneShotConfig.bn_batches in measured else max(measured, default=0)
        for k in sorted({0, default} & set(measured)):
            label = "no BN recalibration" if k == 0 else f"BN on {k} batches"
            methods[f"supernet {sampling}, {label}"] = StoredInherited(sampling, k, supernet)
    return methods


@dataclass(frozen=True)
class Report:
    """What the harness measured for one recipe: the ground truth and each method's agreement with it."""

    recipe: Recipe
    seeds: tuple[int, ...]
    table: dict[str, dict[int, float]]  # topology -> seed -> AP
    truth: dict[str, float]  # topology -> mean AP over the seeds
    spread: dict[str, float]  # topology -> sample standard deviation of AP over the seeds
    ceiling: float  # seed-to-seed tau over the whole set
    builtin_ceiling: float  # seed-to-seed tau over the built-in topologies and the control
    methods: list[MethodResult]
    run_seconds: float  # mean seconds of one run of the recipe

    @property
    def minutes_per_run(self) -> float:
        """The mean wall time of a ground-truth run (training and evaluation), in minutes."""
        return self.run_seconds / 60

    @property
    def seed_sd(self) -> float:
        """The mean over topologies of the seed standard deviation of AP."""
        return float(np.mean(list(self.spread.values())))

    def control_gap(self, name: str) -> float:
        """How far ``name``'s mean AP lies above the control's, in units of :attr:`seed_sd`."""
        return (self.truth[name] - self.truth[CONTROL_NAME]) / self.seed_sd

    def as_json(self) -> dict[str, Any]:
        """The report as JSON data (what the README quotes)."""
        return {
            "recipe": self.recipe.as_json(),
            "recipe_hash": self.recipe.hash,
            "seeds": list(self.seeds),
            "topologies": len(self.truth),
            "seed_to_seed_tau": round(self.ceiling, 3),
            "seed_to_seed_tau_builtin": round(self.builtin_ceiling, 3),
            "builtin_topologies": len([n for n in self.truth if n in BUILTIN_SET]),
            "seed_sd": round(self.seed_sd, 4),
            "control_gap_sd": {n: round(self.control_gap(n), 1) for n in ("fpn", "bifpn") if n in self.truth},
            "mean_ap": {n: round(ap, 4) for n, ap in sorted(self.truth.items(), key=lambda kv: -kv[1])},
            "ap_by_seed": {n: [round(runs[s], 4) for s in self.seeds] for n, runs in self.table.items()},
            "minutes_per_run": round(self.minutes_per_run, 1),
            "ap_sd": {n: round(sd, 4) for n, sd in self.spread.items()},
            "methods": [
                {
                    "name": r.name,
                    "tau": round(r.tau, 3),
                    "rho": round(r.rho, 3),
                    "precision_at_3": round(r.precision_at_3, 2),
                    "seconds": round(r.seconds, 1),
                    "topologies": r.topologies,
                    "ceiling": round(r.ceiling, 3),
                }
                for r in self.methods
            ],
        }

    def text(self) -> str:
        """The report as the command prints it."""
        lines = [
            f"recipe {self.recipe.name} ({self.recipe.hash}), seeds {list(self.seeds)}, {len(self.truth)} topologies",
            f"seed-to-seed Kendall tau (ceiling): {self.ceiling:.3f} over the set, {self.builtin_ceiling:.3f} over "
            f"the built-in topologies and the control",
            f"seed standard deviation of AP (mean over topologies): {self.seed_sd:.4f}; "
            f"{self.minutes_per_run:.1f} minutes a run",
        ]
        if CONTROL_NAME in self.truth:
            gaps = ", ".join(f"{n} {self.control_gap(n):+.1f}" for n in ("fpn", "bifpn") if n in self.truth)
            lines.append(f"above the no-fusion control, in seed standard deviations: {gaps}")
        lines.append(f"{'method':<44}{'tau':>8}{'rho':>8}{'P@3':>8}{'seconds':>10}{'ranked':>8}{'ceiling':>9}")
        for r in self.methods:
            lines.append(
                f"{r.name:<44}{r.tau:>8.3f}{r.rho:>8.3f}{r.precision_at_3:>8.2f}{r.seconds:>10.1f}{r.topologies:>8}"
                f"{r.ceiling:>9.3f}"
            )
        lines.append(
            "mean AP (sd): "
            + ", ".join(
                f"{n} {ap:.3f} ({self.spread[n]:.3f})" for n, ap in sorted(self.truth.items(), key=lambda kv: -kv[1])
            )
        )
        return "\n".join(lines)


def build_report(
    store: RunStore, topologies: Sequence[Topology], seeds: Sequence[int], recipe: Recipe, methods: Mapping[str, Method]
) -> Report | None:
    """The report of ``recipe``'s stored runs; ``None`` when fewer than 3 topologies have every seed."""
    complete = store.complete(recipe, topologies, seeds)
    if len(complete) < 3:
        return None
    truth = {name: float(np.mean([runs[s] for s in seeds])) for name, runs in complete.items()}
    spread = {name: float(np.std([runs[s] for s in seeds], ddof=1)) for name, runs in complete.items()}
    builtin = {name: runs for name, runs in complete.items() if name in BUILTIN_SET}
    return Report(
        recipe,
        tuple(seeds),
        complete,
        truth,
        spread,
        seed_to_seed_tau(complete, seeds),
        seed_to_seed_tau(builtin, seeds),
        score_methods(topologies, complete, seeds, context_for(recipe), methods),
        store.mean_seconds(recipe, topologies),
    )


def report_path(recipe: Recipe) -> Path:
    """Where the report of ``recipe``'s stored runs goes: ``ranking_report-RECIPE.json`` beside the runs."""
    return RESULTS.with_name(f"ranking_report-{recipe.name}.json")


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
    stored = next((r for r in store.runs if RunStore.key_of(r) == key), None)
    if stored is None:
        raise KeyError(f"no stored run of {topology.name} seed {seed} with recipe {recipe.name}")
    _one_thread()
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
    from effdet_graph.io.atomic import atomic_output

    runs = json.loads(path.read_text(encoding="utf-8"))["runs"] if path.exists() else []
    data = {"schema": SCHEMA, "runs": [*runs, dict(outcome)]}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=GROUND_TRUTH)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=10, help="topologies sampled from bifpn_edges")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", help="run only these topologies (the report covers the whole set)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once; each uses one torch thread")
    parser.add_argument(
        "--proxies",
        type=int,
        nargs="*",
        default=list(PROXY_BUDGETS),
        metavar="STEPS",
        help=f"budgets of the search-proxy rows, trained with seed 0 where missing (default {PROXY_BUDGETS})",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ranking", help="specs, data and checkpoints")
    parser.add_argument("--report-only", action="store_true", help="make no runs (rows without their runs left out)")
    parser.add_argument("--list", action="store_true", help="list the ground-truth set and exit")
    parser.add_argument(
        "--verify",
        nargs=2,
        metavar=("NAME", "SEED"),
        help="train a stored run again in a fresh folder (one thread, as --jobs runs) and compare its AP",
    )
    args = parser.parse_args(argv)

    recipe = RECIPES[args.recipe]
    topologies = ground_truth_set(args.samples, args.sample_seed)
    if args.list:
        for t in topologies:
            print(f"{t.name:<26}{t.spec_hash}  {t.source}")
        return
    store = RunStore(args.results)
    if args.verify:
        name, seed = args.verify[0], int(args.verify[1])
        topology = next((t for t in topologies if t.name == name), None)
        if topology is None:
            parser.error(f"--verify: no topology {name!r} in the set (--list lists it)")
        if not store.has(store.key(topology, seed, recipe)):
            parser.error(f"--verify: no stored run of {name} seed {seed} with recipe {recipe.name}")
        outcome = verify(topology, seed, recipe, store, args.work)
        print(f"{name} seed {seed}: stored AP {outcome['stored_ap']:.6f}, again {outcome['ap']:.6f}")
        if args.results == RESULTS:
            record_verification(outcome)
            print(f"added to {VERIFY_RESULTS}")
        return
    proxies = [search_proxy_recipe(steps, recipe) for steps in args.proxies]
    if not args.report_only:
        chosen = [t for t in topologies if not args.only or t.name in args.only]
        data = prepare_data(recipe, args.work)
        for group in ([t for t in chosen if t.name in BUILTIN_SET], [t for t in chosen if t.name not in BUILTIN_SET]):
            run_missing(group, args.seeds, recipe, store, args.work, data, jobs=args.jobs)  # the built-in set first
        for proxy in proxies:
            run_missing(chosen, [0], proxy, store, args.work, data, jobs=args.jobs)
    methods: dict[str, Method] = {**METHODS, **oneshot_methods(recipe)}
    ranked = [t for t in topologies if t.name in store.complete(recipe, topologies, args.seeds)]
    for proxy in proxies:
        if all(store.has(store.key(t, 0, proxy)) for t in ranked):  # a row only where every ranked run is there
            methods[proxy.name] = StoredTraining(proxy, store)
    result = build_report(store, topologies, args.seeds, recipe, methods)
    if result is None:
        print(f"recipe {recipe.name}: too few topologies with every seed {list(args.seeds)} to rank")
        return
    print(result.text())
    if args.results == RESULTS:
        path = report_path(recipe)
        path.write_text(json.dumps(result.as_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
