"""The command line of the runnable search scripts (``search/compound.py``, ``search/topology.py``):
``effdet-graph search``'s options with local Ray as the default engine."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from effdet_graph.cli import run_command
from search.cli import add_search_options, run
from search.space import SearchSpace, builtin_space, load_search_space


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


def main(default_space: str, doc: str | None, spaces: Sequence[str] = ()) -> int:
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
