"""Every bad spec file is stopped at the door: ``validate`` accepts exactly what ``build`` can build, and
every error is one line that names the file, exits with 2 and shows no traceback.

One test per class of bad input (through the command line, in process), a property test (whatever
validates builds and runs) and a seeded mutation test over every built-in spec.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effdet_graph.builtin import builtin_specs
from effdet_graph.cli import main, run_command
from effdet_graph.fpn.compiler import compile_spec
from graphspec import InputError, SpecError, level_name, loads_spec
from graphspec.limits import ENV_MAX_ACTIVATION_MB, ENV_MAX_PARAMS, MAX_REPEATS, MAX_WIDTH, Limits
from graphspec.model import reserved_ids
from graphspec.yaml_loader import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[2]

# A small valid spec; each test changes one thing.
BASE = """\
name: tiny
params:
  width: 8
width: $width
inputs:
  backbone: [P3, P4, P5]
cell:
  repeats: 1
  nodes:
    - {id: NODE, level: P4, inputs: [P4, P5]}
    - {id: p3_out, level: P3, inputs: [P3, NODE]}
    - {id: p4_out, level: P4, inputs: [P4, NODE, p3_out]}
    - {id: p5_out, level: P5, inputs: [P5, p4_out]}
  outputs: {P3: p3_out, P4: p4_out, P5: p5_out}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def spec_text(node_id: str = "p4_td", **replacements: str) -> str:
    text = BASE.replace("NODE", node_id)
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(code: int, err: str, file: str, *words: str) -> str:
    """Exit 2, exactly one stderr line ``error: FILE...``, no traceback, no raw control character."""
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n") and err.count("\n") == 1, repr(err)
    line = lines[0]
    assert line.startswith(f"error: {file}"), line
    assert "Traceback" not in err
    assert all(c.isprintable() for c in line), repr(line)
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    return line


def validate_and_build(capsys, path: Path, *words: str, extra: tuple[str, ...] = ()) -> None:
    """``validate`` and ``build`` (small input) both refuse ``path`` with the same clean error."""
    lines = []
    for command in (("validate", str(path)), ("build", str(path), "--input-size", "32")):
        code, _, err = run_cli(capsys, *command, *extra)
        lines.append(assert_clean_error(code, err, str(path), *words))
    assert lines[0] == lines[1]


# -- validate accepts exactly what build can build ------------------------------------------------------
@pytest.mark.parametrize("node_id", sorted(n for n in reserved_ids() if re.fullmatch(r"[A-Za-z_]\w*", n))[::7])
def test_reserved_node_ids_are_refused_by_validate(node_id, tmp_path, capsys):
    path = write(tmp_path, spec_text(node_id))
    validate_and_build(capsys, path, f"node {node_id!r}", "PyTorch module attribute", "rename the node")


@pytest.mark.parametrize("node_id", ["forward", "training", "to", "cuda", "state_dict", "__class__", "keys"])
def test_the_reviewed_reserved_ids(node_id, tmp_path, capsys):
    validate_and_build(capsys, write(tmp_path, spec_text(node_id)), "PyTorch module attribute")


@pytest.mark.parametrize("width", ["1000000000", "9223372036854775808", "100000", "-5", "0"])
def test_huge_or_bad_widths_are_refused_before_torch(width, tmp_path, capsys):
    path = write(tmp_path, spec_text(**{"  width: 8": f"  width: {width}"}))
    word = f"at most {MAX_WIDTH}" if int(width) > 0 else "must be positive"
    validate_and_build(capsys, path, f"{path}:4:1:", "`width`", word)  # where $width is used


def test_huge_repeats_are_refused_at_once(tmp_path, capsys):
    path = write(tmp_path, spec_text(**{"repeats: 1": "repeats: 1000000"}))
    validate_and_build(capsys, path, "`cell.repeats`", f"at most {MAX_REPEATS}")


def test_parameter_limit_names_the_limit_and_how_to_raise_it(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, spec_text(**{"  width: 8": "  width: 12000"}))
    validate_and_build(capsys, path, "parameters", "more than the limit of 200,000,000", "--max-params", ENV_MAX_PARAMS)
    small = write(tmp_path, spec_text(), "small.yaml")
    code, out, _ = run_cli(capsys, "validate", str(small))
    assert code == 0 and out.startswith("ok: ")
    validate_and_build(capsys, small, "more than the limit of 1,000", extra=("--max-params", "1000"))
    monkeypatch.setenv(ENV_MAX_PARAMS, "1000")
    validate_and_build(capsys, small, "more than the limit of 1,000")
    monkeypatch.setenv(ENV_MAX_PARAMS, "lots")
    code, _, err = run_cli(capsys, "validate", str(small))
    assert code == 2 and ENV_MAX_PARAMS in err and len(err.splitlines()) == 1


