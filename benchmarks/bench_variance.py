"""Where the run-to-run variance of AP comes from, on a recipe of the ranking benchmark (by default ``surround``).

    python -m benchmarks.bench_variance [--recipe surround] [--topology bifpn] [--seeds 0 1 2] [--jobs 2]
                                        [--report-only]

One topology is trained several times per factor, each factor varying one source of randomness or one
setting with everything else as in the recipe (``--recipe``, a name in ``benchmarks.bench_ranking.RECIPES``; by default
``surround``, the first ground truth, on which the study was made):

- ``seed``: the run's seed (weights, data order and augmentation together), the recipe's own runs;
- ``weights only``: the seed of the initial weights, the data order and augmentation fixed (``data_seed`` 0);
- ``data only``: the data order and augmentation (``data_seed``), the weights fixed (``seed`` 0);
- ``no augmentation``: the seed, without scale jitter;
- ``half lr``: the seed, at half the learning rate.

Runs are stored with the recipe's in ``benchmarks/results/ranking.json`` (a run made once is reused,
also by ``benchmarks.bench_ranking``). Two more sources need no training, measured on the ``seed`` runs' checkpoints:

- ``BatchNorm statistics``: each checkpoint's statistics recomputed from disjoint sets of training images;
- ``AP estimate``: the bootstrap standard deviation of AP over the val images (``eval --bootstrap``).

The standard deviations go to ``benchmarks/results/variance.json``; the README's variance table comes from it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import bench_ranking as br
from benchmarks.ranking import RESULTS_DIR, ROOT
from benchmarks.ranking.recipes import Recipe
from benchmarks.ranking.runs import prepare_data, run_missing
from benchmarks.ranking.store import RunStore, checkpoint_path
from benchmarks.ranking.topologies import ground_truth_set

RESULTS = RESULTS_DIR / "variance.json"
BOOTSTRAP = 200
BN_SETS = 2  # disjoint sets of training images, each ``bn_images`` large (the recipe has 1,200)


def factors(recipe: Recipe) -> dict[str, Recipe]:
    """The recipes whose seed-to-seed spread is measured, by factor name."""
    return {
        "seed": recipe,
        "weights only": recipe.but("variance: weights only", data_seed=0),
        "data only": recipe.but("variance: data only", varies="data_seed", seed=0),
        "no augmentation": recipe.but("variance: no augmentation", scale_range=(1.0, 1.0)),
        "half lr": recipe.but("variance: half lr", lr=recipe.train["lr"] / 2),
    }


def bn_statistics_aps(checkpoint: Path, data: Path, images: int, sets: int = BN_SETS) -> list[float]:
    """AP on val of ``checkpoint``'s EMA weights with BatchNorm statistics recomputed from each of ``sets``
    disjoint sets of ``images`` training images."""
    import torch
    from torch.optim.swa_utils import update_bn
    from torch.utils.data import DataLoader, Subset

    import effdet_graph as eg
    from effdet_graph import save_checkpoint
    from effdet_graph.data import ResizePad, collate_detection, open_split
    from effdet_graph.training import BATCH_SIZE

    model, recipe = eg.load_checkpoint(checkpoint)
    train = open_split(data, "train")
    train.transform = ResizePad(recipe.image_size)
    if sets * images > len(train):
        raise ValueError(f"{sets} sets of {images} images need {sets * images} training images, have {len(train)}")
    aps = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(sets):
            subset = Subset(train, range(k * images, (k + 1) * images))
            loader = DataLoader(subset, batch_size=BATCH_SIZE, collate_fn=collate_detection)
            update_bn(loader, model, torch.device("cpu"))
            path = Path(tmp) / f"bn{k}.pt"
            save_checkpoint(path, recipe, model.state_dict())
            aps.append(float(eg.evaluate_checkpoint(path, data, "val")["AP"]))
    return aps


def bootstrap_sd(checkpoint: Path, data: Path) -> tuple[float, float, float]:
    """``(AP, interval low, interval high)`` of ``checkpoint`` on val, :data:`BOOTSTRAP` resamples."""
    import effdet_graph as eg

    metrics = eg.evaluate_checkpoint(checkpoint, data, "val", bootstrap=BOOTSTRAP)
    return float(metrics["AP"]), float(metrics["AP_low"]), float(metrics["AP_high"])


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_variance", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recipe", choices=sorted(br.RECIPES), default="surround", help="the recipe whose variance is measured"
    )
    parser.add_argument("--topology", default="bifpn", help="a built-in topology of the ranking set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes, one torch thread each")
    parser.add_argument("--only", nargs="+", help="train only these factors")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ranking", help="as benchmarks.bench_ranking's")
    parser.add_argument("--report-only", action="store_true", help="make no runs")
    args = parser.parse_args(argv)

    recipe = br.RECIPES[args.recipe]
    topology = next(t for t in ground_truth_set(0) if t.name == args.topology)
    store = RunStore(br.RESULTS)
    data = prepare_data(recipe, args.work)
    chosen = factors(recipe)
    if not args.report_only:
        for name, recipe in chosen.items():
            if not args.only or name in args.only:
                run_missing([topology], args.seeds, recipe, store, args.work, data, jobs=args.jobs)

    rows: list[dict[str, Any]] = []
    for name, recipe in chosen.items():
        aps = store.ap_table(recipe, [topology]).get(topology.name, {})
        values = [aps[s] for s in args.seeds if s in aps]
        if len(values) >= 2:
            rows.append(
                {"source": name, "aps": values, "mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1))}
            )
    checkpoints = [checkpoint_path(args.work, RunStore.key(topology, s, recipe)) for s in args.seeds]
    checkpoints = [c for c in checkpoints if c.exists()]
    if checkpoints:
        images = int(recipe.train.get("bn_images", 512))
        spreads = [bn_statistics_aps(c, data, images) for c in checkpoints]
        rows.append(
            {
                "source": "BatchNorm statistics",
                "aps": spreads[0],
                "mean": float(np.mean(spreads)),
                "sd": float(np.mean([np.std(s, ddof=1) for s in spreads])),  # within a checkpoint, averaged
            }
        )
        ap, low, high = bootstrap_sd(checkpoints[0], data)
        rows.append({"source": "AP estimate", "aps": [ap], "mean": ap, "sd": (high - low) / (2 * 1.96)})

    print(f"{topology.name}, recipe {recipe.name} ({recipe.hash}), seeds {args.seeds}")
    print(f"{'source':<24}{'mean AP':>9}{'sd':>8}  APs")
    for row in rows:
        print(f"{row['source']:<24}{row['mean']:>9.4f}{row['sd']:>8.4f}  " + " ".join(f"{a:.4f}" for a in row["aps"]))
    RESULTS.write_text(
        json.dumps(
            {
                "topology": topology.name,
                "recipe_hash": recipe.hash,
                "seeds": args.seeds,
                "bootstrap_resamples": BOOTSTRAP,
                "rows": [
                    {**r, "aps": [round(a, 4) for a in r["aps"]], "mean": round(r["mean"], 4), "sd": round(r["sd"], 4)}
                    for r in rows
                ],
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
