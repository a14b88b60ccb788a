"""Named parameters: ``params`` defaults, ``$name`` references and ``--set KEY=VALUE`` overrides."""

from __future__ import annotations

import pytest

from effdet_graph.builtin import specs_dir
from effdet_graph.cli import main
from effdet_graph.fpn.compiler import compile_spec
from graphspec import SpecError, load_spec, loads_spec, parse_assignments

B0_CHANNELS = [40, 112, 320]

PARAM_SPEC = """\
name: typed_params
params:
  width: 16          # int
  repeats: 2         # int
  fusion: softmax    # str
  act: swish         # str, used inside a list
  eps: 1.0e-3        # float
  momentum: 0.01     # float
  bias: true         # bool
  down: max_pool     # str, used in a derived level
width: $width
inputs:
  backbone: [P3, P4]
  derived:
    - {level: P5, from: P4, downsample: $down}
defaults:
  fusion: $fusion
  op: [$act, separable_conv, bn]
  conv_bias: $bias
  bn_eps: $eps
  bn_momentum: $momentum
cell:
  repeats: $repeats
  nodes:
    - {id: p4_td, level: P4, inputs: [P4, P5]}
    - {id: p3_out, level: P3, inputs: [P3, p4_td]}
    - {id: p4_out, level: P4, inputs: [P4, p4_td, p3_out]}
    - {id: p5_out, level: P5, inputs: [P5, p4_out]}
  outputs: {P3: p3_out, P4: p4_out, P5: p5_out}
"""


# -- parse_assignments (what --set does with its text) ---------------------------------------------
def test_parse_assignments_reads_yaml_scalars():
    parsed = parse_assignments(
        [
            "width=160",
            "fusion=sum",
            "flag=true",
            "off=false",
            "ratio=0.5",
            "eps=1.0e-3",
            "quoted='5'",
            "empty=",
            " spaced = 7 ",
            "expr=a=b",
            "neg=-3",
        ]
    )
    assert parsed == {
        "width": 160,
        "fusion": "sum",
        "flag": True,
        "off": False,
        "ratio": 0.5,
        "eps": 1.0e-3,
        "quoted": "5",
        "empty": "",
        "spaced": 7,
        "expr": "a=b",
        "neg": -3,
    }
    assert [type(parsed[k]) for k in ("width", "fusion", "flag", "ratio", "quoted")] == [int, str, bool, float, str]


def test_parse_assignments_later_wins():
    assert parse_assignments(["width=8", "width=16"]) == {"width": 16}


def test_parse_assignments_follows_yaml_1_1():
    # PyYAML resolves YAML 1.1 scalars: yes/on are booleans, a float needs a dot ("1e-3" stays a string).
    assert parse_assignments(["a=yes", "b=on", "c=1e-3", "d=0x10"]) == {"a": True, "b": True, "c": "1e-3", "d": 16}


@pytest.mark.parametrize(
    "text, words",
    [
        ("width", "--set expects KEY=VALUE, got 'width'"),
        ("=5", "--set expects KEY=VALUE, got '=5'"),
        ("x=[1, 2]", "--set x: the value must be a number, a string or a boolean, got '[1, 2]'"),
        ("x={a: 1}", "--set x: the value must be a number, a string or a boolean, got '{a: 1}'"),
        ("x=null", "--set x: the value must be a number, a string or a boolean, got 'null'"),
    ],
)
def test_parse_assignments_rejects(text, words):
    with pytest.raises(SpecError) as info:
        parse_assignments([text])
    assert str(info.value) == words


# -- defaults and overrides ------------------------------------------------------------------------
def test_defaults_are_used_without_overrides():
    spec = loads_spec(PARAM_SPEC, "p.yaml")
    assert spec.params == {
        "width": 16,
        "repeats": 2,
        "fusion": "softmax",
        "act": "swish",
        "eps": 1.0e-3,
        "momentum": 0.01,
        "bias": True,
        "down": "max_pool",
    }
    assert (spec.width, spec.repeats, spec.conv_bias) == (16, 2, True)
    assert {n.fusion for n in spec.nodes} == {"softmax"}
    assert {n.op for n in spec.nodes} == {("swish", "separable_conv", "bn")}
    assert (spec.batch_norm.eps, spec.batch_norm.momentum) == (1.0e-3, 0.01)
    assert spec.derived[0].downsample == "max_pool"


def test_overrides_change_every_use():
    spec = loads_spec(
        PARAM_SPEC,
        "p.yaml",
        {"width": 24, "repeats": 3, "fusion": "sum", "act": "relu", "eps": 0.5, "bias": False, "down": "conv"},
    )
    assert (spec.width, spec.repeats, spec.conv_bias, spec.batch_norm.eps) == (24, 3, False, 0.5)
    assert {n.fusion for n in spec.nodes} == {"sum"}
    assert {n.op for n in spec.nodes} == {("relu", "separable_conv", "bn")}  # $name inside a list
    assert spec.derived[0].downsample == "conv"
    assert spec.params["width"] == 24 and spec.params["momentum"] == 0.01  # untouched defaults stay


