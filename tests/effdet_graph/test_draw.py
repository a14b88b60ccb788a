"""Drawing a spec's cell: every built-in spec to SVG and PNG, deterministic, atomic, suffix checked."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from effdet_graph.builtin import builtin_specs
from effdet_graph.fpn.draw import draw_spec
from graphspec import InputError, level_name, load_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", builtin_specs(), ids=lambda p: p.stem)
def test_builtin_specs_draw_to_svg_and_png(path, tmp_path):
    spec = load_spec(path)
    draw_spec(spec, tmp_path / "cell.svg")
    draw_spec(spec, tmp_path / "cell.png")
    svg = (tmp_path / "cell.svg").read_text()
    for vertex_id in [node.id for node in spec.nodes] + [level_name(level) for level in spec.levels]:
        assert f">{vertex_id}</text>" in svg, vertex_id
    assert f"{spec.name}: width {spec.width}, cell \u00d7{spec.repeats}" in svg
    assert (tmp_path / "cell.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.png", "cell.svg"]  # no temporary files left


def test_drawing_is_deterministic(tmp_path):
    spec = load_spec("specs/qufpn.yaml")
    for name in ("a.svg", "b.svg", "a.png", "b.png"):
        draw_spec(spec, tmp_path / name)
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_suffix_is_case_insensitive(tmp_path):
    draw_spec(load_spec("specs/fpn.yaml"), tmp_path / "cell.PNG")
    assert (tmp_path / "cell.PNG").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("name", ["cell.pdf", "cell.jpg", "cell"])
def test_unsupported_suffix_raises_and_writes_nothing(name, tmp_path):
    with pytest.raises(InputError, match=r"supported: \.svg, \.png"):
        draw_spec(load_spec("specs/bifpn.yaml"), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_failed_render_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "cell.svg"
    target.write_text("old")

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        draw_spec(load_spec("specs/bifpn.yaml"), target)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
