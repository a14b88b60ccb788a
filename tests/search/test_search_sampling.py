"""Sampling: candidates are complete spec files that load, compile, rebuild with the command line and cost
what the candidate says; repairs and rejections are deterministic and counted."""

from __future__ import annotations

import contextlib
import io
import json

import optuna
import pytest
import torch
from optuna.trial import FixedTrial
from search_helpers import B0_CHANNELS, BUILTIN_SPACES, variant_text

from effdet_graph.cli import main as cli_main
from effdet_graph.fpn.compiler import compile_spec
from effdet_graph.model.detector import EfficientDet
from effdet_graph.model.scaling import scale_spec
from graphspec import loads_spec
from graphspec.cost import estimate_cost
from search.sampling.candidate import Candidate
from search.sampling.rejection import InvalidPoint, Rejected
from search.sampling.sample import sample_point
from search.sampling.stats import SampleStats
from search.space import SearchSpace, load_search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def random_candidates(space: SearchSpace, count: int, seed: int = 0) -> list[Candidate]:
    """The first ``count`` accepted candidates of a seeded random search."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found: list[Candidate] = []
    while len(found) < count:
        trial = study.ask()
        with contextlib.suppress(Rejected):
            found.append(sample_point(space, trial))
    return found


@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_candidates_load_compile_and_cost_what_they_say(fast_spaces, name):
    for candidate in random_candidates(fast_spaces[name], 4):
        spec = loads_spec(candidate.spec_text, candidate.file_name)
        assert spec == candidate.spec()
        assert loads_spec(candidate.spec_text, candidate.file_name, candidate.overrides) == spec
        assert spec.params == candidate.overrides
        resolution = candidate.detector.resolution
        assert estimate_cost(spec, candidate.in_channels, resolution).total == candidate.cost
        if candidate.detector.backbone == "tf_efficientnet_b0":
            assert candidate.in_channels == tuple(B0_CHANNELS)
        network = compile_spec(spec, B0_CHANNELS)
        assert sum(p.numel() for p in network.parameters()) == estimate_cost(spec, B0_CHANNELS, resolution).total.params
        assert candidate.spec_text.startswith(f"# Candidate of search space '{name}'")
        assert f"trial {candidate.trial_number}." in candidate.spec_text.splitlines()[0]


@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_effdet_graph_build_rebuilds_a_candidate(fast_spaces, tmp_path, name):
    candidate = random_candidates(fast_spaces[name], 1, seed=3)[0]
    path = tmp_path / candidate.file_name
    path.write_text(candidate.spec_text, encoding="utf-8")
    channels = ",".join(map(str, candidate.in_channels))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["build", str(path), "--json", "--input-size", "128", "--in-channels", channels]) == 0
    assert json.loads(out.getvalue())["params"] == candidate.cost.params


def test_detector_config_rebuilds_the_candidate_detector(fast_spaces, tmp_path):
    candidate = random_candidates(fast_spaces["compound"], 1, seed=5)[0]
    path = tmp_path / candidate.file_name
    path.write_text(candidate.spec_text, encoding="utf-8")
    config = candidate.detector_config()
    assert scale_spec(path, config) == loads_spec(candidate.spec_text, str(path))
    assert (config.resolution, config.head.depth, config.backbone) == (
        candidate.detector.resolution,
        candidate.detector.head.depth,
        candidate.detector.backbone,
    )
    with torch.device("meta"):
        model = EfficientDet(candidate.spec(), config)
    assert model.class_head is not None and model.spec.width == candidate.overrides["width"]


# -- repairs and rejections, driven by fixed trial values -------------------------------------------
def cell_values(cells: list[tuple[str, str, str, str]]) -> dict[str, str]:
    """Trial values for NAS-FPN cells given as (level, input0, input1, merge)."""
    values = {}
    for i, (level, first, second, merge) in enumerate(cells):
        values |= {f"c{i}.level": level, f"c{i}.input0": first, f"c{i}.input1": second, f"c{i}.merge": merge}
    return values


def test_cells_repairs_equal_inputs_missing_levels_and_dead_cells(spaces):
    space = spaces["nasfpn_cells"]
    values = cell_values(
        [
            ("P4", "P4", "P4", "sum"),  # equal inputs -> second becomes the latest other: P7
            ("P3", "c0", "P3", "global_pool_attention"),
            ("P6", "P3", "P5", "sum"),  # dead: P6 is produced again by c5
            ("P5", "c1", "c0", "sum"),
            ("P4", "c1", "c3", "sum"),
            ("P6", "c4", "P7", "global_pool_attention"),
            ("P4", "c5", "c4", "sum"),
        ]
    )  # no cell produces P7 -> filled from P6's c5
    stats = SampleStats()
    candidate = sample_point(space, FixedTrial(values, number=7), stats)
    assert candidate.repairs == (
        "c0: both inputs were P4; the second is now P7",
        "no cell produced P7: p7_fill resamples c5",
        "dropped c2: they feed no output",
    )
    spec = candidate.spec()
    assert spec.outputs == {3: "c1", 4: "c6", 5: "c3", 6: "c5", 7: "p7_fill"}
    by_id = spec.node_by_id
    assert by_id["c0"].inputs == ("P4", "P7") and "c2" not in by_id
    assert by_id["c5"].merge == "global_pool_attention" and by_id["c3"].fusion == "sum"
    assert by_id["p7_fill"].inputs == ("c5",) and by_id["p7_fill"].op == ("relu", "conv", "bn")
    assert (stats.sampled, stats.repaired, stats.rejected_invalid, stats.rejected_budget) == (1, 1, 0, 0)
    assert "# Repair: c0: both inputs were P4" in candidate.spec_text


def test_cells_fill_ties_take_the_finer_level(spaces):
    values = cell_values([("P3", "P3", "P4", "sum")] + [("P5", "P5", "c0", "sum")] * 6)  # P4 between P3 and P5
    spec = sample_point(spaces["nasfpn_cells"], FixedTrial(values)).spec()
    assert spec.node_by_id["p4_fill"].inputs == ("c0",)
    assert spec.node_by_id["p7_fill"].inputs == ("c6",) and spec.node_by_id["p6_fill"].inputs == ("c6",)


EDGE_SPACE = """\
search: bifpn_edges
template: bifpn
optional_edges:
  - {from: p4_td, to: p3_out}   # with the next one: a cycle when both are on
  - {from: p3_out, to: p4_td}
  - {from: p4_td, to: p4_out}   # p4_td feeds no output when this and the first are off
  - {from: P7, to: p7_out}      # p7_out has no input when this and the next are off
  - {from: p6_out, to: p7_out}
