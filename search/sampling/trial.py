"""The define-by-run interface a sampler drives, a wrapper that records what it suggested, and a trial that
draws every value at random (random search without a search library).

``optuna.trial.Trial`` satisfies :class:`TrialLike`, and so does the wrapper Ray Tune's
``OptunaSearch`` hands a define-by-run function (it forwards attribute access to an optuna trial).
Nothing here imports optuna.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

Choice = None | bool | int | float | str  # what Optuna accepts as a categorical choice


@runtime_checkable
class TrialLike(Protocol):
    """What :func:`search.sampling.sample.sample_point` needs of a trial: Optuna's define-by-run calls and a number."""

    @property
    def number(self) -> int: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Sequence[Choice]) -> Choice: ...


class RecordingTrial:
    """Forwards the ``suggest_*`` calls to ``trial`` and keeps every value by name, in call order."""

    def __init__(self, trial: TrialLike):
        self.trial = trial
        self.values: dict[str, Any] = {}

    @property
    def number(self) -> int:
        return self.trial.number

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._keep(name, self.trial.suggest_int(name, low, high, step=step, log=log))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return self._keep(name, self.trial.suggest_float(name, low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Choice]) -> Choice:
        return self._keep(name, self.trial.suggest_categorical(name, choices))

    def _keep(self, name: str, value: Any) -> Any:
        self.values[name] = value
        return value


class SeededTrial:
    """A define-by-run trial drawing every value uniformly from ``rng`` (random search); ``number`` is its
    trial number."""

    def __init__(self, rng: random.Random, number: int):
        self.rng = rng
        self.number = number

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self.rng.randrange(low, high + 1, step)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return self.rng.uniform(low, high)

    def suggest_categorical(self, name: str, choices: Sequence[Choice]) -> Choice:
        return self.rng.choice(list(choices))
