"""Feature-network benchmarks: compile time, cost-model throughput, and CPU forward latency of the
compiled BiFPN against the effdet package's BiFPN (a benchmark peer, imported here only).

    python -m benchmarks.bench_feature_network [--quick]

Prints markdown tables and writes ``benchmarks/results/feature_network.json``. All timings run on
the CPU with ``torch.set_num_threads(2)``; latencies are medians of interleaved runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from benchmarks.ranking.store import write_results
from effdet_graph import compile_spec
from effdet_graph.builtin import builtin_specs, specs_dir
from graphspec import load_spec
from graphspec.cost import estimate_cost

RESULTS = Path(__file__).resolve().parent / "results" / "feature_network.json"
B0_CHANNELS = (40, 112, 320)  # EfficientNet-B0 at strides 8, 16, 32
B0_FEATURES = ((40, 64), (112, 32), (320, 16))  # (channels, side) of P3-P5 for a 512x512 image
COMPILE_TARGET_MS = 100.0
COST_TARGET_PER_S = 5000.0
THREADS = 2


def median_ms(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(first run, median of the next ``runs``) of ``fn`` in milliseconds."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    return times[0], statistics.median(times[1:])


def feature_specs() -> dict[str, Path]:
    """The built-in specs by name."""
    return {load_spec(path).name: path for path in builtin_specs()}


def bench_compile(paths: dict[str, Path], runs: int) -> list[dict]:
    """load_spec + compile_spec per spec at its defaults, and BiFPN at width 384 x 8 repeats."""
    cases: list[tuple[str, Path, dict[str, Any]]] = [(name, path, {}) for name, path in paths.items()]
    cases.append(("bifpn w384 x8", specs_dir() / "bifpn.yaml", {"width": 384, "repeats": 8}))
    rows = []
    for name, path, overrides in cases:

        def compile_case(p: Path = path, o: dict[str, Any] = overrides) -> object:
            return compile_spec(load_spec(p, o), B0_CHANNELS)

        first, median = median_ms(compile_case, runs)
        rows.append(
            {
                "spec": name,
                "overrides": overrides,
                "first_ms": round(first, 2),
                "median_ms": round(median, 2),
                "target_ms": COMPILE_TARGET_MS,
                "ok": median < COMPILE_TARGET_MS,
            }
        )
    return rows


def bench_cost(paths: dict[str, Path], seconds: float) -> dict:
    """estimate_cost calls per second over the built-in specs, without and with loading the spec."""
    specs = [load_spec(path) for path in paths.values()]

    def rate(step: Callable[[], object]) -> float:
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            calls += len(specs)
        return calls / (time.perf_counter() - start)

    cost_only = rate(lambda: [estimate_cost(spec, B0_CHANNELS, 512) for spec in specs])
    with_load = rate(lambda: [estimate_cost(load_spec(path), B0_CHANNELS, 512) for path in paths.values()])
    return {
        "specs": len(specs),
        "cost_per_s": round(cost_only),
        "load_and_cost_per_s": round(with_load),
        "target_per_s": COST_TARGET_PER_S,
        "ok": cost_only >= COST_TARGET_PER_S,
    }


def effdet_bifpn(config_name: str, **overrides: object) -> torch.nn.Module:
    """The effdet package's BiFPN for an EfficientNet-B0 backbone, at a named config with overrides."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from effdet.config import get_efficientdet_config
        from effdet.efficientdet import BiFpn
    config = get_efficientdet_config(config_name)
    for key, value in overrides.items():
        config[key] = value
    feature_info = [dict(num_chs=c, reduction=r) for c, r in zip(B0_CHANNELS, (8, 16, 32))]  # BiFpn appends to it
    return BiFpn(config, feature_info)


def latency_models() -> dict[str, tuple[str, torch.nn.Module]]:
    """The D0 feature networks to time: ours at both paddings, effdet's at comparable configs."""
    ours = "specs/bifpn.yaml width 64 x3, B0 channels"
    models = {
        "ours": (f"{ours}, padding symmetric", compile_spec(load_spec(specs_dir() / "bifpn.yaml"), B0_CHANNELS)),
        "effdet": (
            "tf_efficientdet_d0 with pad_type '' (symmetric padding, conv biases as ours)",
            effdet_bifpn("tf_efficientdet_d0", pad_type=""),
        ),
        "ours_same": (
            f"{ours}, padding same",
            compile_spec(load_spec(specs_dir() / "bifpn.yaml", {"padding": "same"}), B0_CHANNELS),
        ),
        "effdet_tf_same": ("tf_efficientdet_d0 as shipped (pad_type 'same')", effdet_bifpn("tf_efficientdet_d0")),
        "effdet_d0": ("efficientdet_d0 (pad_type '', no conv bias before BN)", effdet_bifpn("efficientdet_d0")),
    }
    return {key: (label, model.eval()) for key, (label, model) in models.items()}


