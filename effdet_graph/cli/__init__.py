"""The ``effdet-graph`` command line. Each command lives in its own module with ``register(subparsers)``.

Packages that build on this one add commands through the ``effdet_graph.commands`` entry-point group
(``search`` registers ``effdet-graph search`` that way), so this package never imports them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from effdet_graph.cli import compare_commands, convert_commands, data_commands, spec_commands, train_commands
from graphspec import InputError
from graphspec.errors import escape

__all__ = ["main", "make_parser", "run_command"]

COMMAND_MODULES = (spec_commands, compare_commands, data_commands, train_commands, convert_commands)
EXIT_INPUT_ERROR = 2
PLUGIN_GROUP = "effdet_graph.commands"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effdet-graph",
        description="Feature networks as YAML DAGs: validate, compile, cost, draw and export them; "
        "EfficientDet detectors around them: train, evaluate, compare and search.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    for plugin in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name):
        plugin.load()(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; input errors print one line (no traceback) and exit with code 2."""
    args = make_parser().parse_args(argv)
    return run_command(args.run, args)


def run_command(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """``run(args)`` as a command: its exit code; an input error prints one line (no traceback) and gives 2."""
    try:
        return run(args) or 0
    except InputError as exc:  # one line whatever the message holds: control characters are escaped
        print(f"error: {escape(str(exc))}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
