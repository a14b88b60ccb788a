"""Box coding, anchor matching and the detection loss, checked against effdet."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from benchmarks.image_by_image import assign_one_image, match_one_image, one_hot_targets, random_boxes
from effdet_graph.model.anchors import AnchorConfig, feature_map_sizes, generate_anchors
from effdet_graph.model.box_coder import decode_boxes, encode_boxes
from effdet_graph.model.losses import DetectionLoss
from effdet_graph.model.matching import BACKGROUND, IGNORE, MatchConfig

SIZE = (256, 256)
CFG = AnchorConfig(3, 7)
K = 4


def random_batch(seed: int, counts=(5, 0, 12)):
    gen = torch.Generator().manual_seed(seed)
    targets = []
    for n in counts:
        targets.append({"boxes": random_boxes(gen, n), "labels": torch.randint(0, K, (n,), generator=gen)})
    a = CFG.num_anchors
    cls_out, box_out = [], []
    for h, w in feature_map_sizes(SIZE, CFG):
        cls_out.append(torch.randn(len(counts), a * K, h, w, generator=gen) * 2 - 2)
        box_out.append(torch.randn(len(counts), a * 4, h, w, generator=gen) * 0.3)
    return cls_out, box_out, targets


def test_encode_decode_roundtrip():
    gen = torch.Generator().manual_seed(0)
    anchors = random_boxes(gen, 50)
    boxes = random_boxes(gen, 50)
    codes = encode_boxes(boxes, anchors)
    torch.testing.assert_close(decode_boxes(codes, anchors), boxes, rtol=1e-4, atol=1e-3)
    # (ty, tx, th, tw): a box shifted right by half the anchor width -> tx = 0.5
    a = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 40.0]])
    torch.testing.assert_close(encode_boxes(b, a), torch.tensor([[0.5, 0.5, 0.6931472, 0.0]]), atol=1e-5, rtol=0)


def test_encode_matches_effdet_coder():
    coder_mod = pytest.importorskip("effdet.object_detection")
    gen = torch.Generator().manual_seed(1)
    anchors, boxes = random_boxes(gen, 30), random_boxes(gen, 30)
    ref = coder_mod.FasterRcnnBoxCoder().encode(
        coder_mod.BoxList(boxes[:, [1, 0, 3, 2]]), coder_mod.BoxList(anchors[:, [1, 0, 3, 2]])
    )
    torch.testing.assert_close(encode_boxes(boxes, anchors), ref, rtol=1e-5, atol=1e-6)


def test_matching_thresholds_and_forced_match():
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1.0 with gt0 -> positive
            [0.0, 0.0, 10.0, 8.0],  # IoU 0.8 -> positive
            [0.0, 0.0, 10.0, 4.5],  # IoU 0.45 -> ignored
            [0.0, 0.0, 10.0, 3.0],  # IoU 0.3 -> negative
            [100.0, 100.0, 110.0, 110.0],  # far away, but gt1's best anchor -> forced positive
        ]
    )
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 130.0, 130.0]])
    m = match_one_image(anchors, gts, MatchConfig())
    assert m.tolist() == [0, 0, IGNORE, BACKGROUND, 1]
    m = match_one_image(anchors, gts, MatchConfig(allow_low_quality_matches=False))
    assert m.tolist() == [0, 0, IGNORE, BACKGROUND, BACKGROUND]
    empty = match_one_image(anchors, torch.zeros(0, 4))
    assert empty.tolist() == [BACKGROUND] * 5


def test_crowd_boxes_ignore_anchors_inside_them():
    anchors = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0], [55.0, 50.0, 65.0, 60.0], [200.0, 200.0, 210.0, 210.0]]
    )
    t = assign_one_image(
        anchors,
        torch.tensor([[0.0, 0.0, 10.0, 10.0]]),
        torch.tensor([3]),
        ignore_boxes=torch.tensor([[0.0, 0.0, 62.0, 62.0]]),
    )
    # anchor 0 stays positive although inside the crowd box; 1 fully inside, 2 70% inside
    assert t.classes.tolist() == [3, IGNORE, IGNORE, BACKGROUND]
    assert t.num_positives == 1
    onehot, valid = one_hot_targets(t.classes, 4)
    assert onehot.tolist()[0] == [0, 0, 0, 1] and onehot[1:].sum() == 0
    assert valid.tolist() == [True, False, False, True]


def _effdet_loss_module():
    loss_mod = pytest.importorskip("effdet.loss")
    cfg = SimpleNamespace(
        num_classes=K,
        alpha=0.25,
        gamma=1.5,
        delta=0.1,
        box_loss_weight=50.0,
        label_smoothing=0.0,
        legacy_focal=False,
        jit_loss=False,
    )
    return loss_mod.DetectionLoss(cfg)


def _split_levels(flat: torch.Tensor, batch: int):
    """(N, total, C) in anchor order -> per level (N, H, W, A * C)."""
    out, start = [], 0
    for h, w in feature_map_sizes(SIZE, CFG):
        n = h * w * CFG.num_anchors
        out.append(flat[:, start : start + n].reshape(batch, h, w, -1))
        start += n
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_matches_effdet_labeler_and_loss(seed):
    """Thresholds 0.5/0.5 are effdet's AnchorLabeler; whole pipeline compared."""
    anchors_mod = pytest.importorskip("effdet.anchors")
    cls_out, box_out, targets = random_batch(seed)
    ref_anchors = anchors_mod.Anchors(
        CFG.min_level, CFG.max_level, CFG.num_scales, list(CFG.aspect_ratios), CFG.anchor_scale, SIZE
    )
    labeler = anchors_mod.AnchorLabeler(ref_anchors, K, match_threshold=0.5)
    # effdet: yxyx boxes, 1-based labels (it subtracts 1 internally)
    cls_t, box_t, num_pos = labeler.batch_label_anchors(
        [t["boxes"][:, [1, 0, 3, 2]] for t in targets], [t["labels"] + 1 for t in targets]
    )
    ref = _effdet_loss_module()(cls_out, box_out, cls_t, box_t, num_pos)

    ours = DetectionLoss(K, match=MatchConfig(0.5, 0.5))(cls_out, box_out, generate_anchors(SIZE, CFG), targets)
    for name, value in zip(("loss", "class_loss", "box_loss"), ref):
        torch.testing.assert_close(ours[name], value, rtol=1e-4, atol=1e-6, msg=name)
    assert num_pos.sum() > 10