def test_activation_limit_is_measured_at_the_input_size(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, spec_text())
    for extra in (("--input-size", "100000"), ("--max-activation-mb", "0.01")):
        for command in ("validate", "build"):
            code, _, err = run_cli(capsys, command, str(path), *extra)
            assert_clean_error(code, err, str(path), "activations", "MiB", "--max-activation-mb", ENV_MAX_ACTIVATION_MB)
    monkeypatch.setenv(ENV_MAX_ACTIVATION_MB, "0.01")
    code, _, err = run_cli(capsys, "validate", str(path))
    assert_clean_error(code, err, str(path), "limit of 0 MiB")


def test_validate_measures_the_channels_build_uses(tmp_path, capsys):
    # a 2-level backbone: build used to fail on its default 3 channels while validate said ok
    text = spec_text().replace("[P3, P4, P5]", "[P3, P4]\n  derived: [{level: P5, from: P4}]")
    path = write(tmp_path, text)
    assert run_cli(capsys, "validate", str(path))[0] == 0
    code, out, err = run_cli(capsys, "build", str(path), "--input-size", "32")
    assert code == 0, err
    assert "in_channels [40, 112]" in out
    code, _, err = run_cli(capsys, "validate", str(path), "--in-channels", "8,8,8")
    assert_clean_error(code, err, str(path), "pass one channel count per level")


def test_a_checkpoints_stored_spec_parameters_are_bounded_too():
    # a checkpoint's spec goes through loads_spec with its stored parameters: no hang, a clean error
    text = (
        spec_text()
        .replace("  width: 8", "  width: 8\n  repeats: 1")
        .replace("repeats: 1\n  nodes", "repeats: $repeats\n  nodes")
    )
    with pytest.raises(SpecError, match=f"at most {MAX_REPEATS}"):
        loads_spec(text, "checkpoint:spec.yaml", {"repeats": 1_000_000})
    with pytest.raises(SpecError, match="at most"):
        loads_spec(text, "checkpoint:spec.yaml", {"width": 10**12})


# -- messages that cannot be forged -------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, shown",
    [
        (spec_text(**{"cell:": '"in\\nputs": 1\ncell:'}), r"'in\nputs'"),
        (spec_text(**{"cell:": '"x\\e[31mred": 1\ncell:'}), r"'x\x1b[31mred'"),
        (spec_text(**{"[P4, P5]}": '[P4, "P5\\nerror: fake"]}'}), r"'P5\nerror: fake'"),
        (spec_text(**{"id: p3_out": 'id: "p3\\e[2Jout"'}), r"'p3\x1b[2Jout'"),
        (spec_text(**{"{P3: p3_out,": '{P3: "p3_out\\u2028x",'}), r"'p3_out\u2028x'"),
    ],
    ids=["newline-key", "ansi-key", "newline-input", "ansi-id", "line-separator-output"],
)
def test_user_text_is_quoted_with_escapes(text, shown, tmp_path, capsys):
    path = write(tmp_path, text)
    code, _, err = run_cli(capsys, "validate", str(path))
    assert shown in assert_clean_error(code, err, str(path))


def test_a_nul_byte_is_located(tmp_path, capsys):
    path = write(tmp_path, spec_text(**{"name: tiny": "name: ti\x00ny"}))
    code, _, err = run_cli(capsys, "validate", str(path))
    assert_clean_error(code, err, f"{path}:1:9:", r"'\x00'", "U+0000")


def test_a_name_with_control_characters_prints_escaped_in_the_ok_line(tmp_path, capsys):
    path = write(tmp_path, spec_text(**{"name: tiny": 'name: "a\\nb\\e[31m"'}))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 0 and out.count("\n") == 1 and r"a\nb\x1b[31m" in out


def test_a_file_name_with_a_newline_stays_one_line(tmp_path, capsys):
    path = write(tmp_path, "width: [", "bad\nname.yaml")
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2 and err.count("\n") == 1 and r"bad\nname.yaml" in err


def test_the_cli_printer_is_a_last_safety_net(capsys):
    def run(_args):
        raise InputError("line one\nerror: forged \x1b[31mred\x00")

    assert run_command(run, argparse.Namespace()) == 2
    err = capsys.readouterr().err
    assert err == "error: line one\\nerror: forged \\x1b[31mred\\x00\n"


