"""Training-step micro-benchmark: anchor matching + detection loss, image by image against batched.

    OMP_NUM_THREADS=1 python -m benchmarks.bench_train_step [--runs N]

A batch of 8 images at 512x512 (EfficientDet-D0 anchors: levels 3-7, 9 per location, 49,104 in
all), 90 classes, 6-14 boxes per image (seeded), crowd boxes on two images; the head outputs are
random. Timed: target assignment alone, and the loss forward (target assignment included), for

* ``old``: the previous loss, matching image by image (:func:`benchmarks.image_by_image.batch_targets`,
  host-side branches, boolean-mask indexing) and ``codes[positive]``;
* ``new_list``: :class:`DetectionLoss` given the list of dicts (pads to the batch's most boxes);
* ``new_padded_batch_max``: given :class:`PaddedTargets` padded to the batch's most boxes;
* ``new_padded_100``: given :class:`PaddedTargets` of 100 boxes and 16 crowd boxes per image
  (the fixed shapes a CUDA graph needs; padding from the collate function, not timed).

Also counted, once per variant, in the loss forward: aten operators dispatched (about the kernel
launches on a GPU) and host synchronisations among them (``item``/``nonzero``/boolean masks). On the
CPU the loss forward is dominated by the focal loss over ``8 x 49,104 x 90`` logits, the same in
every variant. Runs alternate; medians and the ratios old / new are printed and written to
``benchmarks/results/train_step.json`` with the machine. With CUDA the same on the GPU, plus the
``new_padded_100`` loss forward replayed from a CUDA graph; without CUDA there is no ``cuda`` key.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.image_by_image import batch_targets, reference_loss
from benchmarks.ranking.store import write_results
from effdet_graph.model import (
    AnchorConfig,
    DetectionLoss,
    assign_targets,
    feature_map_sizes,
    generate_anchors,
    pad_targets,
)

RESULTS = Path(__file__).resolve().parent / "results" / "train_step.json"
SIZE = (512, 512)
BATCH = 8
NUM_CLASSES = 90
ANCHOR_CONFIG = AnchorConfig(3, 7)
_SYNCING = ("aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero", "aten::masked_select")

Variant = Callable[[], dict[str, torch.Tensor]]


def make_batch(device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Random head outputs and targets of ``BATCH`` images on ``device``."""
    gen = torch.Generator().manual_seed(0)
    targets = []
    for i in range(BATCH):
        n = int(torch.randint(6, 15, (1,), generator=gen))
        side = torch.exp(torch.empty(n, 2).uniform_(2.5, 6.0, generator=gen))
        x1y1 = torch.rand(n, 2, generator=gen) * (torch.tensor([SIZE[1], SIZE[0]]) - side)
        target = {
            "boxes": torch.cat([x1y1, x1y1 + side], dim=1),
            "labels": torch.randint(0, NUM_CLASSES, (n,), generator=gen),
        }
        if i in (2, 5):
            target["ignore_boxes"] = torch.tensor([[300.0, 300.0, 500.0, 420.0]])
        targets.append({k: v.to(device) for k, v in target.items()})
    cls_out, box_out = [], []
    a = ANCHOR_CONFIG.num_anchors
    for h, w in feature_map_sizes(SIZE, ANCHOR_CONFIG):
        cls_out.append((torch.randn(BATCH, a * NUM_CLASSES, h, w, generator=gen) - 4).to(device))
        box_out.append((torch.randn(BATCH, a * 4, h, w, generator=gen) * 0.3).to(device))
    return cls_out, box_out, targets


def variants(device: torch.device) -> tuple[dict[str, Variant], dict[str, Callable[[], object]]]:
    """Per variant the loss forward, and its target assignment alone."""
    cls_out, box_out, targets = make_batch(device)
    anchors = generate_anchors(SIZE, ANCHOR_CONFIG).to(device)
    loss = DetectionLoss(NUM_CLASSES)
    # padded on the CPU, as the collate function does in the loader's workers, then moved
    cpu_targets = [{k: v.cpu() for k, v in t.items()} for t in targets]
    batch_max = pad_targets(cpu_targets, max_boxes=None, max_ignore_boxes=None).to(device)
    fixed = pad_targets(cpu_targets, max_boxes=100, max_ignore_boxes=16).to(device)
    losses: dict[str, Variant] = {
        "old": lambda: reference_loss(cls_out, box_out, anchors, targets, NUM_CLASSES),
        "new_list": lambda: loss(cls_out, box_out, anchors, targets),
        "new_padded_batch_max": lambda: loss(cls_out, box_out, anchors, batch_max),
        "new_padded_100": lambda: loss(cls_out, box_out, anchors, fixed),
    }
    assignments: dict[str, Callable[[], object]] = {
        "old": lambda: batch_targets(anchors, targets),
        "new_list": lambda: assign_targets(
            anchors, pad_targets(targets, max_boxes=None, max_ignore_boxes=None, num_classes=NUM_CLASSES)
        ),
        "new_padded_batch_max": lambda: assign_targets(anchors, batch_max),
        "new_padded_100": lambda: assign_targets(anchors, fixed),
    }
    return losses, assignments


