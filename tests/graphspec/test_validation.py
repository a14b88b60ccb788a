"""One test per validation rule of the spec language.

Each test writes a spec under ``tmp_path`` (so the file name is known), loads it and checks that
:class:`SpecError` is raised with a one-line message ``FILE:LINE:COL: [node 'ID': ]what; how to fix``
that points at the offending token, names the node where the rule is about a node, and carries the
rule's key words plus the valid choices / did-you-mean suggestion where the code offers one.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from graphspec import SpecError, load_spec, parse_assignments
from graphspec.yaml_loader import MAX_EXPANDED_NODES

# A small valid spec: P3-P4 from the backbone, P5 derived, four nodes. Each test changes one thing.
BASE = """\
name: tiny
description: a three-level test network
params:
  width: 16
  repeats: 2
  fusion: fast_normalized
width: $width
inputs:
  backbone: [P3, P4]
  derived:
    - {level: P5, from: P4, downsample: max_pool}
defaults:
  fusion: $fusion
  op: [swish, separable_conv, bn]
cell:
  repeats: $repeats
  nodes:
    - id: p4_td
      level: P4
      inputs: [P4, P5]
    - id: p3_out
      level: P3
      inputs: [P3, p4_td]
    - id: p4_out
      level: P4
      inputs: [P4, p4_td, p3_out]
    - id: p5_out
      level: P5
      inputs: [P5, p4_out]
  outputs: {P3: p3_out, P4: p4_out, P5: p5_out}
"""


# -- helpers ---------------------------------------------------------------------------------------
def variant(old: str, new: str, text: str = BASE) -> str:
    """``text`` with the one occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def locate(text: str, needle: str, nth: int = 1, skip: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the ``nth`` occurrence of ``needle`` in ``text``, plus ``skip`` columns."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    index += skip
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def spec_error(tmp_path: Path, text: str, overrides: dict | None = None) -> tuple[Path, SpecError]:
    path = tmp_path / "net.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path, overrides)
    return path, info.value


def assert_error(exc: SpecError, path: Path, at: tuple[int, int] | None, *words: str, node: str | None = None) -> str:
    """The message starts with ``FILE:LINE:COL: `` (or ``FILE: `` when ``at`` is None), then
    ``node 'ID': `` when ``node`` is given, and contains every one of ``words``."""
    message = str(exc)
    assert "\n" not in message, message
    prefix = f"{path}:{at[0]}:{at[1]}: " if at else f"{path}: "
    assert message.startswith(prefix), f"expected {prefix!r} at the start of {message!r}"
    assert exc.location is not None and exc.location.file == str(path)
    if at:
        assert (exc.location.line, exc.location.column) == at
    if node is not None:
        assert message.startswith(f"{prefix}node '{node}': "), message
        assert exc.node == node
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def test_base_spec_is_valid(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(BASE)
    spec = load_spec(path)
    assert [n.id for n in spec.nodes] == ["p4_td", "p3_out", "p4_out", "p5_out"]
    assert spec.levels == (3, 4, 5) and spec.width == 16 and spec.repeats == 2


# -- YAML level ------------------------------------------------------------------------------------
def test_yaml_syntax_error(tmp_path):
    text = variant("      level: P3\n", "\tlevel: P3\n")  # a tab cannot indent YAML
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "\tlevel"), "YAML syntax error", "'\\t'")


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_empty_file(tmp_path, text):
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, (1, 1), "the file is empty", "`cell`")


def test_top_level_not_a_mapping(tmp_path):
    text = "- width: 16\n- cell: {}\n"
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, (1, 1), "the top level must be a mapping", "width, inputs, cell", "got a list")


def test_duplicate_yaml_key(tmp_path):
    text = variant("width: $width\n", "width: $width\nwidth: 32\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "width: 32"), "duplicate key 'width'")


@pytest.mark.parametrize(
    "payload, tag",
    [
        ('!!python/object/apply:os.system ["touch {marker}"]', "tag:yaml.org,2002:python/object/apply:os.system"),
        ("!!python/name:os.system", "tag:yaml.org,2002:python/name:os.system"),
        (
            '!!python/object/new:subprocess.check_call [["touch", "{marker}"]]',
            "tag:yaml.org,2002:python/object/new:subprocess.check_call",
        ),
        ("!pwn touch {marker}", "!pwn"),
    ],
)
def test_python_and_custom_tags_are_rejected_and_never_executed(tmp_path, payload, tag):
    marker = tmp_path / f"pwned_{tmp_path.name}"
    text = variant("description: a three-level test network", "description: " + payload.format(marker=marker))
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, payload.split()[0]), f"the YAML tag '{tag}' is not allowed", "plain data")
    assert not marker.exists(), "a YAML tag ran a command"