def test_special_files_are_refused_by_kind(tmp_path, capsys):
    for target, word in ((tmp_path, "is a directory"), (Path("/dev/zero"), "is a character device")):
        code, _, err = run_cli(capsys, "validate", str(target))
        assert_clean_error(code, err, str(target), word)
    big = write(tmp_path, "# x\n" * (MAX_FILE_BYTES // 4 + 1), "big.yaml")
    code, _, err = run_cli(capsys, "validate", str(big))
    assert_clean_error(code, err, str(big), f"larger than {MAX_FILE_BYTES:,} bytes")
    code, _, err = run_cli(capsys, "validate", str(tmp_path / "missing.yaml"))
    assert_clean_error(code, err, str(tmp_path / "missing.yaml"), "not found")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "effdet_graph.cli", "validate", str(fifo)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert_clean_error(result.returncode, result.stderr, str(fifo), "is a FIFO")


# -- wording --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, words",
    [
        ("params:", "param:", ("unknown key 'param' in the spec; did you mean 'params'?",)),
        ("name: tiny", "name: tiny\ndescription: 2024-01-31", ("YAML reads 2024-01-31 as a date", "'2024-01-31'")),
        ("id: p3_out", "id: yes", ("YAML reads yes as the boolean true", "quote it ('yes')")),
        ("{P3: p3_out,", "{P3: off,", ("YAML reads off as the boolean false", "quote it ('off')")),
        ("inputs: [P4, P5]}", "inputs: [P4, on]}", ("YAML reads on as the boolean true",)),
        ("cell:", "defaults: {bn_eps: 1.0e308}\ncell:", ("`bn_eps` must be in (0, 1], got 1e+308",)),
        ("cell:", "defaults: {bn_eps: 1.0e309}\ncell:", ("too large to be a finite number; it must be in (0, 1]",)),
        ("  width: 8", "  width: 1.0e308", ("must be an integer",)),
    ],
    ids=["param", "date", "yes-id", "off-output", "on-input", "huge-eps", "inf-eps", "float-width"],
)
def test_messages_say_what_is_wrong(old, new, words, tmp_path, capsys):
    path = write(tmp_path, spec_text(**{old: new}))
    code, _, err = run_cli(capsys, "validate", str(path))
    assert_clean_error(code, err, str(path), *words)


# -- property: whatever validates builds and runs ---------------------------------------------------------
NAMES = ["P0", "P1", "P3", "P4", "P5", "P12", "a", "b", "c", "forward", "yes", "x_1"]


@st.composite
def loose_specs(draw) -> str:
    """Spec texts near the edge of the rules: tiny widths, any levels P0-P12, random wiring."""
    low = draw(st.integers(0, 11))
    levels = list(range(low, min(12, low + draw(st.integers(0, 3))) + 1))
    backbone = levels[: draw(st.integers(1, len(levels)))]

    def rarely(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> object:
        return draw(invalid) if draw(st.integers(0, 9)) == 9 else draw(valid)

    ids = rarely(st.just(["a", "b", "c", "x_1"]), st.just(["a", "b", "forward", "yes", "P3"]))
    node_ids = draw(st.lists(st.sampled_from(ids), max_size=4, unique=True))
    lines = [
        f"width: {rarely(st.sampled_from([1, 2, 3, 8]), st.sampled_from([0, MAX_WIDTH + 1]))}",
        "inputs:",
        f"  backbone: [{', '.join(level_name(level) for level in backbone)}]",
        f"  lateral: {draw(st.sampled_from(['none', 'conv', 'conv_bn']))}",
        "  derived:",
    ]
    lines += [
        f"    - {{level: P{level}, from: P{level - 1}, downsample: "
        f"{draw(st.sampled_from(['max_pool', 'avg_pool', 'conv']))}, act: {draw(st.sampled_from(['none', 'relu']))}}}"
        for level in levels[len(backbone) :]
    ] or ["    []"]
    if lines[-1] == "    []":
        lines[-2:] = ["  derived: []"]
    lines += [
        "defaults:",
        f"  padding: {draw(st.sampled_from(['symmetric', 'same']))}",
        f"  op: [{', '.join(draw(st.lists(st.sampled_from(['relu', 'conv', 'bn', 'separable_conv']), max_size=3)))}]",
        "cell:",
        f"  repeats: {draw(st.integers(1, 2))}",
        "  nodes:",
    ]
    outputs = {}
    for level in levels:
        node_ids.append(f"out{level}")
        outputs[level_name(level)] = f"out{level}"
    for i, node_id in enumerate(node_ids):
        node_level = int(node_id[3:]) if node_id.startswith("out") else draw(st.sampled_from(levels))
        earlier = [level_name(level) for level in levels] + node_ids[:i]
        choices = earlier + rarely(st.just([]), st.just(NAMES))
        inputs = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True))
        merge = rarely(
            st.sampled_from(["weighted_sum", "global_pool_attention"] if len(inputs) == 2 else ["weighted_sum"]),
            st.just("global_pool_attention"),
        )
        fusion = draw(st.sampled_from(["sum", "softmax", "channel_fast_normalized"]))
        lines.append(
            f"    - {{id: {node_id}, level: P{node_level}, inputs: [{', '.join(inputs)}], merge: {merge}, "
            f"fusion: {fusion}, upsample: {draw(st.sampled_from(['nearest', 'bilinear']))}, "
            f"downsample: {draw(st.sampled_from(['max_pool', 'avg_pool', 'conv']))}}}"
        )
    lines.append("  outputs: {" + ", ".join(f"{k}: {v}" for k, v in outputs.items()) + "}")
    return "\n".join(lines) + "\n"


