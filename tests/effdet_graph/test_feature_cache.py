"""The frozen backbone's feature cache: fixed views of each training image, computed once, shared by every run
with the same data, backbone, input size, augmentation and views, and training on it gives the losses of
training on the fly with the same views."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from effdet_graph.cli import main
from effdet_graph.data.coco import CocoDetection, view_of
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.data.transforms import TrainTransform
from effdet_graph.model.backbone import create_backbone
from effdet_graph.training import feature_cache as cache_module
from effdet_graph.training.feature_cache import CachedViews, open_feature_cache
from effdet_graph.training.options import OptionError, TrainOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")
BACKBONE = "mobilenetv3_small_050"
TRAIN = [
    "train", "--spec", "bifpn", "--phi", "0", "--image-size", "128", "--set", "width=16", "--set", "repeats=1",
    "--backbone", BACKBONE, "--batch-size", "4", "--steps", "6", "--bn-images", "0", "--log-every", "1",
    "--freeze-backbone", "--views", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cache") / "shapes"
    make_dataset(folder, images=10, seed=0, image_size=128)
    return folder


def _losses(run: Path) -> list[float]:
    with (run / "log.csv").open(newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_training_on_the_cache_gives_the_losses_of_training_on_the_fly_with_the_same_views(data, tmp_path, capsys):
    assert main([*TRAIN, "--data", str(data), "--out", str(tmp_path / "fly")]) == 0
    assert main([*TRAIN, "--data", str(data), "--out", str(tmp_path / "cached"), "--feature-cache"]) == 0
    fly, cached = _losses(tmp_path / "fly"), _losses(tmp_path / "cached")
    assert len(fly) == len(cached) == 6
    assert cached[0] == pytest.approx(fly[0], rel=1e-4)  # the same weights; features rounded to float16
    assert cached == pytest.approx(fly, rel=2e-2)
    assert len(list((data / "train" / "feature_cache").glob("*/meta.json"))) == 1

    assert (
        main([*TRAIN, "--data", str(data), "--out", str(tmp_path / "again"), "--feature-cache", "--data-seed", "1"])
        == 0
    )
    assert len(list((data / "train" / "feature_cache").glob("*/meta.json"))) == 1  # another data order: the same cache
    assert main([*TRAIN[:-1], "3", "--data", str(data), "--out", str(tmp_path / "three"), "--feature-cache"]) == 0
    assert len(list((data / "train" / "feature_cache").glob("*/meta.json"))) == 2  # other views: another cache


def test_a_cached_view_is_the_backbone_of_the_view_the_on_the_fly_run_picks(data):
    dataset = CocoDetection.from_split(data / "train", seed=3)
    transform = TrainTransform(128, (0.5, 1.5))
    dataset.transform, dataset.views = transform, 3
    backbone = create_backbone(BACKBONE, [3, 4, 5]).eval()
    cache = open_feature_cache(dataset, backbone, BACKBONE, transform, 3, torch.device("cpu"), progress=False)
    items = CachedViews(cache, seed=3)
    assert len(items) == len(dataset) and [a.shape[0] for a in cache.levels] == [3 * len(dataset)] * 3
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        items.set_epoch(epoch)
        for index in (0, 4):
            image, target = dataset[index]
            maps, cached_target = items[index]
            with torch.no_grad():
                expected = backbone(image[None])
            for got, want in zip(maps, expected):
                torch.testing.assert_close(got, want[0], rtol=1e-2, atol=1e-2)  # float16
            torch.testing.assert_close(cached_target["boxes"], target["boxes"])
    assert {view_of(3, epoch, 0, 3) for epoch in range(12)} == {0, 1, 2}  # each epoch picks one of the views


def test_two_processes_wanting_the_cache_at_once_build_it_once(data, monkeypatch):
    dataset = CocoDetection.from_split(data / "train")
    transform = TrainTransform(64)
    backbone = create_backbone(BACKBONE, [3, 4, 5]).eval()
    builds: list[int] = []
    build = cache_module._build

    def counted(*args: object) -> None:
        builds.append(1)
        build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_module, "_build", counted)
    results: list[cache_module.FeatureCache] = []
    cpu = torch.device("cpu")
    run = lambda: results.append(open_feature_cache(dataset, backbone, BACKBONE, transform, 1, cpu, False))  # noqa: E731
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and len(results) == 2 and results[0].path == results[1].path
    assert not list(results[0].path.parent.glob("*.tmp-*"))  # built aside, renamed into place
    np.testing.assert_array_equal(results[0].levels[0], results[1].levels[0])


def test_a_cache_prepared_ahead_is_the_one_the_training_opens(tmp_path, monkeypatch):
    """A search builds its trials' shared cache before they start (``prepare_feature_cache``); a trial with the
    same options then opens it, its backbone's random weights drawn from the same seed, instead of building one."""
    from effdet_graph.training.loop import prepare_feature_cache, train

    data = tmp_path / "shapes"
    make_dataset(data, images=10, seed=0, image_size=128)
    builds: list[int] = []
    build = cache_module._build
    monkeypatch.setattr(cache_module, "_build", lambda *args: (builds.append(1), build(*args)))
    options = TrainOptions(
        data=data, spec=Path("bifpn"), phi=0, out=tmp_path / "run", image_size=128, backbone=BACKBONE,
        batch_size=4, steps=2, bn_images=0, freeze_backbone=True, feature_cache=True, views=2, seed=3,
        overrides={"width": 16, "repeats": 1},
    )  # fmt: skip
    before = torch.get_rng_state()
    folder = prepare_feature_cache(options, progress=False)
    assert builds == [1] and (folder / "meta.json").is_file()
    assert torch.get_rng_state().equal(before)  # the seed was drawn on a forked generator: the caller's is left as is
    train(options, progress=False)
    assert builds == [1] and list((data / "train" / "feature_cache").glob("*/meta.json")) == [folder / "meta.json"]
    with pytest.raises(ValueError, match="feature_cache set"):
        prepare_feature_cache(TrainOptions(data=data, spec=Path("bifpn"), phi=0, out=tmp_path / "x"))


