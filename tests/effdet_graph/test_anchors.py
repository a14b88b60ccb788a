"""Anchors: same order and values as effdet's (yxyx -> xyxy), layout helpers."""

from __future__ import annotations

import pytest
import torch

from effdet_graph.model.anchors import AnchorConfig, Anchors, feature_map_sizes, flatten_level_outputs, generate_anchors

RATIOS = [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]


@pytest.mark.parametrize(
    "min_level,max_level,anchor_scale,size",
    [
        (3, 7, 4.0, (512, 512)),
        (3, 8, 5.0, (512, 512)),
        (3, 7, 4.0, (256, 384)),
    ],
)
def test_matches_effdet(min_level, max_level, anchor_scale, size):
    effdet_anchors = pytest.importorskip("effdet.anchors")
    ref = effdet_anchors.Anchors(min_level, max_level, 3, RATIOS, anchor_scale, size).boxes
    ours = generate_anchors(size, AnchorConfig(min_level, max_level, anchor_scale=anchor_scale))
    assert ours.dtype == torch.float32
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref[:, [1, 0, 3, 2]], rtol=0, atol=1e-4)


def test_feature_map_sizes_ceil_halving():
    cfg = AnchorConfig(3, 7)
    assert feature_map_sizes((512, 512), cfg) == [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)]
    assert feature_map_sizes((300, 200), cfg) == [(38, 25), (19, 13), (10, 7), (5, 4), (3, 2)]


def test_order_level_position_anchor():
    cfg = AnchorConfig(3, 4, num_scales=2, aspect_ratios=((1.0, 1.0), (2.0, 0.5)), anchor_scale=1.0)
    boxes = generate_anchors((32, 32), cfg)
    assert boxes.shape == (4 * 4 * 4 + 2 * 2 * 4, 4)
    # level 3, position (row 0, col 1): centre (12, 4); anchor 0 = octave 0 aspect (1, 1): 8x8
    torch.testing.assert_close(boxes[4], torch.tensor([8.0, 0.0, 16.0, 8.0]))
    # anchor 1 = octave 0, aspect (2, .5): 16 wide, 4 high
    torch.testing.assert_close(boxes[5], torch.tensor([4.0, 2.0, 20.0, 6.0]))
    # anchor 2 = octave 1 (x sqrt 2), aspect (1, 1)
    s = 8 * 2**0.5 / 2
    torch.testing.assert_close(boxes[6], torch.tensor([12 - s, 4 - s, 12 + s, 4 + s]))
    # position (row 1, col 0) starts at index 4 * 4 (row-major)
    torch.testing.assert_close(boxes[16], torch.tensor([0.0, 8.0, 8.0, 16.0]))
    # level 4 starts after all of level 3
    torch.testing.assert_close(boxes[64], torch.tensor([0.0, 0.0, 16.0, 16.0]))


def test_flatten_lines_up_with_anchors():
    cfg = AnchorConfig(3, 4, num_scales=1, aspect_ratios=((1.0, 1.0), (2.0, 0.5)))
    num_classes = 3
    sizes = feature_map_sizes((32, 64), cfg)
    # fill class logits with a code naming (level, y, x, anchor, class)
    outs = []
    for lvl, (h, w) in enumerate(sizes):
        t = torch.zeros(1, cfg.num_anchors * num_classes, h, w)
        for a in range(cfg.num_anchors):
            for k in range(num_classes):
                for y in range(h):
                    for x in range(w):
                        t[0, a * num_classes + k, y, x] = lvl * 1e4 + y * 1e3 + x * 10 + a + k * 0.1
        outs.append(t)
    flat = flatten_level_outputs(outs, num_classes)
    assert flat.shape == (1, generate_anchors((32, 64), cfg).shape[0], num_classes)
    # second level, y=1, x=2, anchor 1, class 2
    h0, w0 = sizes[0]
    idx = h0 * w0 * 2 + (1 * sizes[1][1] + 2) * 2 + 1
    assert flat[0, idx, 2].item() == pytest.approx(1e4 + 1e3 + 20 + 1 + 0.2)


def test_module_buffer_not_persistent():
    m = Anchors(AnchorConfig(3, 5), (128, 128))
    assert m.boxes.shape[0] == (16 * 16 + 8 * 8 + 4 * 4) * 9
    assert "boxes" not in m.state_dict()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(min_level=0),
        dict(min_level=5, max_level=4),
        dict(num_scales=0),
        dict(aspect_ratios=()),
        dict(aspect_ratios=((1.0, -1.0),)),
        dict(anchor_scale=0.0),
    ],
)
def test_bad_config(kwargs):
    with pytest.raises(ValueError):
        AnchorConfig(**kwargs)