def test_loss_ignore_band_matches_effdet_assigner():
    """Thresholds 0.5/0.4: effdet's own matcher with ignored anchors (-2) masked in its loss."""
    od = pytest.importorskip("effdet.object_detection")
    cls_out, box_out, targets = random_batch(3)
    anchors = generate_anchors(SIZE, CFG)
    assigner = od.TargetAssigner(
        od.IouSimilarity(),
        od.ArgMaxMatcher(
            0.5, unmatched_threshold=0.4, negatives_lower_than_unmatched=True, force_match_for_each_row=True
        ),
        od.FasterRcnnBoxCoder(),
    )
    cls_list, box_list, num_pos = [], [], []
    for t in targets:
        c, b, match = assigner.assign(
            od.BoxList(anchors[:, [1, 0, 3, 2]]), od.BoxList(t["boxes"][:, [1, 0, 3, 2]]), t["labels"] + 1
        )
        c = (c - 1).long()
        c[match.match_results == -2] = -2
        ours = assign_one_image(anchors, t["boxes"], t["labels"], config=MatchConfig(0.5, 0.4))
        assert torch.equal(ours.classes, c)
        torch.testing.assert_close(ours.boxes, b, rtol=1e-5, atol=1e-6)
        cls_list.append(c)
        box_list.append(b)
        num_pos.append((match.match_results > -1).float().sum())
    assert sum(int((c == IGNORE).sum()) for c in cls_list) > 0
    n = len(targets)
    cls_levels = _split_levels(torch.stack(cls_list)[..., None], n)  # (N, H, W, A)
    box_levels = _split_levels(torch.stack(box_list), n)
    ref = _effdet_loss_module()(cls_out, box_out, cls_levels, box_levels, torch.stack(num_pos))
    ours = DetectionLoss(K)(cls_out, box_out, anchors, targets)
    for name, value in zip(("loss", "class_loss", "box_loss"), ref):
        torch.testing.assert_close(ours[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_loss_empty_batch_finite_and_backprop():
    cls_out, box_out, _ = random_batch(0, counts=(0, 0))
    for t in cls_out + box_out:
        t.requires_grad_(True)
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}] * 2
    out = DetectionLoss(K)(cls_out, box_out, generate_anchors(SIZE, CFG), targets)
    assert out["box_loss"].item() == 0.0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert cls_out[0].grad is not None


def test_loss_rejects_mismatched_anchors():
    cls_out, box_out, targets = random_batch(0)
    with pytest.raises(ValueError, match="anchors"):
        DetectionLoss(K)(cls_out, box_out, generate_anchors((128, 128), CFG), targets)
