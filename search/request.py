"""One search as asked for: :class:`SearchRequest`, which :func:`search.run.run_search`, the strategies and the
engines take, and :class:`TrialResources`, what each trial may use."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from graphspec.errors import InputError, quote
from search.objective import OBJECTIVES, Objective


@dataclass(frozen=True)
class TrialResources:
    """What each trial may use, for engines that run trials side by side (Ray); others ignore it.

    Attributes:
        gpus: GPUs each trial reserves; ``None`` lets the engine decide (Ray: 1 when the cluster has GPUs now).
        max_concurrent: the most trials running at once; ``None``: as many as the resources allow.
    """

    gpus: float | None = None
    max_concurrent: int | None = None


@dataclass(frozen=True)
class SearchRequest:
    """A search: which space, strategy and engine, how many trials of which objective, where its state and results
    go. Every value is checked when it is made (:class:`~graphspec.errors.InputError`, one line naming the option),
    before any folder, data set or trial; the names of the strategy and the engine when :func:`search.run.run_search`
    looks them up.

    Attributes:
        space_file: the search-space file.
        engine: a registered engine's name (:data:`search.engines.ENGINES`).
        strategy: a registered strategy's name (:data:`search.strategies.STRATEGIES`): ``proxy`` (every trial
            trains its candidate) or ``oneshot`` (a supernet trained once; topology spaces only).
        trials: finished trials to reach in all; ``None``: the strategy's ``default_trials``
            (:meth:`with_defaults`).
        objective: a name in :data:`search.objective.OBJECTIVES`; ``None``: the strategy's ``default_objective``.
        results_dir: the results folder; ``None``: ``runs/search/<space name>`` (the strategy may add a suffix).
        storage: the engine's storage (Optuna: a database URL; Ray: a ``storage_path``).
        study_name: the study's or experiment's name in ``storage`` (``None``: the engine's default).
        resume: continue an existing search; fail when there is none.
        smoke_test: a tiny proxy task and data set (CI, a first try).
        seed: the seed of the proxy training (and of the supernet's).
        steps: replaces the space's training steps (``proxy.steps``; ``oneshot.steps`` with ``oneshot``).
        resources: what each trial may use.
        device: the device trials train and measure latency on (``None``: CUDA when present).
        progress: show progress bars (``None``: only when stderr is a terminal).
        retrain: after the search, train the template and this many of the best trials stand-alone (topology
            spaces only; :mod:`search.reporting.retrain`).
        retrain_seeds: trainings of each, seeds 0 to ``retrain_seeds - 1``.
        retrain_steps: their training steps (``None``: the space's ``proxy.steps``).
    """

    space_file: str | Path
    engine: str = "optuna"
    strategy: str = "proxy"
    trials: int | None = None
    objective: str | None = None
    results_dir: str | Path | None = None
    storage: str | None = None
    study_name: str | None = None
    resume: bool = False
    smoke_test: bool = False
    seed: int = 0
    steps: int | None = None
    resources: TrialResources = field(default_factory=TrialResources)
    device: str | None = None
    progress: bool | None = None
    retrain: int = 0
    retrain_seeds: int = 2
    retrain_steps: int | None = None

    def __post_init__(self) -> None:
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise InputError(f"unknown objective {quote(self.objective)}; choose one of {', '.join(OBJECTIVES)}")
        if self.seed < 0:
            raise InputError(f"--seed must be >= 0, got {self.seed}")
        for option, value, low in (
            ("--trials", self.trials, 1),
            ("--gpus-per-trial", self.resources.gpus, 0),
            ("--steps", self.steps, 1),
            ("--retrain", self.retrain, 0),
            ("--retrain-seeds", self.retrain_seeds, 1),
            ("--retrain-steps", self.retrain_steps, 1),
        ):
            if value is not None and value < low:
                raise InputError(f"{option} must be at least {low}, got {value}")

    def with_defaults(self, default_trials: int, default_objective: str) -> SearchRequest:
        """This request with its strategy's trial count and objective where it gives none (what engines take)."""
        return dataclasses.replace(
            self,
            trials=default_trials if self.trials is None else self.trials,
            objective=self.objective or default_objective,
        )

    @property
    def trial_count(self) -> int:
        """The finished trials to reach; only in a request :meth:`with_defaults` filled in."""
        if self.trials is None:
            raise ValueError("the request's trials are not filled in; use request.with_defaults(...)")
        return self.trials

    @property
    def goal(self) -> Objective:
        """The :class:`~search.objective.Objective` optimised; only in a request :meth:`with_defaults` filled in."""
        if self.objective is None:
            raise ValueError("the request's objective is not filled in; use request.with_defaults(...)")
        return OBJECTIVES[self.objective]
