"""The detector scaling table (``specs/detectors/efficientdet.yaml``) read through the shared reader: a typed
:class:`ScalingTable`, and every mistake as one located line ``FILE:LINE:COL: ...`` naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import graphspec.parse
from effdet_graph.builtin import specs_dir
from effdet_graph.model import scaling
from effdet_graph.model.scaling import DETECTOR_FILE, ScalingTable, detector_config, load_scaling, scale_spec
from graphspec import ConfigError, InputError, SpecError, load_spec

TABLE = specs_dir() / DETECTOR_FILE


def variant(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    text = TABLE.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path = tmp_path / "table.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


def position(text: str, token: str) -> tuple[int, int]:
    index = text.index(token)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def test_builtin_table_is_typed():
    table = load_scaling()
    assert isinstance(table, ScalingTable) and table.phis == list(range(9))
    d0 = table.rows[0]
    assert d0.num_classes == 90 and d0.padding == "same" and d0.anchors.anchor_scale == 4.0
    assert table.rows[7].anchors.anchor_scale == 5.0 and table.rows[6].fusion == "sum" and table.rows[0].fusion is None
    d7 = table.config(7)
    assert d7.anchors.anchor_scale == 5.0 and d7.head.depth == 5 and d7.head.bn_eps == 1e-3
    assert table.config(0, backbone="resnet18", num_classes=3).backbone == "resnet18"
    assert detector_config(3).width == 160


# (old text, new text, the token the error points at, message fragments)
MALFORMED = [
    ("repeats: 3, head_depth: 3}", "repeats: 3}", "{name: d0", ["missing required key 'head_depth' in a model row"]),
    ("width: 64, ", "width: wide, ", "width: wide", ["`models.0.width` must be an integer, got 'wide'"]),
    ("repeats: 3, ", "repeats: 3, depth: 2, ", "depth: 2", ["unknown key 'depth' in a model row"]),
    ("phi: 1,", "phi: -1,", "phi: -1", ["`models.1.phi` must be >= 0, got -1"]),
    ("phi: 2,", "phi: 1,", "phi: 1, resolution: 768", ["phi 1 is listed twice (also by 'd1')"]),
    ("bn_eps: 1.0e-3", "bn_eps: small", "bn_eps: small", ["`head.bn_eps` must be a number, got 'small'"]),
    ("num_classes: 90", "num_clases: 90", "num_clases", ["unknown key 'num_clases'", "did you mean 'num_classes'?"]),
    ("padding: same", "padding: sam", "padding: sam", ["`padding`: unknown value 'sam'", "did you mean 'same'?"]),
    ("fusion: sum, anchor_scale", "fusion: summ, anchor_scale", "fusion: summ", ["unknown value 'summ'"]),
    ("[0.7, 1.4]]", "[0.7]]", "[0.7]]", ["items are [x, y] pairs"]),
]


@pytest.mark.parametrize("old, new, token, fragments", MALFORMED, ids=[m[1][:20] for m in MALFORMED])
def test_malformed_table_is_one_located_line(tmp_path, old, new, token, fragments):
    path, text = variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        detector_config(0, path=path)
    message = str(info.value)
    line, column = position(text, token)
    assert message.startswith(f"{path}:{line}:{column}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message and isinstance(info.value, InputError) and not isinstance(info.value, SpecError)


def test_yaml_1_1_numbers_are_numbers_in_the_table(tmp_path):
    path, _ = variant(tmp_path, "bn_eps: 1.0e-3", "bn_eps: 1e-3")
    assert load_scaling(path).config(0).head.bn_eps == pytest.approx(1e-3)


def test_unknown_phi_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"no scaling entry for phi 11; choose one of \[0, 1, .*8\]"):
        detector_config(11)


def test_scale_spec_reads_the_spec_once(monkeypatch):
    reads: list[str] = []
    original = graphspec.parse.load_yaml

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(graphspec.parse, "load_yaml", counting)
    spec_path = specs_dir() / "bifpn.yaml"
    scaled = scale_spec(spec_path, detector_config(3), {"repeats": 2})
    assert reads == [str(spec_path)]
    monkeypatch.undo()
    assert scaled == load_spec(spec_path, {"width": 160, "repeats": 2, "padding": "same"})
    assert scaled.width == 160 and scaled.repeats == 2


def test_scale_spec_needs_width_and_repeats(tmp_path):
    text = (specs_dir() / "bifpn.yaml").read_text(encoding="utf-8")
    path = tmp_path / "fixed.yaml"
    path.write_text(text.replace("width: $width", "width: 64").replace("  width: 64 ", "  wide: 64 ", 1))
    with pytest.raises(SpecError, match=r"compound scaling sets the parameters width"):
        scale_spec(path, scaling.detector_config(0))