fusions: [sum]
proxy: {steps: 1}
budget: {}
"""


@pytest.fixture(scope="module")
def edge_space(tmp_path_factory) -> SearchSpace:
    path = tmp_path_factory.mktemp("edges") / "edges.yaml"
    path.write_text(EDGE_SPACE, encoding="utf-8")
    return load_search_space(path)


def edge_values(edges: list[bool], fusion: str = "sum") -> dict[str, object]:
    names = ["edge.p4_td->p3_out", "edge.p3_out->p4_td", "edge.p4_td->p4_out", "edge.P7->p7_out", "edge.p6_out->p7_out"]
    nodes = ["p6_td", "p5_td", "p4_td", "p3_out", "p4_out", "p5_out", "p6_out", "p7_out"]
    return dict(zip(names, edges)) | {f"fusion.{node}": fusion for node in nodes}


def test_edge_space_fixture_has_the_edges_of_the_test(edge_space):
    assert [edge.name for edge in edge_space.choices.edges] == list(edge_values([True] * 5))[:5]


def test_edges_reject_cycles_and_nodes_without_inputs_and_drop_dead_nodes(edge_space):
    stats = SampleStats()
    cycle = r"the edges form a cycle (p4_td -> p3_out -> p4_td|p3_out -> p4_td -> p3_out)"
    with pytest.raises(InvalidPoint, match=cycle):
        sample_point(edge_space, FixedTrial(edge_values([True, True, True, True, True])), stats)
    with pytest.raises(InvalidPoint, match=r"node p7_out lost every input") as info:
        sample_point(edge_space, FixedTrial(edge_values([True, False, True, False, False])), stats)
    assert info.value.suggestions["edge.P7->p7_out"] is False and info.value.kind == "invalid"
    candidate = sample_point(edge_space, FixedTrial(edge_values([False, True, False, True, True])), stats)
    assert candidate.repairs == ("dropped p4_td: they feed no output",)
    spec = candidate.spec()
    assert "p4_td" not in spec.node_by_id and spec.node_by_id["p3_out"].inputs == ("P3",)
    assert spec.node_by_id["p4_out"].inputs == ("P4", "p3_out") and spec.node_by_id["p4_out"].fusion == "sum"
    plain = sample_point(edge_space, FixedTrial(edge_values([True, False, True, True, True])), stats)
    assert plain.repairs == ()
    assert [node.inputs for node in plain.spec().nodes] == [node.inputs for node in edge_space.template.spec.nodes]
    assert (stats.sampled, stats.repaired, stats.rejected_invalid, stats.rejected_budget) == (4, 1, 2, 0)
    assert stats.accepted == 2


def test_compound_repairs_points_off_the_constraint_and_rejects_unreachable_ones(fast_spaces, write_space):
    space = fast_spaces["compound"]
    on = sample_point(space, FixedTrial({"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "phi": 2, "fusion": "sum"}))
    assert on.repairs == ()  # 1.2 * 1.1^2 * 1.15^2 = 1.92, within 0.1 of 2
    assert (on.overrides["width"], on.overrides["repeats"], on.overrides["fusion"]) == (80, 4, "sum")
    assert (on.detector.head.depth, on.detector.resolution, on.detector.backbone) == (4, 640, "tf_efficientnet_b2")
    off = sample_point(space, FixedTrial({"alpha": 1.3, "beta": 1.2, "gamma": 1.3, "phi": 1, "fusion": "sum"}))
    assert off.repairs == ("alpha * beta^2 * gamma^2 = 3.1637 is off 2.0 by more than 0.1: gamma 1.3000 -> 1.0336",)
    assert off.detector.resolution == 512  # 512 * 1.0336 -> 529 -> nearest multiple of 128
    with pytest.raises(
        InvalidPoint,
        match=r"= 2\.7440 is off 2\.0 by more than 0\.1, and meeting it needs gamma = "
        r"0\.8537, outside \[1\.0, 1\.4\]",
    ):
        sample_point(space, FixedTrial({"alpha": 1.4, "beta": 1.4, "gamma": 1.0, "phi": 1, "fusion": "sum"}))
    strict = load_search_space(
        write_space(
            "strict.yaml",
            variant_text("compound", "  solve_for: gamma ", "  # no solve_for ").replace(
                "scope: detector", "scope: feature_network"
            ),
        )
    )
    with pytest.raises(InvalidPoint, match=r"= 3\.1637 is off 2\.0 by more than 0\.1$"):
        sample_point(strict, FixedTrial({"alpha": 1.3, "beta": 1.2, "gamma": 1.3, "phi": 1, "fusion": "sum"}))
