"""Post-processing: hard NMS against effdet, soft-NMS by hand and against effdet."""

from __future__ import annotations

import math

import pytest
import torch

from effdet_graph.model.anchors import AnchorConfig, feature_map_sizes, generate_anchors
from effdet_graph.model.postprocess import PostProcessConfig, postprocess, soft_nms

SIZE = (256, 256)
CFG = AnchorConfig(3, 7)
K = 4


def random_outputs(seed: int, batch: int = 2):
    gen = torch.Generator().manual_seed(seed)
    cls_out, box_out = [], []
    for h, w in feature_map_sizes(SIZE, CFG):
        cls_out.append(torch.randn(batch, CFG.num_anchors * K, h, w, generator=gen) * 2 - 3)
        box_out.append(torch.randn(batch, CFG.num_anchors * 4, h, w, generator=gen) * 0.5)
    return cls_out, box_out


@pytest.mark.parametrize("image_hw", [(256, 256), (200, 160)])
def test_hard_nms_matches_effdet(image_hw):
    bench = pytest.importorskip("effdet.bench")
    cls_out, box_out = random_outputs(0)
    anchors = generate_anchors(SIZE, CFG)
    batch = cls_out[0].shape[0]
    pp = bench._post_process(cls_out, box_out, num_levels=CFG.num_levels, num_classes=K, max_detection_points=5000)
    ref = bench._batch_detection(
        batch,
        *pp[:2],
        anchors[:, [1, 0, 3, 2]],
        pp[2],
        pp[3],
        img_scale=torch.ones(batch),
        img_size=torch.tensor([[image_hw[1], image_hw[0]]] * batch),
        max_det_per_image=100,
        soft_nms=False,
    )
    ours = postprocess(cls_out, box_out, anchors, [image_hw] * batch, PostProcessConfig(score_threshold=0.0))
    for i in range(batch):
        d = ours[i]
        assert d["boxes"].shape == (100, 4)
        torch.testing.assert_close(d["boxes"], ref[i, :, :4], rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(d["scores"], ref[i, :, 4], rtol=1e-4, atol=1e-6)
        assert torch.equal(d["labels"] + 1, ref[i, :, 5].long())
        assert d["boxes"][:, 2].max() <= image_hw[1] and d["boxes"][:, 3].max() <= image_hw[0]
        assert d["boxes"].min() >= 0


def test_score_threshold_and_limits():
    cls_out, box_out = random_outputs(1, batch=1)
    anchors = generate_anchors(SIZE, CFG)
    out = postprocess(
        cls_out, box_out, anchors, [SIZE], PostProcessConfig(score_threshold=0.5, max_detections_per_image=7)
    )[0]
    assert len(out["scores"]) <= 7 and (out["scores"] >= 0.5).all()
    assert (out["scores"][:-1] >= out["scores"][1:]).all()
    quiet = [c * 0 - 20 for c in cls_out]
    none = postprocess(quiet, box_out, anchors, [SIZE], PostProcessConfig())[0]
    assert none["boxes"].shape == (0, 4) and none["labels"].dtype == torch.long


def test_soft_nms_hand_example():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # A class 0, 0.9
            [0.0, 0.0, 10.0, 5.0],  # B class 0, 0.8: IoU(A) = 0.5, IoU(E) = 1/3
            [0.0, 0.0, 10.0, 5.0],  # C class 1, 0.7: other class, never decayed
            [20.0, 20.0, 30.0, 30.0],  # D class 0, 0.6: overlaps nothing
            [0.0, 2.5, 10.0, 7.5],  # E class 0, 0.85: IoU(A) = 0.5
        ]
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.85])
    labels = torch.tensor([0, 0, 1, 0, 0])
    keep, new = soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.001)
    e = 0.85 * math.exp(-(0.5**2) / 0.5)  # 0.5155 after A
    b = 0.8 * math.exp(-(0.5**2) / 0.5) * math.exp(-((1 / 3) ** 2) / 0.5)  # after A, then E
    assert keep.tolist() == [0, 2, 3, 4, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.7, 0.6, e, b]), rtol=1e-5, atol=1e-6)
    # B (0.485 after A) survives a 0.38 threshold, and falls under 0.4 once E is picked
    keep, _ = soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.38)
    assert keep.tolist() == [0, 2, 3, 4, 1]
    keep, _ = soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.4)
    assert keep.tolist() == [0, 2, 3, 4]
    # 0.5: B is dropped right after A, E (0.5155) stays
    keep, _ = soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.5)
    assert keep.tolist() == [0, 2, 3, 4]
    keep, _ = soft_nms(boxes, scores, labels, max_detections=2)
    assert keep.tolist() == [0, 2]


def test_soft_nms_matches_effdet():
    ref_mod = pytest.importorskip("effdet.soft_nms")
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=gen) * 100
    wh = torch.rand(300, 2, generator=gen) * 40 + 5
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(300, generator=gen)
    labels = torch.randint(0, 3, (300,), generator=gen)
    ref_keep, ref_scores = ref_mod.batched_soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.001)
    keep, new = soft_nms(boxes, scores, labels, sigma=0.5, score_threshold=0.001, max_detections=100)
    assert torch.equal(keep, ref_keep[:100])
    torch.testing.assert_close(new, ref_scores[:100], rtol=1e-5, atol=1e-6)


def test_soft_nms_through_postprocess():
    cls_out, box_out = random_outputs(2, batch=1)
    out = postprocess(cls_out, box_out, generate_anchors(SIZE, CFG), [SIZE], PostProcessConfig(nms="soft"))[0]
    assert out["boxes"].shape == (100, 4)
    assert (out["scores"][:-1] >= out["scores"][1:]).all()


def test_bad_config():
    with pytest.raises(ValueError, match="nms"):
        PostProcessConfig(nms="linear")
