"""The ground truth's recipe (``scales`` in ``benchmarks/recipes.yaml``): a run's seed draws every weight that
trains, whatever the topology; the frozen backbone is ImageNet's in every run."""

from __future__ import annotations

import pytest
import torch

from benchmarks import bench_ranking as bench
from effdet_graph.builtin import specs_dir
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.training.loop import initial_model

RECIPE = bench.RECIPES["scales"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gt") / "scales"
    make_dataset(folder, images=10, seed=0, image_size=256, scene="scales", val_fraction=0.2)
    return folder


def start(data, topology: str, seed: int) -> dict[str, torch.Tensor]:
    import effdet_graph as eg

    options = eg.TrainOptions(data=data, spec=specs_dir() / f"{topology}.yaml", out=data, **RECIPE.options(seed))
    return initial_model(options).state_dict()


def test_the_ground_truth_varies_every_trained_weight_with_the_seed():
    assert RECIPE.varies == "seed" and "seed" not in RECIPE.train and "data_seed" not in RECIPE.train
    assert RECIPE.train["freeze_backbone"] and RECIPE.train["pretrained_backbone"]
    assert RECIPE.train["overrides"]["repeats"] >= 2 and RECIPE.train["phi"] == 0


@pytest.mark.parametrize("topology", ["fpn", "bifpn"])
def test_two_seeds_draw_other_heads_and_feature_networks_one_seed_the_same(data, topology, one_torch_thread):
    first, again, other = start(data, topology, 0), start(data, topology, 0), start(data, topology, 1)
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first), "the same seed, the same weights"
    trained = [k for k in first if not k.startswith("backbone.") and first[k].is_floating_point()]
    weights = [k for k in trained if k.endswith("weight") and first[k].dim() > 1]
    assert any(k.startswith("class_head.") for k in weights) and any(k.startswith("fpn.") for k in weights)
    assert all(not torch.equal(first[k], other[k]) for k in weights), "another seed draws every conv anew"
    backbone = [k for k in first if k.startswith("backbone.")]
    assert backbone and all(torch.equal(first[k], other[k]) for k in backbone), "ImageNet's backbone, frozen"


def test_the_harness_builds_the_recipes_feature_cache_once_before_its_runs(data, tmp_path, one_torch_thread):
    """``benchmarks.bench_ranking`` builds the cache its runs train on before starting them (one for every seed: the
    backbone is ImageNet's), so that runs side by side do not wait for one of them to build it on one thread."""
    from benchmarks.ranking.runs import prepare_feature_caches

    prepare_feature_caches(RECIPE, data, [0, 1], tmp_path)
    caches = [path for path in (data / "train" / "feature_cache").iterdir() if path.is_dir()]
    assert len(caches) == 1 and (caches[0] / "meta.json").exists()
    prepare_feature_caches(bench.RECIPES["quick"], data, [0], tmp_path)  # no cache in its recipe: nothing built
    assert [path for path in (data / "train" / "feature_cache").iterdir() if path.is_dir()] == caches
