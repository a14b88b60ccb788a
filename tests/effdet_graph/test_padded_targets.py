"""Padded targets and batched anchor matching: the same targets and losses as image-by-image
matching, without a single host synchronisation."""

from __future__ import annotations

import pickle
import time

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks import image_by_image
from benchmarks.image_by_image import batch_targets, random_boxes
from effdet_graph.data.transforms import PaddedCollate, collate_detection
from effdet_graph.model.anchors import AnchorConfig, feature_map_sizes, generate_anchors
from effdet_graph.model.detector import DetectorTrainer, build_detector
from effdet_graph.model.losses import DetectionLoss
from effdet_graph.model.matching import IGNORE, MatchConfig
from effdet_graph.model.padded_targets import PaddedTargets, pad_targets
from effdet_graph.model.target_assignment import assign_targets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = (256, 256)
CFG = AnchorConfig(3, 7)
K = 5
ANCHORS = generate_anchors(SIZE, CFG)
CONFIGS = [MatchConfig(), MatchConfig(0.5, 0.5), MatchConfig(allow_low_quality_matches=False), MatchConfig(0.6, 0.3)]


def hard_targets(seed: int) -> list[dict[str, torch.Tensor]]:
    """A batch with every case matching has to get right: no boxes, one box, many boxes,
    duplicated boxes (tied IoUs for every anchor), boxes equal to anchors (IoU exactly 1), boxes
    that share their best anchor, a zero-area box (IoU 0 everywhere: forced onto anchor 0), crowds
    (none, one, several, one without any box), and a missing ``ignore_boxes`` key."""
    gen = torch.Generator().manual_seed(seed)
    labels = lambda n: torch.randint(0, K, (n,), generator=gen)  # noqa: E731
    many = random_boxes(gen, 150)
    ties = random_boxes(gen, 6)
    ties = torch.cat([ties, ties[:3], ANCHORS[[5000, 5001, 5000]], ANCHORS[[7, 7]] + 0.5])
    shared = torch.tensor([[40.0, 40.0, 80.0, 80.0], [41.0, 41.0, 79.0, 79.0], [40.0, 40.0, 81.0, 80.0]])
    return [
        {"boxes": torch.zeros(0, 4), "labels": labels(0), "ignore_boxes": torch.zeros(0, 4)},
        {"boxes": random_boxes(gen, 1), "labels": labels(1), "ignore_boxes": random_boxes(gen, 1)},
        {"boxes": many, "labels": labels(150), "ignore_boxes": random_boxes(gen, 5)},
        {"boxes": ties, "labels": labels(ties.shape[0])},
        {"boxes": torch.cat([shared, torch.tensor([[30.0, 30.0, 30.0, 30.0]])]), "labels": labels(4)},
        {"boxes": torch.zeros(0, 4), "labels": labels(0), "ignore_boxes": torch.tensor([[0.0, 0.0, 128.0, 256.0]])},
        {"boxes": random_boxes(gen, 10), "labels": labels(10), "ignore_boxes": random_boxes(gen, 3)},
    ]


def random_outputs(seed: int, batch: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    a = CFG.num_anchors
    cls_out, box_out = [], []
    for h, w in feature_map_sizes(SIZE, CFG):
        cls_out.append((torch.randn(batch, a * K, h, w, generator=gen) * 2 - 2).requires_grad_(True))
        box_out.append((torch.randn(batch, a * 4, h, w, generator=gen) * 0.3).requires_grad_(True))
    return cls_out, box_out


def reference_loss(cls_out, box_out, targets, match=MatchConfig()) -> dict[str, torch.Tensor]:
    """The loss as it was computed before the batched matching: image by image, boolean indexing."""
    return image_by_image.reference_loss(cls_out, box_out, ANCHORS, targets, K, match)


# ---------------------------------------------------------------- padding


def test_pad_targets_layout():
    targets = [
        {"boxes": torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]), "labels": torch.tensor([3, 0])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "ignore_boxes": torch.ones(1, 4)},
    ]
    p = pad_targets(targets, max_boxes=4, max_ignore_boxes=2)
    assert p.boxes.shape == (2, 4, 4) and p.ignore_boxes.shape == (2, 2, 4) and p.batch_size == 2
    assert p.labels.tolist() == [[3, 0, -1, -1], [-1, -1, -1, -1]]
    assert p.box_valid.tolist() == [[True, True, False, False], [False] * 4]
    assert p.ignore_valid.tolist() == [[False, False], [True, False]]
    assert torch.equal(p.boxes[0, :2], targets[0]["boxes"]) and p.boxes[0, 2:].eq(0).all()
    dynamic = pad_targets(targets, max_boxes=None, max_ignore_boxes=None)
    assert dynamic.boxes.shape == (2, 2, 4) and dynamic.ignore_boxes.shape == (2, 1, 4)
    none = pad_targets(targets[:1], max_boxes=None, max_ignore_boxes=None)
    assert none.ignore_boxes.shape == (1, 0, 4)


