"""Budgets no candidate of a space can meet, found when the space loads (before any folder or trial).

Deciding it exactly would mean costing every point; instead a few *floors* are costed, each a cost that every
candidate of some part of the space reaches or exceeds, and together covering the space:

- compound: per phi and fusion, the point with every coefficient at its low end
  (:meth:`~search.space.kinds.compound_scaling.CompoundChoices.smallest_drafts`);
- topology kinds with the budget on the whole detector: the backbone and heads alone (the detector's cost without
  its feature network; the topology changes neither);
- topology kinds with the budget on the feature network: nothing cheap is sound (any edge or cell may be dropped),
  so nothing is refused.

If no floor meets the budget, no candidate does, and the space is refused naming the bound at fault. Floors are
costed in order and the check stops at the first that meets the budget: the built-in spaces cost one each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from effdet_graph import DetectorConfig
from effdet_graph.model import feature_network_cost, whole_detector_cost
from graphspec import Spec, SpecError, loads_spec
from graphspec.cost import Cost
from graphspec.reader import Reader
from search.sampling.candidate import Draft
from search.sampling.spec_text import render_spec_text
from search.space.budget import Budget
from search.space.detector import spec_params
from search.space.kinds.compound_scaling import CompoundChoices

if TYPE_CHECKING:
    from search.space.types import SearchSpace


@dataclass(frozen=True)
class Floor:
    """A cost no candidate of part of the space goes below; ``what`` says which part, to follow "the detector"
    or "the feature network" in a message (``at phi 0 with every coefficient at its low end``)."""

    what: str
    cost: Cost


def floors(space: SearchSpace) -> Iterator[Floor | None]:
    """The floors of ``space``'s budget scope (see the module docstring); none where nothing cheap is sound, and
    ``None`` for a part that cannot be costed (then nothing may be decided)."""
    whole_detector = space.budget.whole_detector
    if isinstance(space.choices, CompoundChoices):
        fixed: dict[int, Cost] = {}  # per phi: the detector's cost but its feature network's (the same for any fusion)
        for shown, draft in space.choices.smallest_drafts(space.template):
            spec = _spec(space, draft)
            if spec is None:
                yield None
                return
            cost, _ = feature_network_cost(spec, draft.detector)
            if whole_detector:
                phi = draft.detector.phi
                if phi not in fixed:
                    fixed[phi] = _without_network(spec, draft.detector, cost)
                cost = Cost(fixed[phi].params + cost.params, fixed[phi].macs + cost.macs)
            yield Floor(f"at {shown} with every coefficient at its low end", cost)
    elif whole_detector:
        draft = Draft(spec_params(space.template.spec, space.choices.detector.phi, {}), space.choices.detector)
        spec = _spec(space, draft)
        if spec is not None:
            network, _ = feature_network_cost(spec, draft.detector)
            yield Floor(
                f"counting only its backbone and heads ({draft.detector.backbone}, phi {draft.detector.phi})",
                _without_network(spec, draft.detector, network),
            )


def _without_network(spec: Spec, detector: DetectorConfig, network: Cost) -> Cost:
    """The whole detector's cost less its feature network's (``network``): the backbone and heads."""
    whole = whole_detector_cost(spec, detector)
    return Cost(whole.params - network.params, whole.macs - network.macs)


def _spec(space: SearchSpace, draft: Draft) -> Spec | None:
    """The spec of ``draft`` (the template's cell), or ``None`` where it does not load."""
    try:
        text = render_spec_text(space.template.data, f"{space.name}_floor", "", draft.params, None)
        return loads_spec(text, "floor.yaml")
    except SpecError:
        return None


def _meets(budget: Budget, cost: Cost) -> tuple[bool, bool]:
    """Whether ``cost`` meets the params bound and the MACs bound."""
    return (
        budget.max_params is None or cost.params <= budget.max_params,
        budget.max_macs is None or cost.macs <= budget.max_macs,
    )


def check_budget_reachable(reader: Reader, space: SearchSpace) -> None:
    """Refuse a budget that no candidate of ``space`` can meet (see the module docstring).

    Args:
        reader: The space file's reader (for the error's location).
        space: The loaded space.

    Raises:
        ConfigError: At ``budget.max_params`` or ``budget.max_macs`` (or ``budget`` where each floor breaks
            a different bound), saying what the smallest candidates cost.
    """
    budget = space.budget
    if budget.max_params is None and budget.max_macs is None:
        return
    seen: list[Floor] = []
    for floor in floors(space):
        if floor is None:
            return
        if all(_meets(budget, floor.cost)):
            return
        seen.append(floor)
    if not seen:
        return
    scope = budget.scope.replace("_", " ")
    bounds = (("max_params", budget.max_params, "params"), ("max_macs", budget.max_macs, "MACs"))
    for index, (key, bound, unit) in enumerate(bounds):
        if all(not _meets(budget, floor.cost)[index] for floor in seen):
            smallest = min(seen, key=lambda floor: floor.cost.params if index == 0 else floor.cost.macs)
            value = smallest.cost.params if index == 0 else smallest.cost.macs
            raise reader.fail(
                f"`budget.{key}` {bound:,}: no candidate of the space can meet it: even the {scope} "
                f"{smallest.what} has {value:,} {unit}; raise the bound or make the space smaller",
                ("budget", key),
            )
    costs = "; ".join(f"{f.what}: {f.cost.params:,} params, {f.cost.macs:,} MACs" for f in seen)
    raise reader.fail(
        f"`budget`: no candidate of the space meets both `max_params` {budget.max_params:,} and `max_macs` "
        f"{budget.max_macs:,}: the least each part of the space costs ({scope}): {costs}",
        ("budget",),
    )
