"""Loading search-space files: the built-ins, and one test per error (FILE:LINE:COL, the key, the fix).

As in the spec language, an error about a mapping entry points at its key, one about a list item at the item.
"""

from __future__ import annotations

import re

import pytest
from search_helpers import variant_text

from graphspec import ConfigError
from graphspec.reader import FloatRange, IntRange
from search.space import DatasetConfig, ProxyConfig, SamplerSettings, load_search_space
from search.space.budget import Budget
from search.space.kinds.cells import CellChoices
from search.space.kinds.compound_scaling import CompoundChoices, round_to
from search.space.kinds.edges import EdgeChoices, OptionalEdge


def test_builtin_spaces_load_into_typed_parts(spaces):
    compound, cells, edges = spaces["compound"], spaces["nasfpn_cells"], spaces["bifpn_edges"]
    assert isinstance(compound.choices, CompoundChoices) and compound.template.spec.name == "bifpn"
    assert compound.choices.coefficients["beta"] == FloatRange(1.0, 1.4)
    assert compound.choices.phi == IntRange(0, 3) and compound.choices.solve_for == "gamma"
    assert compound.budget == Budget("detector", 12_000_000, 12_000_000_000)
    assert isinstance(cells.choices, CellChoices) and cells.choices.cells == 7 and cells.template.spec.name == "nasfpn"
    assert cells.choices.detector.resolution == 512 and cells.choices.detector.backbone == "tf_efficientnet_b0"
    assert isinstance(edges.choices, EdgeChoices) and OptionalEdge("P4", "p4_out") in edges.choices.edges
    assert edges.choices.detector.backbone == "efficientnet_lite0"
    for space in spaces.values():
        assert space.sampler == SamplerSettings("tpe", 0)
    assert compound.dataset == cells.dataset == DatasetConfig("synthetic", None, 5)
    assert edges.dataset == DatasetConfig("synthetic", None, 5, images=480)
    assert compound.proxy == ProxyConfig(100, 8, 128)
    assert cells.proxy == ProxyConfig(200, 8, 128, lr=0.15)
    frozen = {"pretrained_backbone": True, "freeze_backbone": True, "feature_cache": True}
    assert edges.proxy == ProxyConfig(800, 8, 128, lr=0.15, scale_range=(0.75, 1.33), **frozen)


def test_rounding_of_the_compound_formulas():
    assert [round_to(8, x) for x in (86.4, 83.9, 84.0, 3.0)] == [88, 80, 88, 8]
    assert [round_to(128, x) for x in (588.8, 575.9, 576.0)] == [640, 512, 640]


def test_budget_numbers_in_yaml_1_1_exponent_form_are_accepted(write_space):
    text = variant_text("nasfpn_cells", "max_macs: 1_000_000_000", "max_macs: 1e9")
    assert load_search_space(write_space("s.yaml", text)).budget.max_macs == 10**9


