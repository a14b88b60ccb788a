"""Which candidate each supernet training step trains: one drawn uniformly (single-path one-shot, SPOS: Guo et al.,
ECCV 2020) or fairly (FairNAS: Chu et al., ICCV 2021: every choice of every choice point as often as the others).

A sampler's candidate for step ``s`` is a function of its seed and ``s`` alone, so a resumed training run trains
the same candidates as an uninterrupted one, and no sampler state needs storing. Both draw among every valid point
of the space, the budget not applied: the supernet trains the whole space, as SPOS and FairNAS train theirs, and
the budget is the search's to apply. A candidate is named after its step (``<space>_trial<step>``).

- ``uniform``: step ``s`` trains the first valid point of a random search seeded with (seed, ``s``).
- ``fair``: each choice point (a trial parameter with ``n`` options) runs through its options in a random order,
  a new order every ``n`` steps, seeded with (seed, its name, the cycle): over steps ``[k n, (k + 1) n)`` each
  option is suggested exactly once. Counts are of suggestions: the kinds' repairs (a second input equal to the
  first, cells that feed no output) may change what runs. Where a step's suggestions give no valid network (a
  cycle, a node left without inputs: no built-in space has such points), it trains the uniform sampler's candidate.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from graphspec import ConfigError, InputError, Location
from search.sampling.candidate import Candidate
from search.sampling.rejection import Rejected
from search.sampling.sample import sample_point
from search.sampling.trial import Choice, SeededTrial
from search.space.budget import Budget
from search.space.types import PATH_SAMPLINGS, SearchSpace

T = TypeVar("T")
MAX_DRAWS = 1000
"""Invalid points a uniform draw skips before it gives up on the space."""


class PathSampler(Protocol):
    """The candidate a supernet trains at each step."""

    def candidate(self, step: int) -> Candidate:
        """The candidate of optimizer step ``step`` (0-based)."""
        ...


def make_sampler(space: SearchSpace, sampling: str, seed: int) -> PathSampler:
    """The ``sampling`` sampler (one of :data:`~search.space.types.PATH_SAMPLINGS`) of ``space``, seeded with ``seed``.

    Raises:
        InputError: ``sampling`` is none of :data:`~search.space.types.PATH_SAMPLINGS`.
    """
    if sampling == "uniform":
        return UniformSampler(space, seed)
    if sampling == "fair":
        return FairSampler(space, seed)
    raise InputError(f"sampling must be one of {', '.join(PATH_SAMPLINGS)}, got {sampling!r}")


def unbudgeted(space: SearchSpace) -> SearchSpace:
    """``space`` without its budget: every valid point is a candidate."""
    return dataclasses.replace(space, budget=Budget())


class UniformSampler:
    """Step ``s``: the first valid point of a random search seeded with (``seed``, ``s``)."""

    def __init__(self, space: SearchSpace, seed: int):
        self.space = unbudgeted(space)
        self.seed = seed

    def candidate(self, step: int) -> Candidate:
        """Step ``step``'s candidate.

        Raises:
            ConfigError: :data:`MAX_DRAWS` points in a row give no valid network.
        """
        rng = random.Random(f"uniform/{self.seed}/{step}")
        for _ in range(MAX_DRAWS):
            try:
                return sample_point(self.space, SeededTrial(rng, step))
            except Rejected as rejection:
                reason = rejection.reason
        raise ConfigError(
            f"{MAX_DRAWS} random points in a row give no valid network (the last: {reason}); a supernet trains "
            "the valid points: make the optional edges of the space mostly valid together",
            Location(self.space.file),
        )


class FairSampler:
    """Each choice point cycles through its options in seeded random orders (see the module docstring)."""

    def __init__(self, space: SearchSpace, seed: int):
        self.space = unbudgeted(space)
        self.seed = seed
        self.fallback = UniformSampler(space, seed)

    def candidate(self, step: int) -> Candidate:
        """Step ``step``'s candidate: its scheduled choices, or the uniform sampler's where they are invalid."""
        try:
            return sample_point(self.space, FairTrial(self.seed, step))
        except Rejected:
            return self.fallback.candidate(step)


class FairTrial:
    """The define-by-run trial of step ``number`` of a fair schedule: each suggestion is :func:`fair_choice`."""

    def __init__(self, seed: int, number: int):
        self.seed = seed
        self.number = number

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return fair_choice(self.seed, name, range(low, high + 1, step), self.number)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        raise InputError(f"fair sampling cycles through a parameter's options; {name} is continuous")

    def suggest_categorical(self, name: str, choices: Sequence[Choice]) -> Choice:
        return fair_choice(self.seed, name, choices, self.number)


def fair_choice(seed: int, name: str, choices: Sequence[T], step: int) -> T:
    """The option of choice point ``name`` at ``step``: position ``step % n`` of a random order of its ``n``
    ``choices``, seeded with (``seed``, ``name``, cycle ``step // n``)."""
    cycle, position = divmod(step, len(choices))
    order = random.Random(f"fair/{seed}/{name}/{cycle}").sample(range(len(choices)), len(choices))
    return choices[order[position]]
