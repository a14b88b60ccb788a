"""The interface every search engine implements, and the registry ``effdet-graph search --engine`` picks from.

An engine turns a search space, an evaluate factory and an objective into finished trials: it draws points
(:func:`search.sampling.sample.sample_point`), writes each trial's files (:mod:`search.engines.trial_files`), trains
and evaluates the accepted ones, and returns one :class:`~search.reporting.results.TrialRecord` per trial. The results
folder (leaderboard, best specs, Pareto plot) is then written by :func:`search.reporting.results.write_results`, the
same for every engine.

Trial numbers count from 0 in every engine (Optuna's own trial numbers), and name the trial's folder
``trials/<nnnn>/``, its spec file ``<space>_trial<nnnn>.yaml`` and its leaderboard row.

Engines are registered by name with the import path of their class (``"package.module:Class"``), so that
listing them (the command line's ``--engine`` choices) imports neither Optuna nor Ray; a new strategy (say,
a one-shot weight-sharing search) subclasses :class:`SearchEngine` and calls :func:`register_engine`.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from effdet_graph import InputError, resolve_device
from graphspec.errors import quote
from search.objective import Evaluate, Objective
from search.reporting.results import TrialRecord
from search.space.types import SearchSpace

MakeEvaluate = Callable[[], Evaluate]
"""A picklable callable that makes the evaluate (an engine may call it in another process or machine)."""


@dataclass(frozen=True)
class TrialResources:
    """What each trial may use, for engines that run trials side by side (Ray); others ignore it.

    Attributes:
        gpus: GPUs each trial reserves; ``None`` lets the engine decide (Ray: 1 when the cluster has GPUs now).
        max_concurrent: the most trials running at once; ``None``: as many as the resources allow.
    """

    gpus: float | None = None
    max_concurrent: int | None = None


class SearchEngine(abc.ABC):
    """A search strategy behind one signature: :meth:`check`, then :meth:`run`.

    Subclasses set :attr:`name` and implement :meth:`run`; they are built without
    arguments (``engine_class(name)()``).
    """

    #: The name ``--engine`` takes.
    name: ClassVar[str]

    def check(self, storage: str | None, device: str | None, resources: TrialResources | None = None) -> None:
        """Fail on settings this engine cannot use, before the results folder, the data set or any trial.

        The default checks ``device`` on this machine, where the trials run.

        Args:
            storage: as in :meth:`run`.
            device: the device the proxy task trains and measures latency on (``None``: the default).
            resources: as in :meth:`run`.

        Raises:
            InputError: with a one-line message naming the option at fault.
        """
        resolve_device(device)

    @abc.abstractmethod
    def run(
        self,
        space: SearchSpace,
        make_evaluate: MakeEvaluate,
        objective: Objective,
        results_dir: Path,
        *,
        trials: int,
        storage: str | None = None,
        name: str | None = None,
        resume: bool = False,
        sampler_seed: int | None = None,
        resources: TrialResources | None = None,
    ) -> list[TrialRecord]:
        """Run the search, or continue it where a previous call with the same arguments stopped.

        A trial that raises, or whose objective is NaN, is recorded as failed with its error and the search
        goes on; a point rejected before training (invalid, over budget) is recorded as rejected. Trials
        finished by an earlier call are not run again; ``trials`` counts them.

        Args:
            space: the search space (its ``proxy`` and ``sampler`` settings included).
            make_evaluate: makes the :class:`~search.objective.Evaluate` that trains and evaluates a candidate.
            objective: what is optimised.
            results_dir: the results folder; trial ``n``'s files go to :func:`~search.engines.trial_files.trial_dir`.
            trials: the number of finished trials (complete, pruned, rejected or failed) to reach.
            storage: where the engine keeps its state (an engine-specific location; ``None``: its default).
            name: the name of the study or experiment in ``storage`` (default: the space's name for a study, the
                results folder's name for a Ray experiment, so that each ``--out`` folder holds its own).
            resume: continue an existing search and fail if there is none (without it, one is continued too).
            sampler_seed: the sampler's seed (default: the space's ``sampler.seed``).
            resources: what each trial may use (default: no limits; the engine decides).

        Returns:
            One record per trial, finished or not, in no particular order.

        Raises:
            InputError: ``resume`` and there is nothing to resume, or ``storage`` cannot be opened.
        """


_REGISTRY: dict[str, str | type[SearchEngine]] = {}


def register_engine(name: str, engine: str | type[SearchEngine]) -> None:
    """Make ``engine`` (a class, or ``"package.module:Class"`` imported on first use) available as ``name``."""
    _REGISTRY[name] = engine


def engine_names() -> tuple[str, ...]:
    """The registered engines' names, in registration order."""
    return tuple(_REGISTRY)


def engine_class(name: str) -> type[SearchEngine]:
    """The engine class registered as ``name``.

    Raises:
        InputError: no engine has that name, or its library is not installed.
    """
    if name not in _REGISTRY:
        raise InputError(f"unknown engine {quote(name)}; choose one of {', '.join(engine_names())}")
    engine = _REGISTRY[name]
    if isinstance(engine, str):
        module, _, attribute = engine.partition(":")
        try:
            engine = getattr(importlib.import_module(module), attribute)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] in ("search", "effdet_graph", "graphspec"):
                raise
            raise InputError(
                f"--engine {name} needs the '{exc.name}' package; install the search extra: pip install -e '.[search]'"
            ) from None
        _REGISTRY[name] = engine
    return engine
