"""``effdet-graph compare --seeds``, recorded: the no-fusion control, FPN and BiFPN trained three times each on the
ranking benchmark's data set, with their mean AP, spread and what is within noise.

    python -m benchmarks.bench_compare

Makes the surround data set as the ranking benchmark's ground truth does (``make-dataset --scene surround
--images 1600 --image-size 128 --val-fraction 0.25``, seed 0: the same bytes) in ``runs/compare-seeds/data``, runs
:data:`COMMAND` in this process (its runs in ``runs/compare/runs``, resumed when killed) and writes
``benchmarks/results/compare_seeds.json``: the machine, the command, the minutes it took and the rows as
``compare --json`` prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks import bench_ranking as br
from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.store import machine

RESULTS = RESULTS_DIR / "compare_seeds.json"
DATA = ROOT / "runs" / "compare-seeds" / "data"
COMMAND = (
    "effdet-graph compare benchmarks/specs/nofusion.yaml fpn bifpn --backbone mobilenetv2_050 --input-size 128 "
    "--train-steps 1000 --seeds 3 --data DATA"
)


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Run in ``folder`` as the current directory, and back (``contextlib.chdir`` needs Python 3.11)."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: no options (``--help`` says what it runs)."""
    argparse.ArgumentParser(
        prog="python -m benchmarks.bench_compare", description=__doc__.split("\n\n")[0], epilog=f"runs: {COMMAND}"
    ).parse_args(argv)
    from effdet_graph import make_dataset
    from effdet_graph.cli import main as cli

    dataset = br.RECIPES["surround"].dataset
    if not (DATA / "val").exists():
        make_dataset(DATA, **dict(dataset))
    args = COMMAND.replace("DATA", str(DATA)).split()[1:] + ["--json"]
    started = time.perf_counter()
    printed = io.StringIO()
    with inside(ROOT), contextlib.redirect_stdout(printed):
        code = cli(args)
    if code != 0:
        raise SystemExit(code)
    result = {
        "machine": machine(),
        "command": COMMAND.replace("DATA", "data/surround"),
        "dataset": dict(dataset),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "rows": json.loads(printed.getvalue()),
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS} ({result['minutes']} minutes)")


if __name__ == "__main__":
    main()
