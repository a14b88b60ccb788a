"""One-shot ranking: how a weight-sharing supernet ranks the ranking benchmark's topologies with inherited
weights, for ``benchmarks.bench_ranking``'s supernet rows.

    python -m benchmarks.bench_oneshot [--samplings uniform fair] [--bn-batches 0 1 2 4 8] [--jobs 2]
                                       [--recipe surround|fixed-init|quick]

For each sampling (``uniform``: single path, SPOS; ``fair``: FairNAS) the supernet of the ``bifpn_edges_bench``
search space (``specs/search/bifpn_edges_bench.yaml``: the ``bifpn_edges`` choices) is trained once with the
``--recipe`` (default ``surround``, the first ground truth, whose detector the space was made on): the same data,
steps, learning rate, batch and seed 0, and the recipe's spec overrides and head depth (the beacon recipes' one
cell and one-layer heads), through ``train_supernet``. Every topology of the set that is a point of the space at
those overrides (BiFPN and the sampled ones) is then measured with the weights it inherits, its BatchNorm
statistics recomputed on K batches of 32 training images for each ``--bn-batches`` K (0: the supernet's own
statistics), AP on the whole val split.

Results go to ``benchmarks/results/oneshot.json``: per sampling, the training seconds, per K each topology's AP
and seconds, and the BatchNorm study (per K: mean AP, seconds a candidate, Kendall tau of its ranking against
the one with the most batches). A supernet trained or a score measured once is reused; the file only grows.
``benchmarks.bench_ranking`` turns them into rows (``supernet <sampling>, BN K``) whose cost is the training plus the
measurements.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import bench_ranking as br
from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.correlation import kendall_tau
from benchmarks.ranking.methods import trained_spec
from benchmarks.ranking.recipes import Recipe
from benchmarks.ranking.runs import one_thread, prepare_data
from benchmarks.ranking.topologies import Topology, ground_truth_set, shown

RESULTS = RESULTS_DIR / "oneshot.json"
SPACE = ROOT / "specs" / "search" / "bifpn_edges_bench.yaml"
SAMPLINGS = ("uniform", "fair")
BN_BATCHES = (0, 1, 2, 4, 8)
SEED = 0


def load_results(path: Path = RESULTS) -> dict[str, Any]:
    """The stored results (``{}`` when there are none)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def supernet_options(recipe: Recipe, data: Path, out: Path) -> Any:
    """The recipe's training options for a supernet run into ``out`` (seed 0, no BatchNorm
    recomputation: a candidate's statistics are recomputed when it is measured)."""
    import effdet_graph as eg
    from effdet_graph.training import CHECKPOINT_NAME

    checkpoint = out / CHECKPOINT_NAME
    options = {**recipe.options(SEED), "bn_images": 0}
    return eg.TrainOptions(
        data=data, spec=SPACE, out=out, resume=checkpoint if checkpoint.exists() else None, **options
    )


def train(sampling: str, recipe: Recipe, data: Path, work: Path) -> tuple[str, float]:
    """Train (or resume) the ``sampling`` supernet; its checkpoint and the seconds this call took."""
    from search.space import load_search_space
    from search.strategies.oneshot import train_supernet

    out = work / "supernets" / recipe.hash / f"{sampling}-seed{SEED}"
    started = time.perf_counter()
    result = train_supernet(load_search_space(SPACE), supernet_options(recipe, data, out), sampling, progress=False)
    return str(result.checkpoint), time.perf_counter() - started


def space_topologies(topologies: Sequence[Topology], recipe: Recipe) -> list[Topology]:
    """The topologies of the set that are points of the space."""
    from effdet_graph.fpn import build_subgraph
    from graphspec import SpecError
    from search.space import load_search_space
    from search.strategies.oneshot import union_spec

    union = union_spec(load_search_space(SPACE), recipe.overrides)
    held = []
    for topology in topologies:
        spec = trained_spec(topology, recipe.train["phi"], recipe.overrides)
        try:
            build_subgraph(union.spec, union.merges, spec, union.names(spec))
        except SpecError:
            continue
        held.append(topology)
    return held


