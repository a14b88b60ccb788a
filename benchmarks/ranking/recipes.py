"""The training recipes of the ranking benchmark, read from ``benchmarks/recipes.yaml`` (see its comments), and
the search's former from-scratch proxy as a recipe."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.ranking import ROOT
from graphspec.errors import did_you_mean

#: Step budgets of the search-proxy rows (the search's default is 200).
PROXY_BUDGETS = (100, 200)
#: The keys a recipe may have (``train`` and ``dataset`` are then read as mappings, which they must be).
RECIPE_KEYS = {"train": False, "dataset": False, "varies": False}
#: The keys of the file's ``search_proxy`` block (TrainOptions values), each required.
SEARCH_PROXY_KEYS = {"image_size": True, "batch_size": True, "lr": True, "ema_decay": True, "scale_range": True}
#: The training options that set the detector a run trains (the rest set how it trains).
DETECTOR_OPTIONS = ("phi", "backbone", "head_depth", "overrides")


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
    """``benchmarks/recipes.yaml``: the ``detector`` values every recipe shares, the recipes by name, the name of
    the ground truth's (``ground_truth``: the recipe the harness runs and reports by default), the stored single
    runs of other recipes its report scores as ranking methods (``ranking_runs``: recipe -> seeds), and the training
    of the search-proxy rows (``search_proxy``: :func:`search_proxy_recipe`)."""

    detector: dict[str, Any]
    recipes: dict[str, Recipe]
    ground_truth: str
    ranking_runs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    search_proxy: dict[str, Any] = field(default_factory=dict)


def load_recipes(path: Path = RECIPE_FILE) -> Recipes:
    """The recipes of ``path`` (see its comments), each checked as :func:`check_recipe` says.

    Raises:
        ConfigError: One line ``FILE:LINE:COL: ...`` naming the recipe and the key.
    """
    from effdet_graph.training import OptionError, check_options
    from graphspec import ConfigError
    from graphspec.reader import Reader
    from graphspec.yaml_loader import load_yaml

    loaded = load_yaml(path, holds="the benchmark's recipes", merge_keys=True)
    reader = Reader(loaded)

    def values(block: Mapping[str, Any]) -> dict[str, Any]:  # YAML's lists are TrainOptions' pairs
        return {name: tuple(value) if isinstance(value, list) else value for name, value in block.items()}

    detector = values(reader.mapping(("detector",), None))
    recipes = {}
    for name in reader.mapping(("recipes",), None):
        entry = reader.mapping(("recipes", name), RECIPE_KEYS, f"recipe {name!r}")
        train, dataset = (reader.mapping(("recipes", name, part), None) for part in ("train", "dataset"))
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
    ranking_runs = loaded.data.get("ranking_runs", {})
    if not isinstance(ranking_runs, dict):
        raise ConfigError("`ranking_runs` must map recipe names to lists of seeds", loaded.where(("ranking_runs",)))
    for name, seeds in ranking_runs.items():
        where = loaded.where(("ranking_runs", name))
        if name not in recipes:
            raise ConfigError(
                f"`ranking_runs` names no recipe of the file: {name!r}{did_you_mean(str(name), sorted(recipes))}",
                where,
                "ranking_runs",
            )
        if not isinstance(seeds, list) or not seeds or not all(type(seed) is int for seed in seeds):
            raise ConfigError(f"`ranking_runs.{name}` must be a list of seeds, got {seeds!r}", where, "ranking_runs")
    runs = {name: tuple(seeds) for name, seeds in ranking_runs.items()}
    search_proxy = values(reader.mapping(("search_proxy",), SEARCH_PROXY_KEYS, "`search_proxy`"))
    try:
        check_options(search_proxy)
    except OptionError as exc:
        message = exc.named(lambda key: f"`search_proxy.{key}`")
        raise ConfigError(message, loaded.where(("search_proxy", exc.field)), f"search_proxy.{exc.field}") from None
    return Recipes(detector, recipes, ground_truth, runs, search_proxy)


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

    from effdet_graph import TrainOptions, make_dataset
    from effdet_graph.training import OptionError, check_options
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


def search_proxy_recipe(steps: int, ground_truth: Recipe, training: Mapping[str, Any]) -> Recipe:
    """The search's former from-scratch proxy training (``training``: the recipe file's ``search_proxy`` block,
    its learning rate, EMA, batch, input size and scale jitter) cut to ``steps`` with a warmup of a tenth of them,
    on the ground truth's data set and detector (its phi, backbone, ``head_depth`` and spec ``overrides``), so that
    only the training differs."""
    detector = {k: ground_truth.train[k] for k in DETECTOR_OPTIONS if k in ground_truth.train}
    train = dict(detector, **training, steps=steps, warmup_steps=max(1, steps // 10))
    return Recipe(f"search proxy, {steps} steps", train, ground_truth.dataset)
