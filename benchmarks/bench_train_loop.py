"""Training-loop throughput through the real ``effdet_graph.train`` (data loading, step, EMA, log reads).

    python -m benchmarks.bench_train_loop [--steps 60]

The recipe is the CPU example's (``examples/train_synthetic.py``): EfficientDet-D0's BiFPN and heads on
MobileNetV3-Small, 256x256, batch 8, lr 0.15, the built-in synthetic shapes (made in a temporary folder).
Every configuration runs ``--steps`` steps after a warm-up run of the same configuration (cuDNN autotuning,
``torch.compile``), and images/s is the loop's own measure (``TrainResult.images_per_s``: the time
between log reads, checkpoints and the final BatchNorm pass excluded).

On the CPU (2 threads): the default loop (losses read every 10 steps, no forced deterministic kernels)
against the settings the loop had before it had these options (``--deterministic --log-every 1``), the
ratio printed. When CUDA is present, on the GPU: batch 8 and 64, eager and ``--compile``, and for batch 8
the fraction of the loop's wall time during which the GPU runs kernels (``torch.profiler``: the summed
CUDA kernel time of a profiled run over its wall time).

Results go to ``benchmarks/results/train_loop.json`` with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.ranking.store import machine, write_results
from effdet_graph import TrainOptions, make_dataset, train
from effdet_graph.builtin import specs_dir

RESULTS = Path(__file__).resolve().parent / "results" / "train_loop.json"
CPU_THREADS = 2
RECIPE: dict[str, Any] = dict(
    phi=0, backbone="mobilenetv3_small_100", image_size=256, batch_size=8, lr=0.15, bn_images=0
)


def images_per_s(options: TrainOptions, steps: int) -> float:
    """Throughput of ``steps`` steps with ``options``, after an untimed warm-up run of the same options."""
    train(replace(options, steps=max(2, steps // 4), out=options.out / "warmup"), progress=False)
    return train(replace(options, steps=steps, out=options.out / "timed"), progress=False).images_per_s


def gpu_busy_fraction(options: TrainOptions, steps: int) -> float:
    """Summed CUDA kernel time of a run of ``steps`` steps over its wall time (after a warm-up run)."""
    train(replace(options, steps=max(2, steps // 4), out=options.out / "warmup"), progress=False)
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as profile:
        torch.cuda.synchronize()
        start = time.perf_counter()
        train(replace(options, steps=steps, out=options.out / "profiled"), progress=False)
        torch.cuda.synchronize()
        wall_us = (time.perf_counter() - start) * 1e6
    kernel_us = sum(
        event.self_device_time_total
        for event in profile.key_averages()
        if event.device_type == torch.autograd.DeviceType.CUDA
    )
    return kernel_us / wall_us


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_train_loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per configuration (default 60)")
    args = parser.parse_args()
    torch.set_num_threads(CPU_THREADS)
    results: dict[str, object] = {
        "machine": machine(),
        "recipe": {**RECIPE, "spec": "bifpn", "steps": args.steps},
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes"
        make_dataset(data, images=120, seed=0, image_size=256)
        base = TrainOptions(data=data, spec=specs_dir() / "bifpn.yaml", out=Path(tmp) / "cpu", device="cpu", **RECIPE)
        default = images_per_s(replace(base, out=base.out / "default"), args.steps)
        legacy = images_per_s(replace(base, out=base.out / "legacy", deterministic=True, log_every=1), args.steps)
        results["cpu"] = {
            "images_per_s": round(default, 2),
            "legacy_settings_images_per_s": round(legacy, 2),
            "ratio": round(default / legacy, 3),
        }
        print(f"cpu, batch 8: {default:.1f} images/s; with --deterministic --log-every 1: {legacy:.1f} "
              f"(ratio {default / legacy:.2f})")  # fmt: skip
        if torch.cuda.is_available():
            gpu = replace(base, device="cuda", workers=min(8, os.cpu_count() or 1), out=Path(tmp) / "gpu")
            cuda: dict[str, object] = {"name": torch.cuda.get_device_name()}
            for batch in (8, 64):
                for compiled in (False, True):
                    key = f"batch{batch}_{'compiled' if compiled else 'eager'}_images_per_s"
                    options = replace(gpu, batch_size=batch, compile=compiled, out=gpu.out / key)
                    cuda[key] = round(images_per_s(options, args.steps), 1)
                    print(f"{cuda['name']}, {key}: {cuda[key]}")
            for compiled in (False, True):
                key = f"batch8_{'compiled' if compiled else 'eager'}_gpu_busy"
                options = replace(gpu, compile=compiled, out=gpu.out / key)
                cuda[key] = round(gpu_busy_fraction(options, args.steps), 3)
                print(f"{cuda['name']}, {key}: {cuda[key]:.1%}")
            results["cuda"] = cuda
    write_results(RESULTS, results)


if __name__ == "__main__":
    main()
