"""The built-in specs: they load, match the published topologies, and the compiled networks match the
analytic cost model and give one correctly shaped output per level."""

from __future__ import annotations

import pytest
import yaml

from effdet_graph.builtin import builtin_specs, shown_path, specs_dir
from effdet_graph.cli import main
from graphspec import level_name, load_spec, schedule

# builtin_specs() globs specs/*.yaml; keep the feature-network specs (those with a `cell`), not
# detector configs such as specs/efficientdet.yaml.
SPECS = [p for p in builtin_specs() if "cell" in (yaml.safe_load(p.read_text(encoding="utf-8")) or {})]
SPEC_IDS = [p.stem for p in SPECS]
B0_CHANNELS = [40, 112, 320]  # EfficientNet-B0 at strides 8, 16, 32

# -- published topologies ----------------------------------------------------------------------
# Node numbering of google/automl efficientdet fpn_configs: the cell inputs P3..P7 are 0..4 and each
# new node takes the next id (5, 6, ...). Our specs name nodes; we map them to numbers by position.
#
# BiFPN, P3-P7: EfficientDet (Tan, Pang, Le, CVPR 2020), Figure 2(f); google/automl
# efficientdet/fpn_configs.py bifpn_config: (output level, input node ids) for nodes 5..12.
BIFPN_PUBLISHED = [
    (6, [3, 4]),  # 5
    (5, [2, 5]),  # 6
    (4, [1, 6]),  # 7
    (3, [0, 7]),  # 8
    (4, [1, 7, 8]),  # 9
    (5, [2, 6, 9]),  # 10
    (6, [3, 5, 10]),  # 11
    (7, [4, 11]),  # 12
]
BIFPN_PUBLISHED_OUTPUTS = {3: 8, 4: 9, 5: 10, 6: 11, 7: 12}

# NAS-FPN: Ghiasi, Lin, Le, "NAS-FPN", CVPR 2019, Figure 7(f) (the published 7-merging-cell
# architecture; tensorflow/tpu RetinaNet nasfpn): (output level, op, input ids, residual ids) for
# nodes 5..11. "gp" is global-pool attention, "sum" a plain sum. Output cells P5 and P7 also add the
# same-level cell input that nothing else consumed (the implementations' implicit residual rule).
NASFPN_PUBLISHED = [
    (4, "gp", [1, 3], []),  # 5
    (4, "sum", [1, 5], []),  # 6
    (3, "sum", [0, 6], []),  # 7  output P3
    (4, "sum", [6, 7], []),  # 8  output P4
    (5, "gp", [7, 8], [2]),  # 9  output P5, + residual P5
    (7, "gp", [6, 9], [4]),  # 10 output P7, + residual P7
    (6, "gp", [9, 10], []),  # 11 output P6
]
NASFPN_PUBLISHED_OUTPUTS = {3: 7, 4: 8, 5: 9, 6: 11, 7: 10}


def numbered(spec) -> dict[str, int]:
    """Cell inputs P3..P7 -> 0..4, then the spec's nodes by position -> 5, 6, ..."""
    numbers = {level_name(level): i for i, level in enumerate(spec.levels)}
    numbers.update({node.id: len(spec.levels) + i for i, node in enumerate(spec.nodes)})
    return numbers


def test_the_builtin_specs_are_there():
    assert {"bifpn", "fpn", "panet", "simplified_panet", "fc_fpn", "nasfpn", "qufpn"} <= set(SPEC_IDS)


@pytest.mark.parametrize("path", SPECS, ids=SPEC_IDS)
def test_builtin_spec_loads(path):
    spec = load_spec(path)
    assert spec.name == path.stem and spec.description
    assert spec.backbone_levels == (3, 4, 5) and spec.levels[:3] == (3, 4, 5)
    assert spec.levels == tuple(range(3, spec.levels[-1] + 1)) and spec.levels[-1] >= 7
    assert sorted(spec.outputs) == list(spec.levels)