def test_alias_bomb_is_bounded_and_fast(tmp_path):
    # "billion laughs": 9 levels of 9 aliases each would expand to 9**9 strings.
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]")
    text = "\n".join(lines) + "\n" + BASE
    start = time.perf_counter()
    path, exc = spec_error(tmp_path, text)
    assert time.perf_counter() - start < 1.0
    # the position is that of the value where the count ran over: a "lol" inside the anchored lists
    line, column = exc.location.line, exc.location.column
    assert 1 <= line <= 10 and column >= 1
    assert_error(
        exc, path, (line, column), f"the document expands to more than {MAX_EXPANDED_NODES} values", "alias bomb"
    )


def test_recursive_alias(tmp_path):
    text = variant("description: a three-level test network", "description: &loop [a, *loop]")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "&loop"), "alias refers to its own anchor", "recursive")


def test_merge_keys_are_rejected(tmp_path):
    text = variant("defaults:\n", "base: &base {fusion: sum}\ndefaults:\n  <<: *base\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "<<: *base"), "mapping keys must be plain scalars", "`<<`")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: file not found; check the path"


# -- keys ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, bad, valid, where",
    [
        ("inputs:\n  backbone", "inptus:\n  backbone", "inptus", "inputs", "the spec"),
        ("  backbone: [P3, P4]", "  backbone: [P3, P4]\n  latreal: conv_bn", "latreal", "lateral", "`inputs`"),
        ("from: P4, downsample:", "from: P4, donwsample:", "donwsample", "downsample", "a derived level"),
        ("  fusion: $fusion", "  fusoin: $fusion", "fusoin", "fusion", "`defaults`"),
        ("  repeats: $repeats", "  repaets: $repeats", "repaets", "repeats", "`cell`"),
        ("      inputs: [P3, p4_td]", "      inptus: [P3, p4_td]", "inptus", "inputs", "a node"),
    ],
)
def test_unknown_key_at_each_level_suggests_the_closest(tmp_path, old, new, bad, valid, where):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    node = "p3_out" if where == "a node" else None
    message = assert_error(
        exc,
        path,
        locate(text, bad),
        f"unknown key '{bad}' in {where}",
        f"did you mean '{valid}'?",
        "(valid: ",
        node=node,
    )
    assert valid in message.split("(valid: ")[1]


@pytest.mark.parametrize(
    "old, new, at, missing, where, node",
    [
        ("width: $width\n", "", "name: tiny", "width", "the spec", None),
        # a missing key is reported at the mapping that lacks it (for a mapping value: at its key)
        ("  backbone: [P3, P4]\n", "", "inputs:", "backbone", "`inputs`", None),
        (
            "{level: P5, from: P4, downsample: max_pool}",
            "{level: P5, downsample: max_pool}",
            "{level: P5",
            "from",
            "a derived level",
            None,
        ),
        ("  outputs: {P3: p3_out, P4: p4_out, P5: p5_out}\n", "", "cell:", "outputs", "`cell`", None),
        ("      level: P3\n", "", "id: p3_out", "level", "a node", "p3_out"),
    ],
)
def test_missing_required_key(tmp_path, old, new, at, missing, where, node):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, at), f"missing required key '{missing}' in {where}", node=node)


# -- nodes and references --------------------------------------------------------------------------
def test_duplicate_node_id(tmp_path):
    text = variant("    - id: p4_out\n", "    - id: p3_out\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc,
        path,
        locate(text, "id: p3_out", nth=2),
        "duplicate node id 'p3_out'",
        "first defined by node #2",
        "unique",
        node="p3_out",
    )


@pytest.mark.parametrize("bad", ["P3", "3x", "has-dash", 7])
def test_node_id_must_be_an_identifier_and_not_a_level(tmp_path, bad):
    text = variant("- id: p4_td\n", f"- id: {bad}\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, f"id: {bad}"), f"node id {bad!r} must be an identifier", "level name")


def test_unknown_input_suggests_the_closest(tmp_path):
    text = variant("inputs: [P4, p4_td, p3_out]", "inputs: [P4, p4_tdd, p3_out]")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc,
        path,
        locate(text, "p4_tdd"),
        "unknown input 'p4_tdd'",
        "did you mean 'p4_td'?",
        "(valid: P3, P4, P5, p4_td, p3_out, p4_out, p5_out)",
        node="p4_out",
    )