def measure(
    checkpoint: Path,
    topologies: Sequence[Topology],
    recipe: Recipe,
    bn_batches: Sequence[int],
    data: Path,
    known: dict[str, Any],
) -> dict[str, dict[str, dict[str, float]]]:
    """AP and seconds of each topology with inherited weights for each K, where ``known`` (K -> name -> score)
    lacks it."""
    from effdet_graph.data import open_split
    from search.space import load_search_space
    from search.strategies.oneshot import evaluate_inherited, load_supernet

    trained = load_supernet(checkpoint, space=load_search_space(SPACE))
    train_split, val_split = open_split(data, "train"), open_split(data, "val")
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for k in bn_batches:
        for topology in topologies:
            if topology.name in known.get(str(k), {}):
                continue
            spec = trained_spec(topology, recipe.train["phi"], recipe.overrides)
            score = evaluate_inherited(trained, spec, train_split, val_split, bn_batches=k)
            scores.setdefault(str(k), {})[topology.name] = {"AP": score.ap, "seconds": round(score.seconds, 2)}
            print(f"  K={k} {topology.name}: AP {score.ap:.4f} ({score.seconds:.1f} s)", flush=True)
    return scores


def bn_study(scores: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    """For each K measured on every topology the most batches were: the mean AP, the mean seconds a candidate
    took, and the Kendall tau of its ranking against the ranking with the most batches."""
    measured = sorted((int(k) for k, by_name in scores.items() if by_name), reverse=True)
    if not measured:
        return []
    names = sorted(scores[str(measured[0])])
    reference = [scores[str(measured[0])][n]["AP"] for n in names]
    rows = []
    for k in sorted(k for k in measured if all(n in scores[str(k)] for n in names)):
        aps = [scores[str(k)][n]["AP"] for n in names]
        rows.append(
            {
                "bn_batches": k,
                "mean_ap": round(float(sum(aps) / len(aps)), 4),
                "tau_vs_most": round(kendall_tau(reference, aps), 3),
                "seconds": round(float(sum(scores[str(k)][n]["seconds"] for n in names) / len(names)), 1),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_oneshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(br.RECIPES), default="surround")
    parser.add_argument("--samplings", nargs="+", choices=SAMPLINGS, default=list(SAMPLINGS))
    parser.add_argument("--bn-batches", type=int, nargs="+", default=list(BN_BATCHES), metavar="K")
    parser.add_argument("--jobs", type=int, default=1, help="supernets trained in parallel, one thread each")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ranking")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    recipe = br.RECIPES[args.recipe]
    data = prepare_data(recipe, args.work)
    results = load_results(args.results)
    entry = results.setdefault(recipe.hash, {"recipe": recipe.as_json(), "space": shown(SPACE), "supernets": {}})

    def save() -> None:
        args.results.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")

    todo = [s for s in args.samplings if "train_seconds" not in entry["supernets"].get(s, {})]
    if todo:
        print(f"training {len(todo)} supernet(s): {', '.join(todo)}", flush=True)
        with ProcessPoolExecutor(max(1, args.jobs), initializer=one_thread) as pool:
            for sampling, (checkpoint, seconds) in zip(
                todo, pool.map(train, todo, [recipe] * len(todo), [data] * len(todo), [args.work] * len(todo))
            ):
                supernet = entry["supernets"].setdefault(sampling, {})
                supernet.update(checkpoint=shown(Path(checkpoint)), train_seconds=round(seconds, 1), scores={})
                print(f"  {sampling}: trained in {seconds:.0f} s", flush=True)
                save()
    topologies = space_topologies(ground_truth_set(), recipe)
    print(f"{len(topologies)} topologies of the set are points of {SPACE.name}", flush=True)
    one_thread()
    for sampling in args.samplings:
        supernet = entry["supernets"][sampling]
        checkpoint = ROOT / supernet["checkpoint"]
        for k, scores in measure(checkpoint, topologies, recipe, args.bn_batches, data, supernet["scores"]).items():
            supernet["scores"].setdefault(k, {}).update(scores)
        supernet["bn_study"] = bn_study(supernet["scores"])
        save()
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