def test_pad_targets_overflow():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 30.0, 30.0], [0.0, 0.0, 5.0, 5.0], [0, 0, 20.0, 20.0]])
    targets = [{"boxes": boxes, "labels": torch.tensor([0, 1, 2, 3])}]
    with pytest.raises(ValueError, match=r"target 0 has 4 boxes, more than the maximum of 2.*overflow='largest'"):
        pad_targets(targets, max_boxes=2)
    kept = pad_targets(targets, max_boxes=2, overflow="largest")
    assert kept.labels.tolist() == [[1, 3]]  # the two largest, in their original order
    crowd = [{"boxes": boxes[:1], "labels": torch.tensor([0]), "ignore_boxes": boxes}]
    with pytest.raises(ValueError, match="4 ignore boxes"):
        pad_targets(crowd, max_ignore_boxes=3)
    assert pad_targets(crowd, max_ignore_boxes=1, overflow="largest").ignore_boxes[0].tolist() == [[0, 0, 30, 30]]
    with pytest.raises(ValueError, match="overflow must be"):
        pad_targets(targets, overflow="drop")  # type: ignore[arg-type]


def test_pad_targets_rejects_bad_targets():
    with pytest.raises(ValueError, match="needs 'boxes' and 'labels'"):
        pad_targets([{"boxes": torch.zeros(0, 4)}])
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        pad_targets([{"boxes": torch.zeros(2, 4), "labels": torch.zeros(1, dtype=torch.long)}])
    with pytest.raises(ValueError, match="class id out of range for 3 classes"):
        pad_targets([{"boxes": torch.zeros(1, 4), "labels": torch.tensor([3])}], num_classes=3)


def test_padded_collate_in_a_loader():
    gen = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(3, 8, 8), {"boxes": random_boxes(gen, 3), "labels": torch.zeros(3, dtype=torch.long)}),
        (torch.randn(3, 8, 8), {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "id": 7}),
    ]
    collate = pickle.loads(pickle.dumps(PaddedCollate(max_boxes=5, max_ignore_boxes=2, num_classes=K)))
    loader = torch.utils.data.DataLoader(data, batch_size=2, collate_fn=collate)
    images, padded = next(iter(loader))
    assert images.shape == (2, 3, 8, 8) and isinstance(padded, PaddedTargets)
    assert padded.boxes.shape == (2, 5, 4) and padded.box_valid.sum(1).tolist() == [3, 0]
    assert torch.equal(images, collate_detection(data)[0])
    moved = padded.to("cpu", non_blocking=True)
    assert torch.equal(moved.labels, padded.labels)


# ---------------------------------------------------------------- equivalence


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "effdet", "no_low_quality", "wide_band"])
@pytest.mark.parametrize("seed", [0, 1])
def test_batched_targets_equal_image_by_image(config, seed):
    targets = hard_targets(seed)
    classes, boxes, num_pos = batch_targets(ANCHORS, targets, config)
    assert (classes == IGNORE).any() and num_pos > 100
    for max_boxes, max_ignore in ((None, None), (160, 16), (300, 7)):
        got = assign_targets(ANCHORS, pad_targets(targets, max_boxes, max_ignore), config)
        assert torch.equal(got.classes, classes), (max_boxes, max_ignore)
        torch.testing.assert_close(got.boxes, boxes, atol=1e-6, rtol=0)
        assert got.num_positives.dtype == torch.long and got.num_positives.dim() == 0
        assert int(got.num_positives) == num_pos