@pytest.mark.parametrize(
    "old, new, first, ring",
    [
        # two nodes: p4_td -> p3_out -> p4_td
        ("inputs: [P4, P5]", "inputs: [P4, P5, p3_out]", "p4_td", "p4_td -> p3_out -> p4_td"),
        # three nodes, named in data-flow order: p4_td feeds p3_out feeds p4_out feeds p4_td
        ("inputs: [P4, P5]", "inputs: [P4, P5, p4_out]", "p4_td", "p4_td -> p3_out -> p4_out -> p4_td"),
    ],
)
def test_cycle_is_named(tmp_path, old, new, first, ring):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, f"id: {first}"), f"the nodes form a cycle {ring}", "acyclic", node=first)


@pytest.mark.parametrize(
    "old, new, field",
    [
        ("inputs: [P4, p4_td, p3_out]", "inputs: [P4, p4_out, p3_out]", "inputs"),
        ("inputs: [P4, p4_td, p3_out]", "inputs: [P4, p4_td, p3_out]\n      residual: [p4_out]", "residual"),
    ],
)
def test_self_loop(tmp_path, old, new, field):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc, path, locate(text, "p4_out", nth=2), f"the node lists itself in `{field}` (a self-loop)", node="p4_out"
    )


def test_node_without_inputs(tmp_path):
    text = variant("inputs: [P3, p4_td]", "inputs: []")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "inputs: []"), "a node needs at least one input", node="p3_out")


@pytest.mark.parametrize(
    "old, new, twice",
    [
        ("inputs: [P4, p4_td, p3_out]", "inputs: [P4, p4_td, P4]", "P4"),
        ("inputs: [P4, p4_td, p3_out]", "inputs: [P4, p4_td, p3_out]\n      residual: [p4_td]", "p4_td"),
    ],
)
def test_input_listed_twice(tmp_path, old, new, twice):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    # the error points at the second mention
    at = locate(text, "p4_td, P4]", skip=7) if twice == "P4" else locate(text, "residual: [p4_td]", skip=11)
    assert_error(exc, path, at, f"'{twice}' is listed twice", "list each input once", node="p4_out")


def test_node_that_feeds_no_output(tmp_path):
    text = variant("    - id: p5_out\n", "    - id: dead_end\n      level: P5\n      inputs: [P5]\n    - id: p5_out\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc, path, locate(text, "id: dead_end"), "feeds no cell output", "connect it or remove it", node="dead_end"
    )


@pytest.mark.parametrize("inputs", ["[P4, p4_td, p3_out]", "[p3_out]"])
def test_global_pool_attention_needs_two_inputs(tmp_path, inputs):
    text = variant("inputs: [P4, p4_td, p3_out]", f"merge: global_pool_attention\n      inputs: {inputs}")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc,
        path,
        locate(text, f"inputs: {inputs}"),
        f"merge 'global_pool_attention' takes exactly 2 inputs, got {inputs.count(',') + 1}",
        node="p4_out",
    )


# -- outputs ---------------------------------------------------------------------------------------
def test_outputs_missing_a_level(tmp_path):
    text = variant("{P3: p3_out, P4: p4_out, P5: p5_out}", "{P3: p3_out, P5: p5_out}")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc, path, locate(text, "outputs:"), "`cell.outputs` has no node for P4", "every level P3-P5 needs one"
    )


def test_output_names_a_node_of_another_level(tmp_path):
    text = variant("P4: p4_out, P5: p5_out}", "P4: p4_out, P5: p4_td}")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "P5: p4_td"), "output P5 names node 'p4_td', which is at level P4")


def test_output_names_an_unknown_node(tmp_path):
    text = variant("P4: p4_out,", "P4: p4_ot,")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc,
        path,
        locate(text, "P4: p4_ot"),
        "output P4: unknown node 'p4_ot'",
        "did you mean 'p4_out'?",
        "(valid: p4_td, p3_out, p4_out, p5_out)",
    )


def test_node_is_the_output_of_two_levels(tmp_path):
    # A node has one level, so naming it for two outputs takes the same level key twice, or a second
    # spelling of the level; both are rejected.
    text = variant("{P3: p3_out,", "{P3: p3_out, P3: p3_out,")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "P3: p3_out,", nth=2), "duplicate key 'P3'")
    text = variant("{P3: p3_out,", "{P3: p3_out, P03: p3_out,")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "P03"), "a level is written P<n>", "got 'P03'")