def test_exponent_without_a_dot_is_a_float_override():
    spec = loads_spec(PARAM_SPEC, "p.yaml", parse_assignments(["eps=1e-3"]))  # YAML 1.1 reads a string
    assert spec.params["eps"] == 1e-3


def test_int_override_of_a_float_param_is_coerced():
    spec = loads_spec(PARAM_SPEC, "p.yaml", parse_assignments(["eps=1", "momentum=1"]))
    assert type(spec.params["eps"]) is float and spec.params["eps"] == 1.0
    assert type(spec.batch_norm.momentum) is float and spec.batch_norm.momentum == 1.0


@pytest.mark.parametrize(
    "assignment, expected",
    [
        ("width=16.0", "--set width=16.0: expected an integer like the default 16"),  # no float -> int
        ("repeats=true", "--set repeats=True: expected an integer like the default 2"),  # bool is not an int
        ("bias=1", "--set bias=1: expected a boolean like the default True"),  # int is not a bool
        ("fusion=3", "--set fusion=3: expected a string like the default 'softmax'"),
        ("eps=yes", "--set eps=True: expected a number like the default 0.001"),
        ("eps=fast", "--set eps='fast': expected a number like the default 0.001"),
    ],
)
def test_override_types_must_match_the_default(assignment, expected):
    with pytest.raises(SpecError) as info:
        loads_spec(PARAM_SPEC, "p.yaml", parse_assignments([assignment]))
    assert str(info.value) == f"p.yaml: {expected}"


def test_override_of_an_undeclared_param():
    with pytest.raises(SpecError) as info:
        loads_spec(PARAM_SPEC, "p.yaml", {"repeat": 4})
    assert str(info.value).startswith(
        "p.yaml: --set repeat: the spec has no parameter 'repeat'; did you mean "
        "'repeats'? (valid: width, repeats, fusion, act, eps, momentum, bias, down)"
    )
    no_params = PARAM_SPEC.split("width: $width\n")[1]
    no_params = "width: 16\n" + no_params.replace("$fusion", "sum").replace("$act", "swish").replace(
        "$bias", "true"
    ).replace("$eps", "1.0e-3").replace("$momentum", "0.01").replace("$repeats", "2").replace("$down", "max_pool")
    assert loads_spec(no_params, "n.yaml").params == {}
    with pytest.raises(
        SpecError,
        match=r"^n\.yaml: --set width: the spec has no parameter 'width' "
        r"\(it declares no params\)$",
    ):
        loads_spec(no_params, "n.yaml", {"width": 8})


def test_override_that_breaks_a_rule_is_reported_where_the_param_is_used():
    with pytest.raises(SpecError) as info:
        loads_spec(PARAM_SPEC, "p.yaml", {"fusion": "fast_normalised"})
    assert str(info.value).startswith(
        "p.yaml:17:3: unknown fusion method 'fast_normalised'; did you mean 'fast_normalized'?"
    )


def test_dollar_only_substitutes_whole_values():
    text = PARAM_SPEC.replace("name: typed_params", "name: net_$width").replace(
        "  down: max_pool ", "  label: $width\n  down: max_pool "
    )
    spec = loads_spec(text, "p.yaml")
    assert spec.name == "net_$width"  # not a whole value: kept as written
    assert spec.params["label"] == "$width"  # params are not substituted into each other


@pytest.mark.parametrize(
    "overrides, width, repeats, fusion",
    [
        ({}, 64, 3, "fast_normalized"),
        ({"width": 88}, 88, 3, "fast_normalized"),
        ({"repeats": 5}, 64, 5, "fast_normalized"),
        ({"fusion": "sum"}, 64, 3, "sum"),
        ({"width": 88, "repeats": 4, "fusion": "channel_softmax"}, 88, 4, "channel_softmax"),
    ],
)
def test_bifpn_overrides_change_the_built_network(overrides, width, repeats, fusion):
    spec = load_spec(specs_dir() / "bifpn.yaml", overrides)
    assert (spec.width, spec.repeats) == (width, repeats)
    assert {n.fusion for n in spec.nodes} == {fusion}
    network = compile_spec(spec, B0_CHANNELS)
    assert len(network.cells) == repeats
    merge = network.cells[-1].nodes["p4_out"].merge
    weights = [p.shape for p in merge.parameters()]
    assert weights == ([] if fusion == "sum" else [(3, width)] if fusion.startswith("channel_") else [(3,)])
    assert network.cells[-1].nodes["p4_out"].op.bn.num_features == width


def test_cli_validate_reports_override_errors(capsys):
    bifpn = str(specs_dir() / "bifpn.yaml")
    assert main(["validate", bifpn, "--set", "width=88"]) == 0
    assert capsys.readouterr().out == f"ok: {bifpn} (bifpn: 8 nodes, levels P3-P7, 3 repeats)\n"
    assert main(["validate", bifpn, "--set", "width=abc"]) == 2
    assert capsys.readouterr().err == f"error: {bifpn}: --set width='abc': expected an integer like the default 64\n"
    assert main(["validate", bifpn, "--set", "width"]) == 2
    assert capsys.readouterr().err == "error: --set expects KEY=VALUE, got 'width'\n"
