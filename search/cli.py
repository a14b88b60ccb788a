"""The search command line: ``effdet-graph search`` (registered as a command plugin, entry point
``effdet_graph.commands``, so the ``effdet_graph`` package never imports ``search``) and the runnable
scripts ``search/compound.py`` and ``search/topology.py`` share its options; only the default engine
differs (Optuna for the command, local Ray for the scripts)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from effdet_graph import InputError
from effdet_graph.cli import run_command
from effdet_graph.device import DEVICE_HELP
from search.engines import ENGINES
from search.objective import OBJECTIVES
from search.request import SearchRequest, TrialResources
from search.run import failure, run_search, summary
from search.space import SearchSpace, builtin_space, load_search_space
from search.strategies import STRATEGIES


def add_search_options(parser: argparse.ArgumentParser, engine: str) -> None:
    """Every option of a search but the space itself.

    Args:
        parser: the command's or the script's parser.
        engine: the default engine (a registered name).
    """
    parser.add_argument(
        "--engine",
        choices=ENGINES.names(),
        default=engine,
        help=f"the search engine (default {engine})",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES.names(),
        default=STRATEGIES.names()[0],
        help="proxy: each trial trains its candidate briefly; oneshot: a weight-sharing supernet of the (topology) "
        "space trains once, and each trial measures a candidate with the weights it inherits",
    )
    parser.add_argument(
        "--trials",
        type=int,
        help="trials to finish in all (a resumed search counts the finished ones; default "
        + ", ".join(f"{STRATEGIES.load(s).default_trials} with {s}" for s in STRATEGIES.names())
        + "; --smoke-test: 2)",
    )
    parser.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        help="ap: AP alone; ap_macs / ap_latency: the Pareto front of AP against cost (default "
        + ", ".join(f"{STRATEGIES.load(s).default_objective} with {s}" for s in STRATEGIES.names())
        + ")",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna: database URL (default: SQLite in the results "
        "folder; PostgreSQL for workers on several machines); Ray: storage_path (a folder or s3://...)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing study (Optuna) or experiment (Ray), and fail if there is none; without it an "
        "existing one is continued too",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="results folder (default runs/search/<space name>, or <space name>-oneshot)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="proxy training steps per trial (default: the space's proxy.steps); with --strategy oneshot, the "
        "supernet's training steps (default: the space's oneshot.steps)",
    )
    parser.add_argument(
        "--gpus-per-trial",
        type=float,
        metavar="N",
        help="Ray: GPUs each trial reserves (default: 1 when the cluster has GPUs now, else 0)",
    )
    parser.add_argument("--smoke-test", action="store_true", help="2 trials of a tiny proxy task and data set (CI)")
    parser.add_argument("--device", help=f"proxy training and latency device: {DEVICE_HELP}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the proxy training")
    parser.add_argument(
        "--retrain",
        type=int,
        default=0,
        metavar="K",
        help="after the search, train the space's template and the K best trials no larger than it stand-alone, "
        "each with --retrain-seeds seeds, and print them side by side with mean AP, spread and what is within "
        "noise (RESULTS/retrain.txt; topology spaces; default 0: none)",
    )
    parser.add_argument("--retrain-seeds", type=int, default=2, metavar="N", help="trainings of each (default 2)")
    parser.add_argument(
        "--retrain-steps", type=int, metavar="N", help="steps of each (default: the space's proxy.steps)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="search topologies or compound scaling (Optuna or Ray Tune)")
    parser.add_argument("space", metavar="SPACE.yaml", help="a search-space file, e.g. specs/search/bifpn_edges.yaml")
    add_search_options(parser, engine="optuna")
    parser.set_defaults(run=run)


def request_of(args: argparse.Namespace) -> SearchRequest:
    """The search the command line's options ask for (:func:`add_search_options`)."""
    return SearchRequest(
        args.space,
        engine=args.engine,
        strategy=args.strategy,
        trials=2 if args.smoke_test else args.trials,
        objective=args.objective,
        results_dir=args.out,
        storage=args.storage,
        resume=args.resume,
        smoke_test=args.smoke_test,
        seed=args.seed,
        steps=args.steps,
        resources=TrialResources(gpus=args.gpus_per_trial),
        device=args.device,
        retrain=args.retrain,
        retrain_seeds=args.retrain_seeds,
        retrain_steps=args.retrain_steps,
    )


def run(args: argparse.Namespace) -> int:
    """Run the search ``args`` describe and print its leaderboard.

    Raises:
        InputError: bad input (nothing is written), or no trial completed (one line naming the first error,
            after the leaderboard was written and printed): the command exits 2.
    """
    outcome = run_search(request_of(args))
    print(summary(outcome))
    failed = failure(outcome)
    if failed:
        raise InputError(failed)
    return 0


def backbone_line(space: SearchSpace) -> str:
    """Which backbone a space's trials train, from which weights, frozen or not: one line for ``--help``."""
    detector = getattr(space.choices, "detector", None)
    backbone = detector.backbone if detector is not None else "each phi's EfficientNet (the scaling table)"
    proxy = space.proxy
    weights = (
        "ImageNet weights (offline where the weights extra ships them)"
        if proxy.pretrained_backbone
        else f"the weights in {proxy.backbone_weights}"
        if proxy.backbone_weights is not None
        else "random weights"
    )
    how = ", frozen" + (", on the feature cache" if proxy.feature_cache else "") if proxy.freeze_backbone else ""
    return f"  {space.name}: {backbone} from {weights}{how}"


def script_main(default_space: str, doc: str | None, spaces: Sequence[str] = ()) -> int:
    """The runnable scripts' command line: ``effdet-graph search``'s options with local Ray as the default engine,
    the built-in ``default_space`` (or ``--space`` among ``spaces``) instead of a space file, ``doc`` as the help."""
    lines = [backbone_line(load_search_space(builtin_space(name))) for name in (spaces or (default_space,))]
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"{doc or ''}\nThe backbone of each space's trials:\n" + "\n".join(lines),
    )
    if spaces:
        parser.add_argument("--space", choices=list(spaces), default=default_space, help="a built-in search space")
    add_search_options(parser, engine="ray")
    args = parser.parse_args()
    args.space = builtin_space(getattr(args, "space", default_space))
    return run_command(run, args)
