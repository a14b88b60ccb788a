"""Detector benchmark: the compiled EfficientDet-D0 (BiFPN spec) against the effdet package's
``tf_efficientdet_d0`` at the same configuration and weights, in one process.

    python -m benchmarks.bench_detector [--quick]

Always, on the CPU with 2 threads, 512x512: eval forward latency at batch 1, and a training step
(forward, a loss on every output, backward, SGD step) at batch 4, fp32.

When CUDA is present, also on the GPU, 512x512: eval forward at batch 8 under fp16 autocast, eager
and ``torch.compile``d (both models compiled; compilation and warm-up runs are not timed), and a
training step at batch 16 under bf16 autocast.

Runs of the two models alternate; medians are reported, with the ratio ours / effdet, printed and
written to ``benchmarks/results/detector.json`` (the CPU figures at the top level, the GPU ones, with
the GPU's name, under ``cuda``; without CUDA there is no ``cuda`` key and nothing is said about a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from benchmarks.ranking.store import write_results
from effdet_graph import build_detector
from effdet_graph.io import convert_effdet_state_dict

RESULTS = Path(__file__).resolve().parent / "results" / "detector.json"
IMAGE_SIZE = 512
CPU_THREADS = 2
#: ours / effdet targets of the CPU measurements (none are set for the GPU ones)
CPU_TARGETS = {"forward_b1_ms": 0.95, "train_step_b4_ms": 1.0}
COMPILE_WARMUP = 3


def interleaved_ms(
    a: Callable[[], object], b: Callable[[], object], runs: int, device: torch.device, warmup: int = 1
) -> tuple[float, float]:
    """Median milliseconds of ``a`` and ``b``, run alternately after ``warmup`` untimed runs each."""
    times: tuple[list[float], list[float]] = ([], [])

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for i in range(warmup + runs):
        for fn, sink in ((a, times[0]), (b, times[1])):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                sink.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times[0]), statistics.median(times[1])


def train_step(model: torch.nn.Module, images: torch.Tensor, autocast: torch.dtype | None = None) -> Callable[[], None]:
    """One SGD step on a loss over every class and box output (under ``autocast`` when given)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step() -> None:
        with amp(images.device, autocast):
            class_out, box_out = model(images)
            loss = sum(o.float().square().mean() for o in list(class_out) + list(box_out))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def amp(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``, or nothing."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def forward(
    model: Callable[[torch.Tensor], object], images: torch.Tensor, autocast: torch.dtype | None
) -> Callable[[], None]:
    """An inference-mode eval forward of ``images`` (under ``autocast`` when given)."""

    def run() -> None:
        with torch.inference_mode(), amp(images.device, autocast):
            model(images)

    return run


def entry(ours_ms: float, effdet_ms: float, target: float | None = None, **extra: object) -> dict[str, object]:
    """A results entry: both medians and their ratio."""
    result: dict[str, object] = {"ours": ours_ms, "effdet": effdet_ms, "ratio": ours_ms / effdet_ms, **extra}
    if target is not None:
        result["target"] = target
    return result


