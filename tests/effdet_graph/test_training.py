"""Training: checkpoint contents, exact resumption, schedule, data order, and every refused input."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_training import TINY_TRAINING

from effdet_graph.data.checks import open_split
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.data.transforms import ResizePad
from effdet_graph.errors import CheckpointError, DatasetError, InputError
from effdet_graph.io.checkpoint import FORMAT, load_checkpoint, read_checkpoint
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.training import TrainOptions, loop, train
from effdet_graph.training.data import epoch_loader
from effdet_graph.training.optim import build_optimizer, build_scheduler
from effdet_graph.training.seeding import restore_rng_state, rng_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 train and 2 val images of 128 x 128."""
    out = tmp_path_factory.mktemp("data") / "shapes"
    make_dataset(out, images=10, seed=3, image_size=128)
    return out


def options(data, out, **changes) -> TrainOptions:
    return TrainOptions(data=data, out=out, **{"spec": Path("bifpn"), **TINY_TRAINING, **changes})


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_steps_write_a_complete_checkpoint(data, tmp_path):
    result = train(options(data, tmp_path / "run", steps=2), progress=False)
    assert result.checkpoint == tmp_path / "run" / "last.pt" and result.steps_run == 2
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt["format"] == FORMAT
    expected = {
        "spec_text",
        "spec_file",
        "spec_params",
        "spec_overrides",
        "phi",
        "backbone",
        "image_size",
        "num_classes",
        "label_to_category",
        "class_names",
        "detector",
        "model",
        "ema",
        "optimizer",
        "scheduler",
        "scaler",
        "step",
        "epoch",
        "rng",
        "args",
        "train_images",
    }
    assert expected <= set(ckpt)
    assert ckpt["step"] == 2 and ckpt["epoch"] == 1 and ckpt["image_size"] == 128
    assert ckpt["spec_overrides"] == {"width": 16, "repeats": 1} and ckpt["spec_params"]["width"] == 16
    assert ckpt["class_names"] == ["circle", "square", "triangle", "ring", "cross"]
    assert ckpt["label_to_category"] == [1, 2, 3, 4, 5] and ckpt["num_classes"] == 5
    assert "bifpn" in ckpt["spec_text"] and ckpt["args"]["steps"] == 2
    assert [int(r["step"]) for r in _rows(tmp_path / "run" / "log.csv")] == [1, 2]
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temporary files left
    model, recipe = load_checkpoint(result.checkpoint)  # rebuilt from the checkpoint alone
    assert not model.training and recipe.backbone == "mobilenetv3_small_050"
    assert torch.equal(
        model.state_dict()["class_head.predict.conv_pw.bias"], ckpt["ema"]["class_head.predict.conv_pw.bias"]
    )


def test_losses_are_read_back_every_log_every_steps_and_at_epoch_ends(data, tmp_path):
    train(options(data, tmp_path / "run", epochs=2, batch_size=2, log_every=3), progress=False)
    rows = _rows(tmp_path / "run" / "log.csv")
    assert [int(r["step"]) for r in rows] == [3, 4, 6, 8]  # every 3rd step, and each epoch's last (4 steps each)
    assert all(float(r["loss"]) > 0 and float(r["images_per_s"]) > 0 for r in rows)


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(data, tmp_path, killed_after_first_checkpoint):
    whole = train(options(data, tmp_path / "whole", epochs=2, batch_size=2), progress=False)
    killed_after_first_checkpoint(
        lambda: train(options(data, tmp_path / "cut", epochs=2, batch_size=2), progress=False)
    )
    cut = tmp_path / "cut" / "last.pt"
    assert read_checkpoint(cut)["step"] == 4
    resumed = train(options(data, tmp_path / "cut", epochs=2, batch_size=2, resume=cut), progress=False)
    assert resumed.steps_run == 4 and resumed.total_steps == 8

    a, b = read_checkpoint(whole.checkpoint), read_checkpoint(resumed.checkpoint)
    assert a["step"] == b["step"] == 8 and a["epoch"] == b["epoch"] == 2
    for part in ("model", "ema"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part} {key} differs"
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(state_a["momentum_buffer"], state_b["momentum_buffer"])
    rows_a, rows_b = _rows(tmp_path / "whole" / "log.csv"), _rows(tmp_path / "cut" / "log.csv")
    assert [r["step"] for r in rows_b] == [str(s) for s in range(1, 9)]  # no step logged twice or lost
    assert [(r["lr"], r["loss"]) for r in rows_a] == [(r["lr"], r["loss"]) for r in rows_b]


