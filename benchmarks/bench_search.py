"""Search benchmarks: framework overhead per trial on local Optuna and local Ray Tune, and the rate at
which the analytic cost model filters sampled specs against a budget.

    python -m benchmarks.bench_search [--trials 8] [--spaces compound bifpn_edges] [--quick]

**Overhead.** A smoke-budget search (``--smoke-test``'s proxy task) runs once per engine, one
trial at a time. Every proxy task (training and evaluation, the part a search exists to run)
records when it started and how long it took; the rest of the search's wall time — sampling,
writing and costing the spec, the engine's bookkeeping and storage, Ray's trial actors — is
framework overhead. It is split into a one-off start (from the engine call to the first proxy
task: Optuna's study, Ray's first trial actor) and the steady overhead after it, reported per
trial and as a fraction of the wall time after the start (target < 10 %). Making the data set
and ``ray.init`` are reported apart.

**Filtering.** Points are drawn at random from every built-in search space and sampled into specs
(repair, validation, analytic cost, budget check); the peer is what a search without a cost model
would do to check the same budget: instantiate each accepted candidate on the CPU and count its
parameters and MACs (``torch.utils.flop_counter``). Both counts must agree. Every search and every
filtering run starts with empty cost caches.

Writes ``benchmarks/results/search.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch

from effdet_graph import EfficientDet, compile_spec
from effdet_graph.atomic import atomic_output
from effdet_graph.device import resolve_device
from effdet_graph.fpn import random_features
from effdet_graph.model import clear_cost_caches, count_macs, count_params, detector_cost
from search.engines import ENGINES
from search.objective import Evaluate, Report
from search.request import SearchRequest, TrialResources
from search.run import smoke_space
from search.sampling import Candidate, Rejected, SampleStats, sample_point
from search.space import SearchSpace, builtin_space, load_search_space
from search.strategies import ProxyTask, prepare_dataset

RESULTS = Path(__file__).resolve().parent / "results" / "search.json"
SPACES = ("compound", "nasfpn_cells", "bifpn_edges")
OVERHEAD_TARGET = 0.10
PROXY_RECORD = "proxy.json"


class TimedEvaluate:
    """An :class:`~search.objective.Evaluate` that writes ``[start (epoch s), seconds inside inner]`` to
    ``trial_dir/proxy.json``, before each report (an engine may stop the trial there) and at the end."""

    def __init__(self, inner: Evaluate):
        self.inner = inner

    def __call__(self, candidate: Candidate, trial_dir: Path, report: Report | None) -> dict[str, float]:
        started, start = time.time(), time.perf_counter()
        record = trial_dir / PROXY_RECORD

        def timed_report(step: int, ap: float) -> None:
            record.write_text(json.dumps([started, time.perf_counter() - start]))
            if report is not None:
                report(step, ap)

        try:
            return self.inner(candidate, trial_dir, timed_report)
        finally:
            record.write_text(json.dumps([started, time.perf_counter() - start]))


def timed_proxy_task(space: SearchSpace, data: Path) -> Evaluate:
    """A Ray evaluate factory (picklable through ``functools.partial``)."""
    return TimedEvaluate(ProxyTask(space, data))


def search_overhead(engine: str, space: SearchSpace, trials: int, workdir: Path) -> dict[str, float]:
    """Run a smoke-budget search with ``engine`` and split its wall time into proxy tasks and the rest."""
    results = workdir / engine / space.name
    clear_cost_caches()  # every search starts cold, as a new process does
    start = time.perf_counter()
    data = prepare_dataset(space, results)
    one_off = {"dataset_s": time.perf_counter() - start}
    request = SearchRequest(space.file, engine=engine, trials=trials, objective="ap")
    if engine == "ray":
        import ray

        start = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, num_cpus=2)
        one_off["ray_init_s"] = time.perf_counter() - start
        began = time.time()
        request = dataclasses.replace(request, resources=TrialResources(max_concurrent=1))
        records = ENGINES.load("ray")().run(space, functools.partial(timed_proxy_task, space, data), results, request)
        ended = time.time()
        ray.shutdown()
    else:
        began = time.time()
        records = ENGINES.load("optuna")().run(
            space, functools.partial(timed_proxy_task, space, data), results, request
        )
        ended = time.time()
    proxies = [json.loads(path.read_text()) for path in (results / "trials").glob(f"*/{PROXY_RECORD}")]
    first = min(started for started, _ in proxies)
    proxy = sum(seconds for _, seconds in proxies)
    steady = ended - first - proxy
    states = [r.state for r in records]
    return {
        "trials": len(records),
        **{state: states.count(state) for state in sorted(set(states))},
        "wall_s": ended - began,
        "start_s": first - began,
        "proxy_s": proxy,
        "proxy_tasks": len(proxies),
        "overhead_per_trial_s": steady / len(records),
        "overhead_fraction": steady / (ended - first),
        **one_off,
    }


def instantiate_cost(candidate: Candidate) -> tuple[int, int]:
    """Params and MACs of ``candidate``'s budget scope, by building it on the CPU (the filtering peer)."""
    spec = candidate.spec()
    size = candidate.detector.resolution
    if candidate.detector_cost is not None:
        report = detector_cost(EfficientDet(spec, candidate.detector_config()), size)
        return report["params"], report["macs"]
    network = compile_spec(spec, candidate.in_channels).eval()
    features = random_features(spec, candidate.in_channels, size)
    with torch.no_grad():
        return count_params(network), count_macs(lambda: network(features))