class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.syncs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        self.ops += 1
        if name in _SYNCING:
            self.syncs += 1
        elif name.startswith("aten::index"):
            flat = [a for arg in args if isinstance(arg, list | tuple) for a in arg]
            self.syncs += any(isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in flat)
        return func(*args, **(kwargs or {}))


def count_ops(fn: Variant) -> dict[str, int]:
    """Operators and host synchronisations of one loss forward (the backward is the same in every variant)."""
    with _OpCounter() as counter, torch.no_grad():
        fn()
    return {"ops_forward": counter.ops, "host_syncs": counter.syncs}


def median_ms(fns: dict[str, Callable[[], object]], device: torch.device, runs: int) -> dict[str, float]:
    """Median ms per function, run alternately (after one untimed round), without grad."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(runs + 1):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with torch.no_grad():
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: round(statistics.median(t), 3) for name, t in times.items()}


def cuda_graph_forward_ms(device: torch.device, runs: int) -> float:
    """Median ms of one replay of a CUDA graph of ``new_padded_100``'s loss forward (no grad)."""
    fn = variants(device)[0]["new_padded_100"]
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        fn()
    times = []
    for _ in range(runs + 1):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        graph.replay()
        torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return round(statistics.median(times[1:]), 3)


def measure(device: torch.device, target_runs: int, loss_runs: int) -> dict:
    losses, assignments = variants(device)
    result: dict = {"counts": {name: count_ops(fn) for name, fn in losses.items()}}  # also a warm-up
    result["targets_ms"] = median_ms(assignments, device, target_runs)
    result["loss_forward_ms"] = median_ms(losses, device, loss_runs)  # type: ignore[arg-type]
    result["ratio_old_over_new"] = {
        key: {name: round(result[key]["old"] / ms, 3) for name, ms in result[key].items() if name != "old"}
        for key in ("targets_ms", "loss_forward_ms")
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_train_step", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="timed rounds of the CPU loss (default 2; targets: 5x)")
    args = parser.parse_args()
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "setup": {
            "batch": BATCH,
            "image_size": list(SIZE),
            "anchors": int(generate_anchors(SIZE, ANCHOR_CONFIG).shape[0]),
            "num_classes": NUM_CLASSES,
            "boxes_per_image": [int(t["boxes"].shape[0]) for t in make_batch(torch.device("cpu"))[2]],
            "runs": args.runs,
        },
        "cpu": measure(torch.device("cpu"), 5 * args.runs, args.runs),
    }
    if torch.cuda.is_available():
        device = torch.device("cuda")
        results["cuda"] = {"device": torch.cuda.get_device_name(device), **measure(device, 20, 20)}
        results["cuda"]["loss_forward_ms"]["new_padded_100_cuda_graph"] = cuda_graph_forward_ms(device, 20)
    for where in ("cpu", "cuda"):
        if where not in results:
            continue
        r = results[where]
        print(f"{where} ({r.get('device', results['machine']['processor'])}):")
        for name, counts in r["counts"].items():
            ratio = {key: r["ratio_old_over_new"][key].get(name, 1.0) for key in r["ratio_old_over_new"]}
            print(
                f"  {name:22s} targets {r['targets_ms'][name]:8.2f} ms (old/new {ratio['targets_ms']:5.2f})"
                f"  loss forward {r['loss_forward_ms'][name]:8.2f} ms (old/new {ratio['loss_forward_ms']:5.2f})"
                f"  aten ops {counts['ops_forward']}, host syncs {counts['host_syncs']}"
            )
        if "new_padded_100_cuda_graph" in r["loss_forward_ms"]:
            print(
                f"  CUDA graph of new_padded_100: loss forward {r['loss_forward_ms']['new_padded_100_cuda_graph']} ms"
            )
    write_results(RESULTS, results)


if __name__ == "__main__":
    main()