SMALL = Limits(max_params=2_000_000, max_activation_mb=64, input_size=24)


def build_and_run_small(spec, size: tuple[int, int]) -> None:
    channels = [3] * len(spec.backbone_levels)
    network = compile_spec(spec, channels).eval()
    features = [torch.randn(1, 3, -(-size[0] // 2**level), -(-size[1] // 2**level)) for level in spec.backbone_levels]
    with torch.inference_mode():
        outputs = network(features)
    assert [tuple(x.shape[1:2]) for x in outputs] == [(spec.width,)] * len(spec.levels)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(text=loose_specs(), size=st.tuples(st.integers(1, 40), st.integers(1, 40)))
def test_any_spec_that_validates_builds_and_runs(text, size):
    try:
        spec = loads_spec(text, "loose.yaml", limits=SMALL)
    except SpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("loose.yaml")
        return
    build_and_run_small(spec, size)


# -- mutation test over the built-in specs ------------------------------------------------------------------
FEATURE_SPECS = [p for p in builtin_specs() if "cell:" in p.read_text(encoding="utf-8")]
HUGE = ["1000000000", "9223372036854775808", "100000", "1.0e308", "1.0e309", "-1", "0", "99999999999999999999999"]
NASTY = [
    "\n",
    "\x1b[31m",
    "\x00",
    "\r",
    "\t",
    "\u2028",
    "\x85",
    "\ufeff",
    "'",
    '"',
    "{",
    "[",
    "&a",
    "*a",
    "!!",
    "%",
    "~",
]


def _shrunk(path: Path) -> str:
    """The spec's text with its width and repeats parameters set small, so whatever survives builds fast."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s+width:\s*)\d+", r"\g<1>8", text)
    return re.sub(r"(?m)^(\s+repeats:\s*)\d+", r"\g<1>1", text)


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    kind = rng.choices(
        ["delete", "swap", "truncate", "duplicate", "type", "huge", "reserved", "control"], [2, 2, 1, 1, 3, 3, 3, 2]
    )[0]
    i = rng.randrange(len(lines))
    if kind == "delete":
        del lines[i]
    elif kind == "swap":  # with the next line: often still valid YAML
        j = min(i + 1, len(lines) - 1)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "truncate":
        return "".join(lines[:i]) if rng.random() < 0.5 else text[: rng.randrange(len(text) + 1)]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind in ("type", "huge", "reserved"):
        tokens = list(re.finditer(r"(?<=[:\[,{] )[^,\]}\n#]+|(?<=- )[^,\]}\n#]+", lines[i]))
        if tokens:
            match = rng.choice(tokens)
            if kind == "type":
                new = rng.choice(["[]", "{}", "null", "true", "yes", "3", "1.5", "'x'", "2024-01-01", "[P3, P4]"])
            elif kind == "huge":
                new = rng.choice(HUGE)
            else:
                new = rng.choice(sorted(n for n in reserved_ids() if not n.startswith("__")) + ["__class__"])
            lines[i] = lines[i][: match.start()] + new + lines[i][match.end() :]
    else:
        at = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:at] + rng.choice(NASTY) + lines[i][at:]
    return "".join(lines)


def check_mutants(path: Path, count: int, seed: int) -> None:
    rng = random.Random(f"{path.stem}-{seed}")
    base = _shrunk(path)
    file = f"mutated_{path.stem}.yaml"
    built = 0
    for _ in range(count):
        text = base
        for _ in range(1 if rng.random() < 0.7 else 2):
            text = mutate(text, rng)
        try:
            spec = loads_spec(text, file, limits=SMALL)
        except InputError as exc:
            message = str(exc)
            assert "\n" not in message and message.isprintable(), repr(message)
            assert message.startswith(file), message
            continue
        build_and_run_small(spec, (rng.randint(1, 40), rng.randint(1, 40)))
        built += 1
    assert built < count or count < 5  # the mutations do break things


@pytest.mark.parametrize("path", FEATURE_SPECS, ids=[p.stem for p in FEATURE_SPECS])
def test_mutated_builtin_specs_give_a_clean_error_or_build(path):
    check_mutants(path, count=40, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("path", FEATURE_SPECS, ids=[p.stem for p in FEATURE_SPECS])
def test_mutated_builtin_specs_give_a_clean_error_or_build_many(path):
    check_mutants(path, count=400, seed=1)