def filtering_rate(name: str, points: int, peers: int) -> dict[str, Any]:
    """Sample ``points`` random points of a built-in space; time the sampling, and the peer on ``peers``
    accepted candidates."""
    space = load_search_space(builtin_space(name))
    clear_cost_caches()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    stats, accepted, seconds = SampleStats(), [], 0.0
    for _ in range(points):
        trial = study.ask()
        start = time.perf_counter()
        try:
            accepted.append(sample_point(space, trial, stats))
        except Rejected:
            pass
        seconds += time.perf_counter() - start
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    start = time.perf_counter()
    for candidate in accepted[:peers]:
        params, macs = instantiate_cost(candidate)
        cost = candidate.detector_cost or candidate.cost
        if (params, macs) != (cost.params, cost.macs):
            raise AssertionError(
                f"{candidate.file_name}: cost model {cost.params:,} params / {cost.macs:,} MACs, "
                f"built {params:,} / {macs:,}"
            )
    peer_rate = min(peers, len(accepted)) / (time.perf_counter() - start)
    rate = points / seconds
    return {
        "scope": space.budget.scope,
        "points": points,
        "specs_per_s": rate,
        "peer_specs_per_s": peer_rate,
        "ratio": rate / peer_rate,
        **{f"{k}_rate": v for k, v in stats.rates().items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="trials a search")
    parser.add_argument(
        "--spaces",
        nargs="+",
        choices=SPACES,
        default=["compound", "bifpn_edges"],
        help="spaces of the overhead searches",
    )
    parser.add_argument("--quick", action="store_true", help="fewer sampled points")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(2)

    points, peers = (50, 3) if args.quick else (200, 8)
    filtering = {name: filtering_rate(name, points, peers) for name in SPACES}
    overhead = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.spaces:
            space = smoke_space(load_search_space(builtin_space(name)))
            overhead[name] = {
                engine: search_overhead(engine, space, args.trials, Path(workdir)) for engine in ("optuna", "ray")
            }

    print(f"Framework overhead at the smoke budget, {args.trials} trials a search, one at a time:")
    print(
        "| space | engine | trials (complete / rejected / pruned) | start s | proxy task s | overhead s/trial "
        "| overhead | target |\n|---|---|---|---:|---:|---:|---:|---:|"
    )
    for name, engines in overhead.items():
        for engine, r in engines.items():
            counts = " / ".join(str(r.get(state, 0)) for state in ("complete", "rejected", "pruned"))
            print(
                f"| {name} | {engine} | {r['trials']} ({counts}) | {r['start_s']:.1f} "
                f"| {r['proxy_s'] / r['proxy_tasks']:.2f} | {r['overhead_per_trial_s']:.2f} "
                f"| {100 * r['overhead_fraction']:.1f} % | < {100 * OVERHEAD_TARGET:.0f} % |"
            )
    if overhead:
        dataset = max(r["dataset_s"] for engines in overhead.values() for r in engines.values())
        ray_init = max(engines["ray"]["ray_init_s"] for engines in overhead.values())
        print(f"one-off, apart: making the smoke data set up to {dataset:.2f} s, ray.init up to {ray_init:.1f} s")
    print("\nCost-model filtering (random points; peer: instantiate on the CPU and count):")
    print(
        "| space | budget scope | specs/s | peer specs/s | ratio | accepted | repaired | invalid | over budget |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for name, r in filtering.items():
        print(
            f"| {name} | {r['scope']} | {r['specs_per_s']:.1f} | {r['peer_specs_per_s']:.2f} | {r['ratio']:.0f}x "
            f"| {r['accepted_rate']:.0%} | {r['repaired_rate']:.0%} | {r['rejected_invalid_rate']:.0%} "
            f"| {r['rejected_budget_rate']:.0%} |"
        )
    results = {
        "device": resolve_device().type,  # where the proxy tasks trained (the filtering peer builds on the CPU)
        "threads": torch.get_num_threads(),
        "overhead": overhead,
        "filtering": filtering,
        "overhead_target": OVERHEAD_TARGET,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(RESULTS) as tmp:
        tmp.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
