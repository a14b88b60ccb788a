"""Ranking fidelity: how well ranking methods (short proxy trainings, parameter count, MACs, a zero-cost proxy)
order feature-network topologies the way fully trained detectors' COCO AP does, on a benchmark where the
topology matters.

    python -m benchmarks.bench_ranking [--recipe NAME] [--seeds 0 1 2] [--jobs 2] [--samples 10]
                                       [--proxies 100 200] [--only NAME ...] [--report-only] [--list]
                                       [--verify NAME SEED]

**Ground-truth set.** The no-fusion control ``benchmarks/specs/nofusion.yaml``, the built-in fpn, panet,
simplified_panet, bifpn, qufpn, nasfpn and fc_fpn, and ``--samples`` topologies sampled (seeded,
``--sample-seed``) from the ``bifpn_edges`` search space, written as spec files the way the search writes
candidates. Spec files go to ``--work``/specs.

**Recipes** are data, in ``benchmarks/recipes.yaml``, whose ``ground_truth`` names the recipe run and reported
by default (:data:`GROUND_TRUTH`). **Ground-truth recipe** (``fixed-init``). The ``beacon`` scene of the
synthetic data set (1,200 train and 1,600 val images of 128x128; an object's class is the tint of a band along
the far side of the image, beyond the reach of P3 features that see only their own level), EfficientDet-D0's
feature-network width with one cell and one-layer heads on MobileNetV2-0.5, 1,500 steps of 8 images, lr 0.12;
every run starts from the weights of seed 0, and its seed varies the data order and augmentation (the minutes a
run takes are in the report). The recipes on the way to it are kept with their runs: ``surround`` (the class
told by the tint beyond a grey disc around each object), on which the bench search space, its supernets and the
variance study were made; ``frame`` the first recipe of all (the context scene); ``beacon``, ``beacon-lr008``
and ``lr012-val1600``, the beacon with each run's own initial weights. ``quick`` only checks the machinery.

**Runs.** Each (topology, seed) is trained with ``effdet_graph.train`` and evaluated with
``effdet_graph.evaluate_checkpoint``; the built-in set first, seed by seed. ``--jobs N`` runs N at once, one torch
thread each (two two-thread runs would oversubscribe 2 cores). Runs are kept in ``benchmarks/results/ranking.json``,
keyed by topology name, spec text hash, seed and recipe hash, with the recipe and the project version; the file
only grows: a run already stored is skipped, and runs of another recipe are never mixed into a report.
``--verify NAME SEED`` trains a stored run again and compares its AP (the training is deterministic for a seed on
a given machine and thread count), adding the outcome with the machine to ``benchmarks/results/verify.json``.

**Report.** The ceiling is the mean pairwise Kendall tau between seeds (how well one seed's AP ranking predicts
another's), over the whole set and over the built-in topologies with the control; the control gap is how far
FPN's and BiFPN's mean AP lie above the control's, in seed standard deviations. Each method (``METHODS``, name
-> callable; add entries to plug in more) is scored against the mean AP over seeds: Kendall tau (tau-b),
Spearman rho and precision@3, with the seconds it took. The search's from-scratch proxy (its ``proxy``
settings at ``--proxies`` step budgets, seed 0, on the same data and detector) is a method whose cost is its
runs' seconds. The one-shot supernet's rows (``benchmarks.bench_oneshot``'s results, :func:`oneshot_methods`) rank the
topologies of their search space only; each row gives how many it ranked and the seed-to-seed tau over those.
A recipe's report goes to ``benchmarks/results/ranking_report-RECIPE.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.methods import METHODS, Method
from benchmarks.ranking.recipes import PROXY_BUDGETS, load_recipes, search_proxy_recipe
from benchmarks.ranking.reports import build_report, report_path
from benchmarks.ranking.runs import (
    VERIFY_RESULTS,
    prepare_data,
    prepare_feature_caches,
    record_verification,
    run_missing,
    verify,
)
from benchmarks.ranking.scoring import StoredTraining, oneshot_methods
from benchmarks.ranking.store import RunStore
from benchmarks.ranking.topologies import BUILTIN_SET, ground_truth_set
from graphspec import InputError

#: The stored runs of every recipe.
RESULTS = RESULTS_DIR / "ranking.json"

try:
    RECIPE_BOOK = load_recipes()
except InputError as exc:  # a broken recipes.yaml: one line and exit 2, before any run starts
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
RECIPES = RECIPE_BOOK.recipes
#: The ground truth's recipe name (``ground_truth`` in ``benchmarks/recipes.yaml``).
GROUND_TRUTH = RECIPE_BOOK.ground_truth


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_ranking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=GROUND_TRUTH)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=10, help="topologies sampled from bifpn_edges")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", help="run only these topologies (the report covers the whole set)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once; each uses one torch thread")
    parser.add_argument(
        "--proxies",
        type=int,
        nargs="*",
        default=list(PROXY_BUDGETS),
        metavar="STEPS",
        help=f"budgets of the search-proxy rows, trained with seed 0 where missing (default {PROXY_BUDGETS})",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ranking", help="specs, data and checkpoints")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="make no runs and write nothing: print the report of the stored runs (rows without their runs left out)",
    )
    parser.add_argument("--list", action="store_true", help="list the ground-truth set and exit")
    parser.add_argument(
        "--verify",
        nargs=2,
        metavar=("NAME", "SEED"),
        help="train a stored run again in a fresh folder (one thread, as --jobs runs) and compare its AP",
    )
    args = parser.parse_args(argv)

    recipe = RECIPES[args.recipe]
    topologies = ground_truth_set(args.samples, args.sample_seed)
    if args.list:
        for t in topologies:
            print(f"{t.name:<26}{t.spec_hash}  {t.source}")
        return
    try:
        store = RunStore(args.results)
    except InputError as exc:
        parser.exit(2, f"error: {exc}\n")
    if args.verify:
        name, seed = args.verify[0], int(args.verify[1])
        topology = next((t for t in topologies if t.name == name), None)
        if topology is None:
            parser.error(f"--verify: no topology {name!r} in the set (--list lists it)")
        try:
            outcome = verify(topology, seed, recipe, store, args.work)
        except KeyError as exc:
            parser.error(f"--verify: {exc.args[0]}")
        print(f"{name} seed {seed}: stored AP {outcome['stored_ap']:.6f}, again {outcome['ap']:.6f}")
        if args.results == RESULTS:
            record_verification(outcome)
            print(f"added to {VERIFY_RESULTS}")
        return
    proxies = [search_proxy_recipe(steps, recipe, RECIPE_BOOK.search_proxy) for steps in args.proxies]
    if not args.report_only:
        chosen = [t for t in topologies if not args.only or t.name in args.only]
        data = prepare_data(recipe, args.work)
        prepare_feature_caches(recipe, data, args.seeds, args.work)
        for group in ([t for t in chosen if t.name in BUILTIN_SET], [t for t in chosen if t.name not in BUILTIN_SET]):
            run_missing(group, args.seeds, recipe, store, args.work, data, jobs=args.jobs)  # the built-in set first
        for proxy in proxies:
            run_missing(chosen, [0], proxy, store, args.work, data, jobs=args.jobs)
    methods: dict[str, Method] = {**METHODS, **oneshot_methods(recipe)}
    ranked = [t for t in topologies if t.name in store.complete(recipe, topologies, args.seeds)]
    for proxy in proxies:
        if all(store.has(store.key(t, 0, proxy)) for t in ranked):  # a row only where every ranked run is there
            methods[proxy.name] = StoredTraining(proxy, store)
    if recipe.name == GROUND_TRUTH:
        for name, seeds in RECIPE_BOOK.ranking_runs.items():  # single runs of other recipes, as ranking methods
            for seed in seeds:
                methods[f"{name}, seed {seed} (one run)"] = StoredTraining(RECIPES[name], store, seed)
    result = build_report(store, topologies, args.seeds, recipe, methods)
    if result is None:
        print(f"recipe {recipe.name}: too few topologies with every seed {list(args.seeds)} to rank")
        return
    print(result.text())
    if args.results == RESULTS and not args.report_only:  # a report only reads: its methods' timings vary
        path = report_path(recipe)
        path.write_text(json.dumps(result.as_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
