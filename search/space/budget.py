"""Params / MACs budgets, checked before any training, on one scope: the feature network or the whole detector.

The scope is decided here once: :meth:`Budget.cost` is what a candidate costs on it, for the budget check, the
feasibility floors and the retraining's size limit alike. The counting itself is
:func:`effdet_graph.model.cost.feature_network_cost` (analytic, microseconds) and
:func:`~effdet_graph.model.cost.whole_detector_cost` (each distinct detector counted once).
"""

from __future__ import annotations

from dataclasses import dataclass

from effdet_graph import DetectorConfig
from effdet_graph.model import feature_network_cost, whole_detector_cost
from graphspec import Spec
from graphspec.cost import Cost
from graphspec.reader import Reader
from search.sampling.rejection import OverBudget
from search.space.schema import BUDGET_KEYS

SCOPES = ("feature_network", "detector")


@dataclass(frozen=True)
class Budget:
    """Upper bounds on params and MACs (``None``: no bound) of the ``scope`` part."""

    scope: str = "feature_network"
    max_params: int | None = None
    max_macs: int | None = None

    @property
    def whole_detector(self) -> bool:
        """Whether the budget bounds the whole detector (else the feature network alone)."""
        return self.scope == "detector"

    def cost(self, spec: Spec, detector: DetectorConfig) -> Cost:
        """Params and MACs of ``spec`` in ``detector`` on this budget's scope."""
        return whole_detector_cost(spec, detector) if self.whole_detector else feature_network_cost(spec, detector)[0]

    def check(self, cost: Cost) -> None:
        """Raise :class:`OverBudget` if ``cost`` exceeds a bound."""
        over = [
            f"{what} {value:,} > {limit:,}"
            for what, value, limit in (("params", cost.params, self.max_params), ("MACs", cost.macs, self.max_macs))
            if limit is not None and value > limit
        ]
        if over:
            raise OverBudget(
                f"{self.scope.replace('_', ' ')} over budget: {'; '.join(over)}", self.scope, cost.params, cost.macs
            )

    def enforce(
        self, spec: Spec, detector: DetectorConfig, feature_cost: Cost, detector_cost: Cost | None = None
    ) -> Cost | None:
        """Check the budget on its scope; raise :class:`OverBudget`, or return the whole detector's cost where the
        scope is the detector (``None`` otherwise: ``feature_cost`` was checked). ``detector_cost``: the whole
        detector's cost where it is already known, so it is not counted again."""
        if not self.whole_detector:
            self.check(feature_cost)
            return None
        cost = detector_cost or whole_detector_cost(spec, detector)
        self.check(cost)
        return cost


def read_budget(reader: Reader) -> Budget:
    """The ``budget`` section: ``scope`` (default ``feature_network``), ``max_params``, ``max_macs``."""
    reader.mapping(("budget",), BUDGET_KEYS, "`budget`")
    scope = reader.choice(("budget", "scope"), SCOPES, default=SCOPES[0])
    return Budget(scope, _bound(reader, "max_params"), _bound(reader, "max_macs"))


def _bound(reader: Reader, key: str) -> int | None:
    bound = reader.number(("budget", key), low=1, default=None)
    return None if bound is None else int(bound)
