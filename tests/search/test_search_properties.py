"""Property test (hypothesis): for any trial values, a point is a valid, correctly costed spec or a counted
rejection, never another exception; the built-in spaces never need the loader's safety net."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from search_helpers import BUILTIN_SPACES

from graphspec import loads_spec
from graphspec.cost import estimate_cost
from search.sampling.rejection import InvalidPoint, OverBudget, Rejected
from search.sampling.sample import sample_point
from search.sampling.stats import SampleStats
from search.space import SearchSpace, load_search_space

PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
SAFETY_NET = "the sampled spec does not load"
CYCLE_SPACE = """\
search: bifpn_edges
template: bifpn
optional_edges:
  - {from: p4_td, to: p3_out}   # a cycle when both are on
  - {from: p3_out, to: p4_td}
  - {from: p4_td, to: p4_out}   # p4_td is dead when this and the first are off
  - {from: P7, to: p7_out}      # p7_out has no input when both are off
  - {from: p6_out, to: p7_out}
  - {from: P5, to: p5_td}
fusions: [sum, softmax]
proxy: {steps: 1}
budget: {max_macs: 136_000_000}
"""


class DrawnTrial:
    """A define-by-run trial whose values hypothesis draws (any value in range, including the bounds)."""

    def __init__(self, data: st.DataObject, number: int = 0):
        self.data = data
        self.number = number

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self.data.draw(st.integers(low, high), label=name)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return self.data.draw(st.floats(low, high), label=name)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.data.draw(st.sampled_from(list(choices)), label=name)


def check_point(space: SearchSpace, data: st.DataObject, stats: SampleStats) -> None:
    before = (stats.sampled, stats.rejected_invalid, stats.rejected_budget)
    try:
        candidate = sample_point(space, DrawnTrial(data), stats)
    except Rejected as rejection:
        assert isinstance(rejection, (InvalidPoint, OverBudget)) and rejection.suggestions
        assert not rejection.reason.startswith(SAFETY_NET), rejection.reason
        counted = (stats.rejected_invalid - before[1], stats.rejected_budget - before[2])
        assert counted == ((1, 0) if isinstance(rejection, InvalidPoint) else (0, 1))
    else:
        spec = loads_spec(candidate.spec_text, candidate.file_name)
        assert estimate_cost(spec, candidate.in_channels, candidate.detector.resolution).total == candidate.cost
        assert (stats.rejected_invalid, stats.rejected_budget) == before[1:]
    assert stats.sampled == before[0] + 1


@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_builtin_spaces_give_valid_specs_or_counted_rejections(fast_spaces, name):
    stats = SampleStats()

    @PROPERTY
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        check_point(fast_spaces[name], data, stats)

    run()
    assert stats.accepted + stats.rejected_invalid + stats.rejected_budget == stats.sampled > 0


def test_edge_space_with_cycles_gives_valid_specs_or_counted_rejections(write_space):
    space = load_search_space(write_space("cycles.yaml", CYCLE_SPACE))
    stats = SampleStats()

    @settings(PROPERTY, max_examples=60, derandomize=True)  # a fixed set of examples: the counts below are stable
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        check_point(space, data, stats)

    run()
    assert stats.rejected_invalid > 0 and stats.repaired > 0 and stats.accepted > 0