def test_a_changed_backbone_makes_another_cache(data):
    dataset = CocoDetection.from_split(data / "train")
    transform = TrainTransform(64)
    backbone = create_backbone(BACKBONE, [3, 4, 5]).eval()
    first = cache_module.cache_key(dataset, backbone, BACKBONE, transform, 1)
    with torch.no_grad():
        next(backbone.parameters()).add_(1e-3)
    assert cache_module.cache_key(dataset, backbone, BACKBONE, transform, 1) != first
    assert cache_module.cache_key(dataset, backbone, BACKBONE, TrainTransform(96), 1) != first


def test_a_feature_cache_needs_a_frozen_backbone(data, tmp_path, capsys):
    with pytest.raises(OptionError, match="feature_cache holds a frozen backbone's features; add freeze_backbone"):
        TrainOptions(data=data, spec=Path("bifpn"), phi=0, out=tmp_path, feature_cache=True)
    assert (
        TrainOptions(
            data=data, spec=Path("x"), phi=0, out=tmp_path, feature_cache=True, freeze_backbone=True
        ).view_count
        == 8
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--spec",
                "bifpn",
                "--phi",
                "0",
                "--out",
                str(tmp_path / "r"),
                "--feature-cache",
            ]
        )
        == 2
    )
    assert "--feature-cache holds a frozen backbone's features; add --freeze-backbone" in capsys.readouterr().err


def test_a_folder_the_cache_cannot_be_written_to_is_one_line_naming_it(data, tmp_path, monkeypatch, capsys):
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)  # as a read-only data folder does (root writes anywhere here)
    args = [*TRAIN, "--data", str(data), "--out", str(tmp_path / "run"), "--feature-cache", "--views", "5"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    root = data / "train" / "feature_cache"
    assert err.endswith(
        f"{root}: cannot write the feature cache (Permission denied); make {root} writable or free space there"
    )
