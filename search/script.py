"""The command line shared by the runnable search scripts (``search/compound.py``, ``search/topology.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from graphspec import InputError

from search.objective import OBJECTIVES
from search.run import ENGINES, run_search, summary
from search.space import builtin_space


def main(default_space: str, doc: str | None, spaces: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    if spaces:
        parser.add_argument("--space", choices=list(spaces), default=default_space)
    parser.add_argument("--engine", choices=ENGINES, default="ray", help="ray (default) or optuna")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--objective", choices=list(OBJECTIVES), default="ap")
    parser.add_argument("--storage", help="Ray storage_path (folder or s3://...) or Optuna database URL")
    parser.add_argument("--out", help="results folder (default runs/search/<space>)")
    parser.add_argument("--steps", type=int, help="proxy training steps per trial (default: the space's proxy.steps)")
    parser.add_argument("--smoke-test", action="store_true", help="2 trials of a tiny proxy task (CI)")
    args = parser.parse_args()
    trials = 2 if args.smoke_test else args.trials
    try:
        outcome = run_search(builtin_space(getattr(args, "space", default_space)), engine=args.engine,
                             trials=trials, objective=args.objective, results_dir=args.out, storage=args.storage,
                             smoke_test=args.smoke_test, proxy_steps=args.steps)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(outcome, args.objective))
    return 0