# (space, old text, new text, message fragments, the token the error must point at)
ERRORS = [
    ("compound", "fusions: [", "fusoins: [", ["unknown key 'fusoins'", "did you mean 'fusions'?"], "fusoins"),
    ("compound", "search: compound", "search: compund", ["`search`", "did you mean 'compound'?"], "search: compund"),
    (
        "compound",
        "  max_params: 12",
        "  max_param: 12",
        ["unknown key 'max_param' in `budget`", "did you mean 'max_params'?"],
        "max_param",
    ),
    (
        "compound",
        "alpha: {low: 1.0, high: 1.4}",
        "alpha: {low: 1.5, high: 1.2}",
        ["`coefficients.alpha`: low 1.5 is greater than high 1.2; swap them"],
        "low: 1.5",
    ),
    ("compound", "phi: {low: 0, high: 3}", "phi: {low: 3, high: 1}", ["`phi`: low 3 is greater than high 1"], "low: 3"),
    (
        "compound",
        "phi: {low: 0, high: 3}",
        "phi: {low: 0, high: 9}",
        ["`phi.high` must be in [0, 8], got 9"],
        "high: 9",
    ),
    (
        "compound",
        "template: bifpn ",
        "template: bifnp ",
        ["unknown built-in template 'bifnp'", "did you mean 'bifpn'?"],
        "template: bifnp",
    ),
    (
        "compound",
        "template: bifpn ",
        "template: ../nowhere/missing.yaml ",
        ["template file", "missing.yaml' not found"],
        "template: ../",
    ),
    (
        "compound",
        "template: bifpn ",
        "template: nasfpn ",
        ["`fusions` needs a template that declares a `fusion`"],
        "fusions:",
    ),
    (
        "compound",
        "tf_efficientnet_b3]",
        "tf_efficientnet_b33]",
        ["`backbones.3`: unknown timm backbone 'tf_efficientnet_b33'", "did you mean"],
        "tf_efficientnet_b33",
    ),
    ("compound", ", tf_efficientnet_b3]", "]", ["`backbones` must list one timm backbone per phi 0..3"], "backbones:"),
    (
        "compound",
        "solve_for: gamma",
        "solve_for: delta",
        ["`constraint.solve_for`: unknown value 'delta'"],
        "solve_for: delta",
    ),
    (
        "compound",
        "  scope: detector",
        "  scope: detectors",
        ["`budget.scope`", "did you mean 'detector'?"],
        "scope: detectors",
    ),
    ("compound", "  steps: 100", "  steps: 0", ["proxy.steps must be at least 1, got 0"], "steps: 0"),
    ("compound", "name: tpe", "name: tpee", ["`sampler.name`", "did you mean 'tpe'?"], "name: tpee"),
    ("compound", "  name: synthetic", "  name: coco", ["a `coco` dataset needs `path`"], "dataset:"),
    ("nasfpn_cells", "cells: 7", "cells: 0", ["`cells` must be in [1, 64], got 0"], "cells: 0"),
    (
        "nasfpn_cells",
        "cells: 7",
        "coefficients: {}\ncells: 7",
        ["unknown key 'coefficients' in a `nasfpn_cells`"],
        "coefficients",
    ),
    (
        "nasfpn_cells",
        "[sum, global_pool_attention]",
        "[sum, global_pool_atention]",
        ["`merges.1`: unknown value 'global_pool_atention'", "did you mean 'global_pool_attention'?"],
        "global_pool_atention",
    ),
    ("nasfpn_cells", "  phi: 0 ", "  phi: x ", ["`detector.phi` must be an integer, got 'x'"], "phi: x"),
    (
        "bifpn_edges",
        "{from: P4, to: p4_out}",
        "{from: P4, to: p4_ot}",
        ["optional edge to 'p4_ot': not in the template", "did you mean 'p4_out'?"],
        "to: p4_ot",
    ),
    ("bifpn_edges", "{from: P4, to: p4_out}", "{from: P44, to: p4_out}", ["optional edge from 'P44'"], "from: P44"),
    (
        "bifpn_edges",
        "{from: P4, to: p4_out}",
        "{from: p4_out, to: p5_td}",
        ["optional edge p4_out -> p5_td always closes the cycle", "with the template's fixed edges"],
        "{from: p4_out",
    ),
    (
        "bifpn_edges",
        "{from: P4, to: p4_out}",
        "{from: P4, to: p4_out, when: always}",
        ["unknown key 'when' in an optional edge"],
        "when: always",
    ),
    (
        "bifpn_edges",
        "{from: P5, to: p5_out}",
        "{from: P4, to: p4_out}",
        ["P4 -> p4_out is a self-loop or listed twice"],
        "{from: P4, to: p4_out}\n  - {from: P6",
    ),
]


def _position(text: str, token: str) -> tuple[int, int]:
    index = text.index(token)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


@pytest.mark.parametrize("name, old, new, fragments, token", ERRORS, ids=[f"{e[0]}:{e[2][:30]}" for e in ERRORS])
def test_errors_name_file_line_column_and_key(write_space, name, old, new, fragments, token):
    text = variant_text(name, old, new)
    path = write_space("space.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_search_space(path)
    message = str(info.value)
    line, column = _position(text, token)
    assert message.startswith(f"{path}:{line}:{column}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message


def test_missing_and_malformed_files(write_space, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.yaml'}: file not found")):
        load_search_space(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"space.yaml:1:1: a search space must be a mapping"):
        load_search_space(write_space("space.yaml", "- just\n- a list\n"))
    with pytest.raises(ConfigError, match=r"space.yaml:1:1: missing required key 'search' in a search space"):
        load_search_space(write_space("space.yaml", "name: x\n"))