# -- levels ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, at, words, node",
    [
        (
            "      level: P3\n",
            "      level: P6\n",
            "level: P6",
            ("level P6 is outside the spec's levels P3-P5",),
            "p3_out",
        ),
        (
            "P5: p5_out}",
            "P5: p5_out, P2: p3_out}",
            "P2:",
            ("output level P2 is outside the spec's levels P3-P5",),
            None,
        ),
    ],
)
def test_level_outside_range(tmp_path, old, new, at, words, node):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, at), *words, node=node)


@pytest.mark.parametrize("bad", ["p3", "3", "P", "P13", "P-1", "level3"])
def test_bad_level_syntax(tmp_path, bad):
    text = variant("      level: P3\n", f"      level: {bad}\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc,
        path,
        locate(text, f"      level: {bad}\n", skip=6),
        "a level is written P<n> with 0 <= n <= 12 (e.g. P3)",
        f"got {bad!r}" if bad != "3" else "got 3",
        node="p3_out",
    )


def test_backbone_levels_must_be_consecutive(tmp_path):
    text = variant("backbone: [P3, P4]", "backbone: [P3, P5]")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "backbone:"), "must list consecutive levels, finest first")


def test_derived_levels_extend_the_pyramid_by_one(tmp_path):
    text = variant("{level: P5, from: P4,", "{level: P6, from: P4,")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "{level: P6"), "expected level P5 from P4, got P6 from P4")


# -- numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, at, what, value",
    [
        ("width: $width\n", "width: 0\n", "width: 0", "`width`", "0"),
        ("width: $width\n", "width: -16\n", "width: -16", "`width`", "-16"),
        ("repeats: $repeats", "repeats: 0", "repeats: 0", "`cell.repeats`", "0"),
    ],
)
def test_width_and_repeats_must_be_positive(tmp_path, old, new, at, what, value):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, at), f"{what} must be positive, got {value}")


@pytest.mark.parametrize("value, shown", [("1.5", "1.5"), ("abc", "'abc'"), ("true", "True"), ("[16]", "[16]")])
def test_width_must_be_an_integer(tmp_path, value, shown):
    text = variant("width: $width\n", f"width: {value}\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, f"width: {value}"), f"`width` must be an integer, got {shown}")


@pytest.mark.parametrize(
    "old, new, bad, valid, what, valid_list",
    [
        (
            "inputs: [P3, p4_td]",
            "fusion: fast_normalised\n      inputs: [P3, p4_td]",
            "fast_normalised",
            "fast_normalized",
            "fusion method",
            "(valid: sum, unbounded, softmax, fast_normalized, channel_softmax, channel_fast_normalized)",
        ),
        (
            "inputs: [P3, p4_td]",
            "op: [swish, seperable_conv, bn]\n      inputs: [P3, p4_td]",
            "seperable_conv",
            "separable_conv",
            "op step",
            "(valid: swish, relu, separable_conv, conv, bn)",
        ),
        (
            "inputs: [P3, p4_td]",
            "upsample: nearst\n      inputs: [P3, p4_td]",
            "nearst",
            "nearest",
            "upsample mode",
            "(valid: nearest, bilinear)",
        ),
        (
            "inputs: [P3, p4_td]",
            "downsample: max_pol\n      inputs: [P3, p4_td]",
            "max_pol",
            "max_pool",
            "downsample mode",
            "(valid: max_pool, avg_pool, conv)",
        ),
        (
            "inputs: [P3, p4_td]",
            "merge: weighted_summ\n      inputs: [P3, p4_td]",
            "weighted_summ",
            "weighted_sum",
            "merge",
            "(valid: weighted_sum, global_pool_attention)",
        ),
        (
            "inputs: [P3, p4_td]",
            "projection: conv_nb\n      inputs: [P3, p4_td]",
            "conv_nb",
            "conv_bn",
            "projection",
            "(valid: conv_bn, conv)",
        ),
    ],
)
def test_unknown_method_name_suggests_the_closest(tmp_path, old, new, bad, valid, what, valid_list):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    # a whole-value field points at its key; an op step points at the step in the list
    first_line = new.split("\n")[0]
    at = locate(text, bad) if what == "op step" else locate(text, f"      {first_line}\n", skip=6)
    assert_error(exc, path, at, f"unknown {what} '{bad}'", f"did you mean '{valid}'?", valid_list, node="p3_out")


@pytest.mark.parametrize(
    "old, new, bad, valid, what",
    [
        ("  backbone: [P3, P4]", "  backbone: [P3, P4]\n  lateral: conv_b", "conv_b", "conv_bn", "lateral"),
        ("downsample: max_pool}", "downsample: max_pool, act: rleu}", "rleu", "relu", "activation"),
        ("  op: [swish", "  upsample: bilinaer\n  op: [swish", "bilinaer", "bilinear", "upsample mode"),
    ],
)
def test_unknown_names_outside_nodes_suggest_the_closest(tmp_path, old, new, bad, valid, what):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    key = {"lateral": "lateral:", "activation": "act:", "upsample mode": "upsample:"}[what]
    assert_error(exc, path, locate(text, key), f"unknown {what} '{bad}'", f"did you mean '{valid}'?", "(valid: ")


@pytest.mark.parametrize(
    "old, new, at, words",
    [
        ("  op: [swish", "  conv_bias: 1\n  op: [swish", "conv_bias:", ("`conv_bias` must be true or false, got 1",)),
        ("  op: [swish", "  bn_eps: 0\n  op: [swish", "bn_eps:", ("`bn_eps` must be in (0, 1], got 0",)),
        (
            "  op: [swish",
            "  bn_momentum: 1.5\n  op: [swish",
            "bn_momentum:",
            ("`bn_momentum` must be in (0, 1], got 1.5",),
        ),
    ],
)
def test_batch_norm_and_bias_settings_are_typed(tmp_path, old, new, at, words):
    text = variant(old, new)
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, at), *words)