def test_batched_targets_of_a_batch_without_any_box():
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}] * 2
    classes, boxes, _ = batch_targets(ANCHORS, targets)
    for max_boxes in (None, 3):  # M = 0 and M = 3 of padding only
        got = assign_targets(ANCHORS, pad_targets(targets, max_boxes, max_ignore_boxes=None))
        assert torch.equal(got.classes, classes) and torch.equal(got.boxes, boxes) and int(got.num_positives) == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_equals_the_image_by_image_loss(seed):
    targets = hard_targets(seed)
    loss = DetectionLoss(K)
    cls_out, box_out = random_outputs(seed, len(targets))
    ref = reference_loss(cls_out, box_out, targets)
    ref_grads = torch.autograd.grad(ref["loss"], cls_out + box_out)
    for form in (targets, pad_targets(targets, max_boxes=200, max_ignore_boxes=8)):
        got = loss(cls_out, box_out, ANCHORS, form)
        for name in ("loss", "class_loss", "box_loss"):
            torch.testing.assert_close(got[name], ref[name], rtol=1e-6, atol=0, msg=name)
        for g, r in zip(torch.autograd.grad(got["loss"], cls_out + box_out), ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-9)


def test_loss_ignores_non_finite_outputs_at_non_positive_anchors():
    targets = hard_targets(0)[:2]
    cls_out, box_out = random_outputs(0, 2)
    with torch.no_grad():
        box_out[0][0, :4, 0, 0] = float("nan")  # anchor 0 of image 0, which has no box
    got = DetectionLoss(K)(cls_out, box_out, ANCHORS, pad_targets(targets))
    assert torch.isfinite(got["loss"])


def test_reduce_positives_gives_the_global_batch_gradient():
    """Two 'processes' with half the batch each: the mean of their losses and gradients is the
    one-process loss and gradient of the whole batch."""
    targets = hard_targets(2)[1:7]
    cls_out, box_out = random_outputs(2, 6)
    whole = DetectionLoss(K)(cls_out, box_out, ANCHORS, targets)
    whole_grads = torch.autograd.grad(whole["loss"], cls_out + box_out)
    halves = [slice(0, 3), slice(3, 6)]
    counts = [assign_targets(ANCHORS, pad_targets(targets[h], None)).num_positives for h in halves]
    total = counts[0] + counts[1]
    losses, grads = [], []
    for h in halves:
        loss = DetectionLoss(K, reduce_positives=lambda p: total.clone(), world_size=2)
        out = loss([c[h] for c in cls_out], [b[h] for b in box_out], ANCHORS, pad_targets(targets[h], 160))
        losses.append(out)
        grads.append(torch.autograd.grad(out["loss"], cls_out + box_out))
    for name in ("loss", "class_loss", "box_loss"):
        torch.testing.assert_close((losses[0][name] + losses[1][name]) / 2, whole[name], rtol=1e-5, atol=0)
    for g0, g1, w in zip(*grads, whole_grads):
        torch.testing.assert_close((g0 + g1) / 2, w, rtol=1e-4, atol=1e-9)


def test_world_size_defaults_to_one_process():
    assert DetectionLoss(K).world_size == 1 and DetectionLoss(K, world_size=4).world_size == 4
    with pytest.raises(ValueError, match="world_size"):
        DetectionLoss(K, world_size=0)


