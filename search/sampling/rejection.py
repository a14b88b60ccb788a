"""Typed rejections: a sampled point that is no valid network, or one over the params / MACs budget.

The engine records them (with Optuna it raises ``optuna.TrialPruned`` from them); they are not
:class:`graphspec.InputError`: the user's files are fine, the sampled point is not.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Rejected(Exception):
    """A sampled point that will not be trained. ``reason`` is one line; ``suggestions`` holds the
    trial's values by name (filled in by :func:`search.sampling.sample.sample_point`)."""

    kind: ClassVar[str] = "rejected"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.suggestions: dict[str, Any] = {}


class InvalidPoint(Rejected):
    """The point gives no valid spec and no deterministic repair exists (e.g. a cycle)."""

    kind = "invalid"


class OverBudget(Rejected):
    """The point's network exceeds the budget; ``params`` and ``macs`` are what was measured."""

    kind = "budget"

    def __init__(self, reason: str, scope: str, params: int, macs: int):
        super().__init__(reason)
        self.scope = scope
        self.params = params
        self.macs = macs