def test_resume_refuses_another_phi_or_spec(data, tmp_path):
    first = train(options(data, tmp_path / "a", steps=1), progress=False)
    with pytest.raises(CheckpointError, match=r"a/last.pt: cannot resume .*phi: checkpoint 0, this run 1"):
        train(options(data, tmp_path / "b", steps=1, phi=1, resume=first.checkpoint), progress=False)
    with pytest.raises(CheckpointError, match=r"a/last.pt: cannot resume .*spec"):
        train(options(data, tmp_path / "b", steps=1, spec=Path("fpn"), resume=first.checkpoint), progress=False)
    with pytest.raises(CheckpointError, match=r"lr: checkpoint 0.01, this run 0.02"):
        train(options(data, tmp_path / "b", steps=1, lr=0.02, resume=first.checkpoint), progress=False)
    assert not (tmp_path / "b" / "last.pt").exists()


def test_weights_that_do_not_fit_are_named(data, tmp_path):
    first = train(options(data, tmp_path / "a", steps=1), progress=False)
    ckpt = read_checkpoint(first.checkpoint)
    other = ModelRecipe.from_dict({**ckpt, "spec_params": {**ckpt["spec_params"], "width": 24}}).build()
    broken = {**ckpt, "model": other.state_dict()}
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(
        CheckpointError,
        match=r"broken.pt: weights do not fit the model .*shape mismatches: "
        r"fpn\..*checkpoint \[24",
    ):
        load_checkpoint(tmp_path / "broken.pt", use_ema=False)


def test_refused_inputs(data, tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere: data set folder does not exist"):
        train(options(tmp_path / "nowhere", tmp_path / "run", steps=1), progress=False)
    empty = tmp_path / "empty"
    shutil.copytree(data, empty)
    annotations = json.loads((empty / "train" / "instances.json").read_text())
    (empty / "train" / "instances.json").write_text(json.dumps({**annotations, "images": [], "annotations": []}))
    with pytest.raises(DatasetError, match=r"empty/train/instances.json: the train split lists no images"):
        train(options(empty, tmp_path / "run", steps=1), progress=False)
    with pytest.raises(DatasetError, match=r"train split has 8 images, fewer than --batch-size 16"):
        train(options(data, tmp_path / "run", steps=1, batch_size=16), progress=False)
    with pytest.raises(InputError, match=r"give steps or epochs, not both"):
        options(data, tmp_path / "run", steps=1, epochs=1)
    with pytest.raises(InputError, match=r"scale_range must be"):
        options(data, tmp_path / "run", scale_range=(2.0, 1.0))
    assert not (tmp_path / "run").exists()  # nothing written by a refused run
    done = train(options(data, tmp_path / "done", steps=1), progress=False)
    with pytest.raises(InputError, match=r"done/last.pt: a checkpoint is already there; continue it with --resume"):
        train(options(data, tmp_path / "done", steps=1), progress=False)
    assert done.checkpoint.exists()


def test_warmup_then_cosine_per_step():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = build_optimizer(model, lr=0.1, momentum=0.9, weight_decay=4e-5)
    decays = sorted(group["weight_decay"] for group in optimizer.param_groups)
    assert decays == [0.0, 4e-5] and len(optimizer.param_groups[1]["params"]) == 1  # only the conv weight
    scheduler = build_scheduler(optimizer, total_steps=100, warmup_steps=10)
    lrs = []
    for step in range(100):
        scheduler.step_update(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-4) and lrs[10] == pytest.approx(0.1)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11])) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.001, rel=0.05)


