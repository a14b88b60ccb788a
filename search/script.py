"""The command line of the runnable search scripts (``search/compound.py``, ``search/topology.py``):
``effdet-graph search``'s options with local Ray as the default engine."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from effdet_graph.cli import run_command
from search.cli import add_search_options, run
from search.space import builtin_space


def main(default_space: str, doc: str | None, spaces: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc
    )
    if spaces:
        parser.add_argument("--space", choices=list(spaces), default=default_space, help="a built-in search space")
    add_search_options(parser, engine="ray")
    args = parser.parse_args()
    args.space = builtin_space(getattr(args, "space", default_space))
    return run_command(run, args)