def test_cli_validates_every_builtin_spec(capsys):
    assert main(["validate", *map(str, SPECS)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(SPECS) and all(line.startswith("ok: ") for line in out)


def test_bifpn_is_the_published_topology():
    spec = load_spec(specs_dir() / "bifpn.yaml")
    ids = numbered(spec)
    assert [(n.level, [ids[r] for r in n.inputs]) for n in spec.nodes] == BIFPN_PUBLISHED
    assert {level: ids[node] for level, node in spec.outputs.items()} == BIFPN_PUBLISHED_OUTPUTS
    assert all(n.merge == "weighted_sum" and n.fusion == "fast_normalized" and not n.residual for n in spec.nodes)
    assert {n.op for n in spec.nodes} == {("swish", "separable_conv", "bn")}
    # D0 (EfficientDet Table 1): width 64, 3 BiFPN layers; P6/P7 made by 3x3/2 max-pool
    assert (spec.width, spec.repeats) == (64, 3)
    assert [(d.level, d.source, d.downsample) for d in spec.derived] == [(6, 5, "max_pool"), (7, 6, "max_pool")]


def test_nasfpn_is_the_published_topology():
    spec = load_spec(specs_dir() / "nasfpn.yaml")
    ids = numbered(spec)
    ops = {("global_pool_attention", "sum"): "gp", ("weighted_sum", "sum"): "sum"}
    got = [
        (
            n.level,
            ops[n.merge, n.fusion] if n.merge == "weighted_sum" else ops[n.merge, "sum"],
            [ids[r] for r in n.inputs],
            [ids[r] for r in n.residual],
        )
        for n in spec.nodes
    ]
    assert got == NASFPN_PUBLISHED
    assert {level: ids[node] for level, node in spec.outputs.items()} == NASFPN_PUBLISHED_OUTPUTS
    assert {n.op for n in spec.nodes} == {("relu", "conv", "bn")}
    assert (spec.width, spec.repeats) == (256, 7)  # 7 stacked cells at 256 channels (NAS-FPN 7@256)


@pytest.mark.parametrize("path", SPECS, ids=SPEC_IDS)
def test_schedule_is_a_topological_order(path):
    spec = load_spec(path)
    order = schedule(spec)
    assert sorted(order) == sorted(n.id for n in spec.nodes)
    done = {level_name(level) for level in spec.levels}
    for node_id in order:
        node = spec.node_by_id[node_id]
        assert set(node.inputs + node.residual) <= done, f"{node_id} runs before one of its inputs"
        done.add(node_id)
    # ties are broken by the written order; every built-in spec is written in a valid order
    assert order == [n.id for n in spec.nodes]


@pytest.mark.parametrize("width", [32, 64, 96])
@pytest.mark.parametrize("path", SPECS, ids=SPEC_IDS)
def test_cost_model_matches_the_built_network(path, width, check_network):
    spec = load_spec(path, {"width": width})
    m = check_network(spec, B0_CHANNELS, (128, 128))
    assert m.cost_params > 0 and m.cost_macs > 0


@pytest.mark.parametrize("image_hw", [(128, 128), (100, 75)], ids=["128x128", "100x75"])
@pytest.mark.parametrize("path", SPECS, ids=SPEC_IDS)
def test_output_shapes_per_level(path, image_hw, check_network):
    # 100x75 is not divisible by 2**7: the levels are ceil-halved, P3-P7: 13x10, 7x5, 4x3, 2x2, 1x1.
    # check_network asserts (N, width, ceil(H/2^l), ceil(W/2^l)) for every level and the cost model.
    spec = load_spec(path, {"width": 32, "repeats": 2})
    m = check_network(spec, B0_CHANNELS, image_hw, batch=2)
    expected = {
        (128, 128): [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)],
        (100, 75): [(13, 10), (7, 5), (4, 3), (2, 2), (1, 1)],
    }[image_hw]
    assert [tuple(x.shape) for x in m.outputs[:5]] == [(2, 32, *hw) for hw in expected]
    assert len(m.outputs) == len(spec.levels)


def test_shown_path_names_a_builtin_spec_relative_to_the_project(tmp_path, monkeypatch):
    """A file written for the user (a search candidate's header) names a built-in spec the same way wherever
    the clone lies; any other path as it was given."""
    assert shown_path(specs_dir() / "search" / "bifpn_edges.yaml") == "specs/search/bifpn_edges.yaml"
    monkeypatch.chdir(specs_dir().parent)
    assert shown_path("specs/bifpn.yaml") == "specs/bifpn.yaml"
    monkeypatch.chdir(tmp_path)
    assert shown_path("my_space.yaml") == "my_space.yaml"
    assert shown_path(tmp_path / "my_space.yaml") == str(tmp_path / "my_space.yaml")