def test_epoch_loader_resumes_mid_epoch(data):
    dataset = open_split(data, "train", seed=5)
    dataset.transform = ResizePad(128)
    ids = lambda loader: [t["image_id"] for _, targets in loader for t in targets]  # noqa: E731
    full = ids(epoch_loader(dataset, 3, batch_size=2, seed=5))
    assert sorted(full) == sorted(dataset.image_ids) and full != ids(epoch_loader(dataset, 4, batch_size=2, seed=5))
    assert ids(epoch_loader(dataset, 3, batch_size=2, seed=5, first_batch=1, end_batch=3)) == full[2:6]
    assert len(ids(epoch_loader(dataset, 0, batch_size=3, seed=5))) == 6  # full batches only


def test_rng_state_round_trip(tmp_path):
    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_options_are_stored_as_plain_values(data, tmp_path):
    stored = options(data, tmp_path, steps=3).to_dict()
    assert stored["data"] == str(data) and stored["steps"] == 3 and stored["scale_range"] == (0.5, 1.5)
    assert set(stored) == {f.name for f in dataclasses.fields(TrainOptions)}


def test_on_epoch_end_sees_each_written_checkpoint(data, tmp_path):
    seen = []
    train(
        options(data, tmp_path, epochs=2),
        progress=False,
        on_epoch_end=lambda step, total, path: seen.append((step, total, read_checkpoint(path)["step"])),
    )
    assert seen == [(2, 4, 2), (4, 4, 4)]


def test_resume_refuses_another_head_depth(data, tmp_path):
    first = train(options(data, tmp_path / "a", steps=1), progress=False)
    with pytest.raises(CheckpointError, match=r"cannot resume .*detector.head: checkpoint \{'depth': 3"):
        train(options(data, tmp_path / "b", steps=1, head_depth=2, resume=first.checkpoint), progress=False)


def test_compiled_step_is_one_graph_with_the_eager_losses(data, tmp_path, monkeypatch):
    modes = []
    real_compile = torch.compile

    def whole_graph(module, mode=None):  # what --compile asks for, checked for graph breaks, without inductor
        modes.append(mode)
        return real_compile(module, backend="aot_eager", fullgraph=True)

    eager = train(options(data, tmp_path / "eager", steps=2), progress=False)
    monkeypatch.setattr(torch, "compile", whole_graph)
    compiled = train(options(data, tmp_path / "compiled", steps=2, compile=True), progress=False)
    assert modes == [None]  # the CPU gets the default mode; a GPU "reduce-overhead" (CUDA graphs)
    rows_eager, rows_compiled = _rows(tmp_path / "eager" / "log.csv"), _rows(tmp_path / "compiled" / "log.csv")
    for a, b in zip(rows_eager, rows_compiled, strict=True):
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=1e-4)
    assert compiled.total_steps == eager.total_steps == 2


def test_data_seed_seeds_the_data_apart_from_the_weights(data, tmp_path, monkeypatch):
    assert options(data, tmp_path, seed=3).order_seed == 3
    assert options(data, tmp_path, seed=3, data_seed=0).order_seed == 0
    seen = {"weights": [], "data": []}
    real_seed, real_loader = loop.seed_everything, loop.epoch_loader
    monkeypatch.setattr(loop, "seed_everything", lambda seed: seen["weights"].append(seed) or real_seed(seed))
    monkeypatch.setattr(
        loop, "epoch_loader", lambda *a, **k: seen["data"].append(a[3]) or real_loader(*a, **k)
    )  # (dataset, epoch, batch_size, seed)

    def weights(**changes):
        result = train(options(data, tmp_path / str(changes), steps=2, bn_images=0, **changes), progress=False)
        return load_checkpoint(result.checkpoint)[0].state_dict()

    default, same = weights(seed=1), weights(seed=1, data_seed=1)
    assert seen == {"weights": [1, 1], "data": [1, 1]}
    assert all(torch.equal(default[k], same[k]) for k in default)
    other_data = weights(seed=1, data_seed=2)
    assert seen == {"weights": [1, 1, 1], "data": [1, 1, 2]}
    assert not all(torch.equal(default[k], other_data[k]) for k in default)
