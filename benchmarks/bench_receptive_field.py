"""How far each output level of a detector sees: the receptive field of the class head's centre cell at every level,
for the ranking benchmark's built-in topologies and the no-fusion control, measured from input gradients.

    python -m benchmarks.bench_receptive_field [--recipe no-jitter] [--work runs/ranking]

For each level, the gradient of the centre cell's class outputs (summed magnitudes) with respect to the input image
gives two sizes: the **extent**, the side of the box of input pixels with any gradient (the theoretical receptive
field, clipped by the image), and **r90**, the radius around the cell's centre that holds 90% of the gradient
(how far the weights actually look). Detectors are built as the recipe trains them (its phi, backbone and classes),
with seed-0 random weights; where ``benchmarks.bench_ranking`` left a topology's seed-0 checkpoint in ``--work``, r90 of
the trained weights is measured too (and kept: a later run without the checkpoint reuses it). A context benchmark
can separate the control from the fusing topologies only where the context lies beyond the control's reach at the
levels its objects are assigned to. Inputs have the recipe's side. Results go to
``benchmarks/results/receptive_field.json`` (another recipe's to ``receptive_field-RECIPE.json``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import bench_ranking as br
from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.methods import recipe_detector
from benchmarks.ranking.store import RunStore, checkpoint_path, machine
from benchmarks.ranking.topologies import BUILTIN_SET, ground_truth_set, write_specs

RESULTS = RESULTS_DIR / "receptive_field.json"
DEFAULT_RECIPE = "no-jitter"
MASS = 0.9  # the share of the gradient inside r90


def receptive_field(outputs: Callable[[Any], Sequence[Any]], size: int, level: int, seed: int = 0) -> tuple[int, float]:
    """``(extent, r90)`` in input pixels of the centre cell of ``outputs(images)[level]`` (``FloatTensor[1, C, H,
    W]`` per level) for ``size`` x ``size`` inputs (a small seeded noise image, so that no activation sits exactly
    at a kink)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    image = (0.1 * torch.randn(1, 3, size, size, generator=generator)).requires_grad_(True)
    output = outputs(image)[level]
    height, width = output.shape[-2:]
    output[0, :, height // 2, width // 2].abs().sum().backward()
    assert image.grad is not None
    gradient = image.grad[0].abs().sum(0)
    rows, cols = torch.nonzero(gradient > 0, as_tuple=True)
    extent = int(max(rows.max() - rows.min(), cols.max() - cols.min())) + 1
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre_y, centre_x = (height // 2 + 0.5) * size / height, (width // 2 + 0.5) * size / width
    radius = ((yy + 0.5 - centre_y) ** 2 + (xx + 0.5 - centre_x) ** 2).sqrt().flatten()
    order = torch.argsort(radius)
    mass = torch.cumsum(gradient.flatten()[order], 0) / gradient.sum()
    r90 = float(radius[order][torch.searchsorted(mass, torch.tensor(MASS))])
    return extent, r90


def class_outputs(model: Any) -> Callable[[Any], Sequence[Any]]:
    """The detector's class-head outputs per level, in eval mode (BatchNorm as at inference)."""
    model.eval()
    return lambda images: model(images)[0]


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    import torch

    import effdet_graph as eg
    from effdet_graph.data import SCENES

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_receptive_field", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--recipe", choices=sorted(br.RECIPES), default=DEFAULT_RECIPE)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ranking", help="as benchmarks.bench_ranking's")
    args = parser.parse_args(argv)

    recipe = br.RECIPES[args.recipe]
    size = int(recipe.train["image_size"])
    results = RESULTS if recipe.name == DEFAULT_RECIPE else RESULTS.with_stem(f"{RESULTS.stem}-{recipe.name}")
    topologies = [t for t in ground_truth_set(0) if t.name in BUILTIN_SET]
    specs = write_specs(topologies, args.work / "specs")
    num_classes = len(SCENES[recipe.dataset.get("scene", "shapes")].classes)
    previous = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}
    stored = {
        row["topology"]: row["r90_px_trained"]
        for row in previous.get("rows", [])
        if previous.get("recipe") == recipe.as_json() and previous.get("image_size") == size
    }
    rows = []
    for topology in topologies:
        torch.manual_seed(0)
        model = recipe_detector(recipe, specs[topology.name], num_classes)
        with torch.no_grad():
            levels = range(len(class_outputs(model)(torch.zeros(1, 3, size, size))))
        at_init = [receptive_field(class_outputs(model), size, level) for level in levels]
        checkpoint = checkpoint_path(args.work, RunStore.key(topology, 0, recipe))
        trained = stored.get(topology.name)  # kept from an earlier run whose checkpoint is gone here
        if checkpoint.exists():
            model, _ = eg.load_checkpoint(checkpoint)
            trained = [round(receptive_field(class_outputs(model), size, level)[1], 1) for level in levels]
        rows.append(
            {
                "topology": topology.name,
                "extent_px": [extent for extent, _ in at_init],
                "r90_px_init": [round(r90, 1) for _, r90 in at_init],
                "r90_px_trained": trained,
            }
        )
        print(
            f"{topology.name:<18} extent {rows[-1]['extent_px']}  r90 at init {rows[-1]['r90_px_init']}  "
            f"trained {trained}",
            flush=True,
        )
    from effdet_graph.atomic import atomic_output

    with atomic_output(results) as tmp:
        report = {"machine": machine(), "recipe": recipe.as_json(), "image_size": size, "mass": MASS, "rows": rows}
        tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
