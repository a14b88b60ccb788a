"""The interface every search strategy implements, and the registry ``--strategy`` picks from.

A strategy decides how a search scores its candidates: it checks the space it is given, does its once-per-search
work (a shared feature cache, a supernet's training) and returns the factory of the evaluate each trial calls. The
engine then draws the points and runs the trials, the same for every strategy.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

from search.objective import MakeEvaluate
from search.request import SearchRequest
from search.space.types import SearchSpace


class SearchStrategy(abc.ABC):
    """How candidates are scored: :meth:`check`, then :meth:`prepare`. Built without arguments
    (``STRATEGIES.load(name)()``)."""

    #: The name ``--strategy`` takes.
    name: ClassVar[str]
    #: The objective and trial count where none is given.
    default_objective: ClassVar[str]
    default_trials: ClassVar[int]
    #: Added to the space's name for the default results folder (``runs/search/<space><suffix>``).
    results_suffix: ClassVar[str] = ""

    def check(self, space: SearchSpace) -> None:
        """Fail on a space this strategy cannot search, before the results folder or the data set is made. The
        default accepts every space.

        Raises:
            ConfigError: naming the space file.
        """
        return None

    @abc.abstractmethod
    def with_steps(self, space: SearchSpace, steps: int) -> SearchSpace:
        """``space`` with ``steps`` training steps (``--steps``: the steps of what this strategy trains)."""

    @abc.abstractmethod
    def prepare(self, space: SearchSpace, request: SearchRequest, data: Path, results_dir: Path) -> MakeEvaluate:
        """Do the work shared by every trial and return what makes each trial's evaluate.

        Args:
            space: the (checked) space.
            request: the search.
            data: the data set folder (train/ and val/).
            results_dir: the search's results folder.

        Returns:
            A picklable factory of the evaluate (an engine may call it in another process or machine).
        """
