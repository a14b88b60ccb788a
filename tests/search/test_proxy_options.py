"""The ``proxy`` options of a search space are checked when the file loads, by the rules of
:class:`~effdet_graph.training.options.TrainOptions` (the options every trial trains with): a bad value is
one located line naming ``proxy.<key>``, and ``effdet-graph search`` exits 2 before writing anything."""

from __future__ import annotations

import pytest
from search_helpers import variant_text

from effdet_graph.cli import main
from graphspec import ConfigError, SpecError
from search.space import load_search_space

# (old text of the built-in compound space, new text, the token the error points at, the message)
BAD_PROXIES = [
    ("  steps: 100", "  steps: 100\n  ema_decay: 1.5", "ema_decay: 1.5", "proxy.ema_decay must be in [0, 1), got 1.5"),
    ("  steps: 100", "  steps: 100\n  lr: 0", "lr: 0", "proxy.lr must be positive, got 0"),
    ("  batch_size: 8", "  batch_size: 0", "batch_size: 0", "proxy.batch_size must be at least 1, got 0"),
    (
        "  steps: 100",
        "  steps: 100\n  scale_range: {low: 0, high: 1.5}",
        "scale_range: {",
        "proxy.scale_range must be LOW,HIGH with 0 < LOW <= HIGH, got 0,1.5",
    ),
]


def _position(text: str, token: str) -> tuple[int, int]:
    index = text.index(token)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


@pytest.mark.parametrize("old, new, token, message", BAD_PROXIES, ids=[p[3][:16] for p in BAD_PROXIES])
def test_bad_proxy_options_are_refused_at_load(write_space, old, new, token, message):
    text = variant_text("compound", old, new)
    path = write_space("bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_search_space(path)
    line, column = _position(text, token)
    assert str(info.value) == f"{path}:{line}:{column}: {message}"
    assert info.value.key == f"proxy.{token.split(':')[0]}"
    assert not isinstance(info.value, SpecError)  # a search space is not a spec


def test_a_swapped_scale_range_is_refused_at_its_low_end(write_space):
    text = variant_text("compound", "  steps: 100", "  steps: 100\n  scale_range: {low: 2, high: 0.5}")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+:\d+: `proxy.scale_range`: low 2 is greater than high 0.5"):
        load_search_space(write_space("bad.yaml", text))
    text = variant_text("compound", "  steps: 100", "  steps: 100\n  scale_range: {low: 0.5, high: 2}")
    assert load_search_space(write_space("ok.yaml", text)).proxy.scale_range == (0.5, 2)


def test_yaml_1_1_learning_rate_is_a_number(write_space):
    text = variant_text("compound", "  steps: 100", "  steps: 100\n  lr: 1e-3")
    assert load_search_space(write_space("ok.yaml", text)).proxy.lr == pytest.approx(1e-3)


@pytest.mark.parametrize("old, new, token, message", BAD_PROXIES[:2], ids=["ema_decay", "lr"])
def test_search_command_exits_2_with_one_line_before_writing(write_space, tmp_path, capsys, old, new, token, message):
    path = write_space("bad.yaml", variant_text("compound", old, new))
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"error: {path}:") and err.endswith(message), err
    assert "\n" not in err and "Traceback" not in captured.err
    assert not out.exists()


def test_proxy_backbone_weights_resolve_from_the_space_folder_and_must_exist(write_space):
    text = variant_text("compound", "  steps: 100", "  steps: 100\n  backbone_weights: b0.safetensors")
    path = write_space("weights.yaml", text)
    with pytest.raises(ConfigError, match=r"weights.yaml:\d+:\d+: proxy.backbone_weights: no weights file at .*b0"):
        load_search_space(path)
    (path.parent / "b0.safetensors").write_bytes(b"")
    proxy = load_search_space(path).proxy
    assert proxy.backbone_weights == path.parent / "b0.safetensors" and not proxy.pretrained_backbone
    both = variant_text(
        "compound", "  steps: 100", "  steps: 100\n  pretrained_backbone: true\n  backbone_weights: b0.safetensors"
    )
    with pytest.raises(ConfigError, match="pretrained_backbone or proxy.backbone_weights, not both"):
        load_search_space(write_space("both.yaml", both))


def test_proxy_freeze_backbone_reaches_every_trials_training_and_must_be_a_boolean(write_space, tmp_path):
    from search.space import builtin_space
    from search.space.types import topology_choices
    from search.strategies.proxy import proxy_options

    assert not load_search_space(builtin_space("nasfpn_cells")).proxy.freeze_backbone  # random init stays
    space = load_search_space(builtin_space("bifpn_edges"))
    assert space.proxy.freeze_backbone and space.proxy.pretrained_backbone and space.proxy.feature_cache
    detector = topology_choices(space).detector
    options = proxy_options(space, detector, tmp_path, tmp_path / "spec.yaml", tmp_path, 10, 0, None)
    assert options.freeze_backbone and options.pretrained_backbone and options.feature_cache
    assert options.backbone == "efficientnet_lite0" and options.views is None  # None: the cache's 8
    fine_tuned = variant_text("bifpn_edges", "  feature_cache: true", "  feature_cache: false")
    fine_tuned = fine_tuned.replace("  freeze_backbone: true", "  freeze_backbone: false")
    proxy = load_search_space(write_space("fine_tuned.yaml", fine_tuned)).proxy
    assert proxy.pretrained_backbone and not proxy.freeze_backbone and not proxy.feature_cache
    views = variant_text("bifpn_edges", "  feature_cache: true", "  feature_cache: true\n  views: 4")
    proxy = load_search_space(write_space("cached.yaml", views)).proxy
    assert (proxy.feature_cache, proxy.views) == (True, 4)
    unfrozen = variant_text("bifpn_edges", "  freeze_backbone: true", "  freeze_backbone: false")
    with pytest.raises(ConfigError, match=r"unfrozen.yaml:\d+:\d+: proxy.feature_cache holds a frozen backbone"):
        load_search_space(write_space("unfrozen.yaml", unfrozen))
    bad = variant_text("bifpn_edges", "  freeze_backbone: true", "  freeze_backbone: maybe")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+:\d+: .*freeze_backbone"):
        load_search_space(write_space("bad.yaml", bad))


def test_the_search_scripts_help_says_which_backbone_and_weights_each_space_trains(write_space, capsys, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    from search.cli import backbone_line
    from search.space import builtin_space

    line = backbone_line(load_search_space(builtin_space("bifpn_edges")))
    assert line.startswith("  bifpn_edges: efficientnet_lite0 from ImageNet weights")
    assert line.endswith(
        "from ImageNet weights (offline where the weights extra ships them), frozen, on the feature cache"
    )
    script = Path(__file__).resolve().parents[2] / "search" / "topology.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SystemExit):
        runpy.run_path(str(script), run_name="__main__")
    shown = capsys.readouterr().out
    assert (
        "The backbone of each space's trials:" in shown and "  nasfpn_cells: " in shown and "  bifpn_edges: " in shown
    )
    assert "  nasfpn_cells: tf_efficientnet_b0 from random weights" in shown and line in shown