def test_trainer_accepts_padded_targets():
    model = build_detector("specs/fpn.yaml", 0, num_classes=3, overrides={"width": 16, "repeats": 1}).train()
    images = torch.randn(2, 3, 128, 128)
    targets = [
        {"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    trainer = DetectorTrainer(model, 128)
    torch.manual_seed(0)
    listed = trainer(images, targets)
    torch.manual_seed(0)
    padded = trainer(images, pad_targets(targets))
    for name in listed:
        torch.testing.assert_close(padded[name], listed[name], rtol=1e-6, atol=0)


# ---------------------------------------------------------------- no host synchronisation

# operators that read a tensor's value on the host (item(), bool(), int(), nonzero, boolean masks)
_SYNCING = {"aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero", "aten::masked_select", "aten::unique"}


class _SyncRecorder(TorchDispatchMode):
    """Records every operator that needs a tensor's value on the host."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in _SYNCING or any(name.startswith(n) for n in _SYNCING):
            self.syncs.append(name)
        elif name.startswith("aten::index"):  # index / index_put with a boolean mask runs nonzero
            flat = [a for arg in args if isinstance(arg, list | tuple) for a in arg]
            if any(isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in flat):
                self.syncs.append(f"{name} with a boolean mask")
        return func(*args, **(kwargs or {}))


def test_padded_loss_never_reads_values_on_the_host():
    targets = hard_targets(0)
    padded = pad_targets(targets, max_boxes=160, max_ignore_boxes=8)
    cls_out, box_out = random_outputs(0, len(targets))
    with _SyncRecorder() as recorder:
        out = DetectionLoss(K)(cls_out, box_out, ANCHORS, padded)
        out["loss"].backward()
    assert recorder.syncs == []
    with _SyncRecorder() as old:  # the recorder does see the syncs of image-by-image matching
        reference_loss(cls_out, box_out, targets)["loss"].backward()
    assert "aten::_local_scalar_dense" in old.syncs and any("boolean mask" in s for s in old.syncs)


def _compile_loss_step():
    torch._dynamo.reset()
    loss = DetectionLoss(K)

    def step(cls_out, box_out, anchors, boxes, labels, box_valid, ignore_boxes, ignore_valid):
        targets = PaddedTargets(boxes, labels, box_valid, ignore_boxes, ignore_valid)
        return loss(cls_out, box_out, anchors, targets)["loss"]

    return torch.compile(step, fullgraph=True, backend="aot_eager", dynamic=False)


def test_padded_loss_compiles_to_one_graph():
    """``fullgraph=True``: dynamo raises on any graph break, which data-dependent Python control
    flow, ``.item()`` and boolean-mask indexing all cause."""
    targets = hard_targets(1)
    padded = pad_targets(targets, max_boxes=160, max_ignore_boxes=8)
    cls_out, box_out = random_outputs(1, len(targets))
    start = time.perf_counter()
    got = _compile_loss_step()(cls_out, box_out, ANCHORS, *padded._tensors())
    assert time.perf_counter() - start < 60
    torch.testing.assert_close(got, DetectionLoss(K)(cls_out, box_out, ANCHORS, targets)["loss"], rtol=1e-5, atol=0)
    got.backward()
    assert cls_out[0].grad is not None
    # and the check has teeth: image-by-image matching breaks the graph
    torch._dynamo.reset()
    old = torch.compile(lambda b, lab: batch_targets(ANCHORS, [{"boxes": b, "labels": lab}]), fullgraph=True)
    with pytest.raises(torch._dynamo.exc.Unsupported, match="[Dd]ata-dependent"):
        old(targets[2]["boxes"], targets[2]["labels"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_padded_loss_does_not_synchronize_cuda():
    device = torch.device("cuda")
    targets = hard_targets(0)
    padded = pad_targets(targets, max_boxes=160, max_ignore_boxes=8).to(device)
    cls_out, box_out = random_outputs(0, len(targets))
    cls_out = [c.detach().to(device).requires_grad_(True) for c in cls_out]
    box_out = [b.detach().to(device).requires_grad_(True) for b in box_out]
    anchors = ANCHORS.to(device)
    loss = DetectionLoss(K)
    loss(cls_out, box_out, anchors, padded)["loss"].backward()  # warm-up: lazy initialisation may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = loss(cls_out, box_out, anchors, padded)
        out["loss"].backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ref = reference_loss([c.cpu() for c in cls_out], [b.cpu() for b in box_out], targets)
    torch.testing.assert_close(out["loss"].cpu(), ref["loss"], rtol=1e-5, atol=0)
