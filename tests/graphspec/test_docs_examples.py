"""docs/spec.md stays true: its examples load, compile and run, its command lines print what it shows,
and it documents every key and every valid choice of the language.

Fenced blocks of docs/spec.md, by info string:
  ```yaml              a complete spec: loaded, compiled, run and checked against the cost model
  ```yaml NAME.yaml    the same, and written to NAME.yaml for the console blocks
  ```yaml invalid NAME.yaml   written to NAME.yaml only (the console blocks show its error)
  ```yaml fragment     an excerpt: must be safe, well-formed YAML
  ```console           `$ effdet-graph ...` lines are run in the folder of the NAME.yaml files; the
                       lines after each must match the output, where `...` matches any text
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from effdet_graph.cli import main
from graphspec import loads_spec, model
from graphspec import parse as spec_parse
from graphspec.yaml_loader import loads_yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
TEXT = DOC.read_text(encoding="utf-8")
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
BLOCKS = [(m.group(1).split(), m.group(2), TEXT.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(TEXT)]
SPEC_BLOCKS = [
    (info, body, line)
    for info, body, line in BLOCKS
    if info[:1] == ["yaml"] and (len(info) == 1 or info[1].endswith(".yaml"))
]
FRAGMENTS = [(body, line) for info, body, line in BLOCKS if info[:2] == ["yaml", "fragment"]]
FILES = {info[-1]: body for info, body, _ in BLOCKS if info[:1] == ["yaml"] and info[-1].endswith(".yaml")}
CONSOLE = [(body, line) for info, body, line in BLOCKS if info[:1] == ["console"]]
B0_CHANNELS = [40, 112, 320]


def test_the_doc_has_examples():
    assert len(SPEC_BLOCKS) >= 3 and FRAGMENTS and CONSOLE
    assert "my_pyramid.yaml" in FILES and "tiny_fpn.yaml" in FILES
    assert all(info[0] in ("yaml", "console", "python", "text") for info, _, _ in BLOCKS), "unknown fence"


@pytest.mark.parametrize("info, body, line", SPEC_BLOCKS, ids=[f"line{b[2]}" for b in SPEC_BLOCKS])
def test_yaml_spec_blocks_load_compile_and_run(info, body, line, check_network):
    spec = loads_spec(body, info[-1] if len(info) > 1 else f"docs/spec.md:{line}")
    channels = B0_CHANNELS[: len(spec.backbone_levels)] + [16] * (len(spec.backbone_levels) - 3)
    check_network(spec, channels, (96, 72))


@pytest.mark.parametrize("body, line", FRAGMENTS, ids=[f"line{f[1]}" for f in FRAGMENTS])
def test_yaml_fragments_are_safe_yaml(body, line):
    assert loads_yaml(body, f"docs/spec.md:{line}").data


def _matches(expected: str, actual: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in expected.split("...")), actual) is not None


@pytest.mark.parametrize("body, line", CONSOLE, ids=[f"line{c[1]}" for c in CONSOLE])
def test_console_blocks_print_what_the_doc_shows(body, line, tmp_path, monkeypatch, capsys):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runs: list[tuple[str, list[str]]] = []
    for text_line in body.splitlines():
        if text_line.startswith("$ "):
            runs.append((text_line[2:], []))
        else:
            runs[-1][1].append(text_line)
    assert runs, "a console block without commands"
    for command, expected in runs:
        argv = shlex.split(command)
        assert argv[0] == "effdet-graph", command
        if "--draw" in argv and importlib.util.find_spec("effdet_graph.fpn.draw") is None:
            continue  # drawing lives in effdet_graph/fpn/draw.py; not installed in this checkout
        code = main(argv[1:])
        captured = capsys.readouterr()
        actual = (captured.out + captured.err).splitlines()
        assert code == (2 if any(e.startswith("error: ") for e in expected) else 0), command
        assert len(actual) == len(expected), f"{command}: got\n" + "\n".join(actual)
        for want, got in zip(expected, actual):
            assert _matches(want, got), f"{command}:\n  doc: {want}\n  got: {got}"
        if "--draw" in argv:
            assert (tmp_path / argv[argv.index("--draw") + 1]).stat().st_size > 0


@pytest.mark.parametrize("keys", ["TOP_KEYS", "INPUT_KEYS", "DERIVED_KEYS", "DEFAULT_KEYS", "CELL_KEYS", "NODE_KEYS"])
def test_every_key_is_documented(keys):
    missing = [key for key in getattr(spec_parse, keys) if f"`{key}`" not in TEXT]
    assert not missing, f"docs/spec.md does not document {keys} {missing}"


@pytest.mark.parametrize(
    "choices",
    ["MERGES", "FUSIONS", "UPSAMPLES", "DOWNSAMPLES", "PROJECTIONS", "LATERALS", "PADDINGS", "OP_STEPS", "ACTIVATIONS"],
)
def test_every_valid_choice_is_documented(choices):
    missing = [c for c in getattr(model, choices, ()) if f"`{c}`" not in TEXT]
    assert not missing, f"docs/spec.md does not document {choices} {missing}"


def test_documented_defaults_are_the_built_in_ones():
    defaults = spec_parse.BUILTIN_DEFAULTS
    table = TEXT.split("## Defaults", 1)[1].split("\n## ", 1)[0]
    rows = {
        cells[1].strip("` "): cells[3].strip()
        for cells in (row.split("|") for row in table.splitlines())
        if len(cells) > 4 and cells[1].strip().startswith("`")
    }
    assert set(rows) == set(defaults)
    for key, value in defaults.items():
        shown = rows[key].strip("`")
        if isinstance(value, tuple):
            assert shown == "[" + ", ".join(value) + "]", key
        elif isinstance(value, bool):
            assert shown == str(value).lower(), key
        elif isinstance(value, float):
            assert float(shown) == value, key
        else:
            assert shown == value, key
    eps = re.search(r"`fast_normalized` \| .*`eps = ([^`]+)`", TEXT)
    assert eps and float(eps.group(1)) == model.FAST_NORMALIZED_EPS
