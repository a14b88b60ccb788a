"""The variance study (benchmarks.bench_variance): each factor varies one source of randomness or one setting
of the surround recipe, and the BatchNorm factor recomputes statistics from disjoint image sets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import effdet_graph as eg
from benchmarks import bench_ranking
from benchmarks import bench_variance as variance
from effdet_graph.data.synthetic import make_dataset


def test_each_factor_changes_one_thing_of_the_ground_truth():
    gt = bench_ranking.RECIPES["surround"]
    factors = variance.factors(gt)
    assert factors["seed"] is gt
    assert len({r.hash for r in factors.values()}) == len(factors)
    assert factors["weights only"].options(4) == {**gt.train, "seed": 4, "data_seed": 0}
    assert factors["data only"].options(4) == {**gt.train, "seed": 0, "data_seed": 4}
    assert factors["no augmentation"].options(4) == {**gt.train, "seed": 4, "scale_range": (1.0, 1.0)}
    assert factors["half lr"].options(4) == {**gt.train, "seed": 4, "lr": gt.train["lr"] / 2}
    assert all(r.dataset == gt.dataset for r in factors.values())


def test_bn_statistics_from_disjoint_sets(tmp_path, one_torch_thread):
    data = tmp_path / "ds"
    make_dataset(data, images=8, seed=1, image_size=128, scene="context", val_fraction=0.25)
    options = eg.TrainOptions(
        data=data,
        spec=Path("fpn"),
        phi=0,
        out=tmp_path / "run",
        backbone="mobilenetv2_050",
        image_size=128,
        overrides={"width": 16, "repeats": 1},
        batch_size=2,
        steps=2,
        bn_images=0,
    )
    checkpoint = eg.train(options, progress=False).checkpoint
    aps = variance.bn_statistics_aps(checkpoint, data, images=3, sets=2)
    assert len(aps) == 2 and all(math.isfinite(a) and 0 <= a <= 1 for a in aps)
    with pytest.raises(ValueError, match="3 sets of 3 images need 9 training images, have 6"):
        variance.bn_statistics_aps(checkpoint, data, images=3, sets=3)