# -- params ----------------------------------------------------------------------------------------
def test_unresolved_param_suggests_the_closest(tmp_path):
    text = variant("fusion: $fusion", "fusion: $fusoin")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc,
        path,
        locate(text, "fusion: $fusoin"),
        "unresolved parameter '$fusoin'",
        "did you mean 'fusion'?",
        "declare it under `params`",
        "(valid: width, repeats, fusion)",
    )


@pytest.mark.parametrize(
    "assignment, words",
    [
        ("width=abc", ("--set width='abc': expected an integer like the default 16",)),
        ("width=1.5", ("--set width=1.5: expected an integer like the default 16",)),
        ("repeats=true", ("--set repeats=True: expected an integer like the default 2",)),
        ("fusion=3", ("--set fusion=3: expected a string like the default 'fast_normalized'",)),
    ],
)
def test_ill_typed_override(tmp_path, assignment, words):
    path, exc = spec_error(tmp_path, BASE, parse_assignments([assignment]))
    assert_error(exc, path, None, *words)


def test_unknown_override_suggests_the_closest(tmp_path):
    path, exc = spec_error(tmp_path, BASE, parse_assignments(["widht=32"]))
    assert_error(
        exc,
        path,
        None,
        "--set widht: the spec has no parameter 'widht'",
        "did you mean 'width'?",
        "(valid: width, repeats, fusion)",
    )


def test_param_default_must_be_a_scalar(tmp_path):
    text = variant("  fusion: fast_normalized\n", "  fusion: [fast_normalized]\n")
    path, exc = spec_error(tmp_path, text)
    assert_error(
        exc, path, locate(text, "fusion: [fast"), "parameter 'fusion' needs a number, string or boolean default"
    )


# -- found by the property tests ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["[p4_out]", "{id: p4_out}"])
def test_output_value_that_is_not_a_name(tmp_path, value):
    text = variant("P4: p4_out,", f"P4: {value},")
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "P4: "), "output P4 must name one node id")


def test_two_output_keys_for_one_level(tmp_path):
    text = variant("    - id: p5_out\n", "    - id: p3_b\n      level: P3\n      inputs: [p3_out]\n    - id: p5_out\n")
    text = variant("{P3: p3_out,", "{P3: p3_out, P03: p3_b,", text)
    path, exc = spec_error(tmp_path, text)
    assert_error(exc, path, locate(text, "P03"), "a level is written P<n>")


@pytest.mark.parametrize("depth", [60, 5000])
def test_deeply_nested_document(tmp_path, depth):
    text = variant("description: a three-level test network", "description: " + "[" * depth + "]" * depth)
    path, exc = spec_error(tmp_path, text)
    assert "nested" in str(exc) and str(exc).startswith(str(path))


@pytest.mark.parametrize(
    "old, new",
    [
        ("      level: P5\n", '      level: "P5\\n"\n'),
        ("    - id: p5_out\n", '    - id: "p5_out\\n"\n'),
    ],
)
def test_names_with_a_trailing_newline(tmp_path, old, new):
    text = variant(old, new)
    if "id:" in new:
        text = text.replace("P5: p5_out}", 'P5: "p5_out\\n"}')
    spec_error(tmp_path, text)