def bench_latency(iterations: int, warmup: int) -> dict:
    """Median forward latency of each model, measured round-robin (order rotating every iteration)."""
    models = latency_models()
    features = [torch.randn(1, c, side, side, generator=torch.Generator().manual_seed(c)) for c, side in B0_FEATURES]
    times: dict[str, list[float]] = {key: [] for key in models}
    keys = list(models)
    with torch.inference_mode():
        for i in range(warmup + iterations):
            for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
                model = models[key][1]
                start = time.perf_counter()
                model(list(features))  # effdet's forward appends to its input list: a fresh list each call
                if i >= warmup:
                    times[key].append(1e3 * (time.perf_counter() - start))
    rows: dict[str, dict[str, Any]] = {
        key: {
            "config": label,
            "params": sum(p.numel() for p in model.parameters()),
            "median_ms": round(statistics.median(times[key]), 3),
            "p10_ms": round(statistics.quantiles(times[key], n=10)[0], 3),
            "p90_ms": round(statistics.quantiles(times[key], n=10)[-1], 3),
        }
        for key, (label, model) in models.items()
    }
    ratio = rows["ours"]["median_ms"] / rows["effdet"]["median_ms"]
    return {
        "iterations": iterations,
        "warmup": warmup,
        "batch": 1,
        "image": "512x512",
        "models": rows,
        "ratio_ours_effdet": round(ratio, 3),
        "ratio_ours_same_effdet_tf_same": round(
            rows["ours_same"]["median_ms"] / rows["effdet_tf_same"]["median_ms"], 3
        ),
        "params_equal": rows["ours"]["params"]
        == rows["effdet"]["params"]
        == rows["ours_same"]["params"]
        == rows["effdet_tf_same"]["params"],
        "target_ratio": 1.0,
        "ok": ratio <= 1.0,
    }


def markdown(results: dict) -> str:
    lines = [
        "## Compile time (load_spec + compile_spec, B0 channels)",
        "",
        "| spec | first (ms) | median (ms) | < 100 ms |",
        "|---|---:|---:|:---:|",
    ]
    for row in results["compile"]:
        lines.append(
            f"| {row['spec']} | {row['first_ms']:.1f} | {row['median_ms']:.1f} | {'yes' if row['ok'] else 'NO'} |"
        )
    cost = results["cost"]
    lines += [
        "",
        f"## Cost model ({cost['specs']} built-in specs, 512x512)",
        "",
        "| what | specs/s | >= 5,000 |",
        "|---|---:|:---:|",
        f"| estimate_cost | {cost['cost_per_s']:,} | {'yes' if cost['ok'] else 'NO'} |",
        f"| load_spec + estimate_cost | {cost['load_and_cost_per_s']:,} | |",
    ]
    latency = results["latency"]
    lines += [
        "",
        f"## BiFPN D0 forward, CPU {THREADS} threads, batch 1, 512x512 "
        f"(median of {latency['iterations']} interleaved runs)",
        "",
        "| model | config | params | median (ms) | p10-p90 (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    for key, row in latency["models"].items():
        lines.append(
            f"| {key} | {row['config']} | {row['params']:,} | {row['median_ms']:.2f} | "
            f"{row['p10_ms']:.2f}-{row['p90_ms']:.2f} |"
        )
    lines += [
        "",
        f"ours / effdet = **{latency['ratio_ours_effdet']:.3f}** (target <= 1.0, "
        f"{'met' if latency['ok'] else 'NOT met'}); with 'same' padding on both: "
        f"{latency['ratio_ours_same_effdet_tf_same']:.3f}; identical parameter counts: {latency['params_equal']}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_feature_network", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs (about 30 s)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    paths = feature_specs()
    results = {
        "environment": {
            "torch": torch.__version__,
            "effdet": version("effdet"),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "threads": THREADS,
            "quick": args.quick,
        },
        "compile": bench_compile(paths, runs=3 if args.quick else 11),
        "cost": bench_cost(paths, seconds=1.0 if args.quick else 3.0),
        "latency": bench_latency(iterations=20 if args.quick else 200, warmup=3 if args.quick else 20),
    }
    print(markdown(results))
    write_results(RESULTS, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