def bench_cpu(ours: torch.nn.Module, theirs: torch.nn.Module, runs: int, image_size: int) -> dict[str, object]:
    """Eval forward at batch 1 and a training step at batch 4, fp32, on the CPU."""
    cpu = torch.device("cpu")
    ours, theirs = ours.to(cpu), theirs.to(cpu)
    results: dict[str, object] = {"device": "cpu", "threads": torch.get_num_threads(), "image_size": image_size}
    images = torch.randn(1, 3, image_size, image_size)
    ours.eval(), theirs.eval()
    fwd = interleaved_ms(forward(ours, images, None), forward(theirs, images, None), runs, cpu)
    results["forward_b1_ms"] = entry(*fwd, CPU_TARGETS["forward_b1_ms"])
    batch = torch.randn(4, 3, image_size, image_size)
    ours.train(), theirs.train()
    step = interleaved_ms(train_step(ours, batch), train_step(theirs, batch), max(3, runs // 4), cpu)
    results["train_step_b4_ms"] = entry(*step, CPU_TARGETS["train_step_b4_ms"])
    return results


def bench_cuda(
    ours: torch.nn.Module, theirs: torch.nn.Module, runs: int, image_size: int, device: torch.device
) -> dict[str, object]:
    """Eval forward at batch 8 (fp16 autocast, eager and compiled) and a training step at batch 16 (bf16
    autocast) on ``device``."""
    ours, theirs = ours.to(device), theirs.to(device)
    results: dict[str, object] = {
        "device": "cuda",
        "name": torch.cuda.get_device_name(device),
        "image_size": image_size,
    }
    images = torch.randn(8, 3, image_size, image_size, device=device)
    ours.eval(), theirs.eval()
    fwd = interleaved_ms(forward(ours, images, torch.float16), forward(theirs, images, torch.float16), runs, device)
    results["forward_fp16_b8_ms"] = entry(*fwd)
    compiled = [torch.compile(model) for model in (ours, theirs)]
    fwd = interleaved_ms(
        forward(compiled[0], images, torch.float16),
        forward(compiled[1], images, torch.float16),
        runs,
        device,
        warmup=COMPILE_WARMUP,
    )
    results["forward_fp16_b8_compiled_ms"] = entry(*fwd, compile_mode="default")
    batch = torch.randn(16, 3, image_size, image_size, device=device)
    ours.train(), theirs.train()
    step = interleaved_ms(
        train_step(ours, batch, torch.bfloat16),
        train_step(theirs, batch, torch.bfloat16),
        max(3, runs // 2),
        device,
        warmup=2,
    )
    results["train_step_bf16_b16_ms"] = entry(*step)
    return results


CPU_ROWS = (("forward_b1_ms", "eval forward, batch 1, fp32"), ("train_step_b4_ms", "training step, batch 4, fp32"))
CUDA_ROWS = (
    ("forward_fp16_b8_ms", "eval forward, batch 8, fp16 autocast, eager"),
    ("forward_fp16_b8_compiled_ms", "eval forward, batch 8, fp16 autocast, torch.compile"),
    ("train_step_bf16_b16_ms", "training step, batch 16, bf16 autocast"),
)


def markdown(section: Mapping[str, Any], rows: tuple[tuple[str, str], ...], title: str) -> str:
    """One section of the results as a markdown table."""
    lines = [f"| what ({title}) | ours ms | effdet ms | ratio | target |", "|---|---:|---:|---:|---:|"]
    for key, label in rows:
        r = section[key]
        target = f"<= {r['target']}" if "target" in r else ""
        lines.append(f"| {label} | {r['ours']:.1f} | {r['effdet']:.1f} | {r['ratio']:.3f} | {target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_detector", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(CPU_THREADS)
    import effdet

    torch.manual_seed(0)
    theirs = effdet.create_model("tf_efficientdet_d0", pretrained=False, pretrained_backbone=False)
    ours = build_detector("specs/bifpn.yaml", 0)
    ours.load_state_dict(convert_effdet_state_dict(theirs.state_dict(), ours), strict=False)
    params = [sum(p.numel() for p in m.parameters()) for m in (ours, theirs)]
    runs = 5 if args.quick else 20
    results: dict[str, Any] = {
        "environment": {
            "torch": torch.__version__,
            "effdet": version("effdet"),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "quick": args.quick,
        },
        "params": {"ours": params[0], "effdet": params[1]},
        **bench_cpu(ours, theirs, runs, IMAGE_SIZE),
    }
    print(f"params: ours {params[0]:,}, effdet {params[1]:,}")
    print(markdown(results, CPU_ROWS, f"CPU, {CPU_THREADS} threads, {IMAGE_SIZE}x{IMAGE_SIZE}"))
    if torch.cuda.is_available():
        device = torch.device("cuda")
        results["cuda"] = bench_cuda(ours, theirs, runs, IMAGE_SIZE, device)
        name = results["cuda"]["name"]
        print(markdown(results["cuda"], CUDA_ROWS, f"{name}, {IMAGE_SIZE}x{IMAGE_SIZE}"))
    else:
        print("no CUDA device: the GPU measurements (fp16 forward, torch.compile, bf16 training step) were skipped")
    write_results(RESULTS, results)


if __name__ == "__main__":
    main()
