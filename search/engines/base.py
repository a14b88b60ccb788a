"""The interface every search engine implements (``effdet-graph search --engine`` picks one from
:data:`search.engines.ENGINES`).

An engine turns a search space, an evaluate factory and an objective into finished trials: it draws points
(:func:`search.sampling.sample.sample_point`), writes each trial's files (:mod:`search.engines.trial_files`), trains
and evaluates the accepted ones, and returns one :class:`~search.reporting.results.TrialRecord` per trial. The results
folder (leaderboard, best specs, Pareto plot) is then written by :func:`search.reporting.results.write_results`, the
same for every engine.

Trial numbers count from 0 in every engine (Optuna's own trial numbers), and name the trial's folder
``trials/<nnnn>/``, its spec file ``<space>_trial<nnnn>.yaml`` and its leaderboard row.

Engines are registered by name in :data:`search.engines.ENGINES` with the import path of their class, so that
listing them (the command line's ``--engine`` choices) imports neither Optuna nor Ray. How candidates are scored
is a strategy's business (:mod:`search.strategies`), not the engine's.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

from effdet_graph.device import resolve_device
from search.objective import MakeEvaluate
from search.reporting.results import TrialRecord
from search.request import SearchRequest
from search.space.types import SearchSpace


class SearchEngine(abc.ABC):
    """A search engine behind one signature: :meth:`check`, then :meth:`run`.

    Subclasses set :attr:`name` and implement :meth:`run`; they are built without
    arguments (``ENGINES.load(name)()``).
    """

    #: The name ``--engine`` takes.
    name: ClassVar[str]

    def check(self, request: SearchRequest) -> None:
        """Fail on settings of ``request`` this engine cannot use (its storage, device, resources), before the
        results folder, the data set or any trial.

        The default checks ``request.device`` on this machine, where the trials run.

        Raises:
            InputError: with a one-line message naming the option at fault.
        """
        resolve_device(request.device)

    @abc.abstractmethod
    def run(
        self, space: SearchSpace, make_evaluate: MakeEvaluate, results_dir: Path, request: SearchRequest
    ) -> list[TrialRecord]:
        """Run the search, or continue it where a previous call with the same request stopped.

        A trial that raises, or whose objective is NaN, is recorded as failed with its error and the search
        goes on; a point rejected before training (invalid, over budget) is recorded as rejected. Trials
        finished by an earlier call are not run again; ``request.trials`` counts them. The sampler is the
        space's ``sampler`` (its name and seed).

        Args:
            space: the search space (its ``proxy`` and ``sampler`` settings included).
            make_evaluate: makes the :class:`~search.objective.Evaluate` that trains and evaluates a candidate.
            results_dir: the results folder; trial ``n``'s files go to :func:`~search.engines.trial_files.trial_dir`.
            request: the search: its objective, trial count, ``storage`` (where the engine keeps its state; an
                engine-specific location, ``None``: its default), ``study_name`` (default: the space's name for a
                study, the results folder's name for a Ray experiment, so that each ``--out`` folder holds its
                own), ``resume`` (continue an existing search and fail if there is none; without it, one is
                continued too) and ``resources``.

        Returns:
            One record per trial, finished or not, in no particular order.

        Raises:
            InputError: ``resume`` and there is nothing to resume, or ``storage`` cannot be opened.
        """
