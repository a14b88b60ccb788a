"""The one-shot strategy: candidates measured with inherited weights (BatchNorm statistics recomputed or kept,
a fixed subset of val), ``effdet-graph search --strategy oneshot`` end to end, and what it refuses."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pytest
import torch
from search_helpers import TINY_TRAINING

from effdet_graph.cli import main
from effdet_graph.data.checks import open_split
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.inference import predict
from effdet_graph.io.checkpoint import read_checkpoint
from effdet_graph.training import TrainOptions
from effdet_graph.training.batchnorm import BATCH_SIZE, recompute_bn_statistics
from search.run import SMOKE_STEPS
from search.space import builtin_space, load_search_space
from search.strategies.oneshot.checkpoint import load_supernet
from search.strategies.oneshot.evaluation import InheritedWeights, evaluate_inherited, load_inherited
from search.strategies.oneshot.sampling import UniformSampler
from search.strategies.oneshot.strategy import SUPERNET_DIR
from search.strategies.oneshot.training import train_supernet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPACE = builtin_space("bifpn_edges")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """40 train and 10 val images of 128 x 128."""
    out = tmp_path_factory.mktemp("data") / "shapes"
    make_dataset(out, images=50, seed=5, image_size=128)
    return out


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory) -> Path:
    """A bifpn_edges supernet (width 16, one repeat) after 3 fair steps."""
    space = load_search_space(SPACE)
    out = tmp_path_factory.mktemp("supernet")
    options = TrainOptions(data=data, spec=SPACE, out=out, steps=3, **TINY_TRAINING)
    return train_supernet(space, options, "fair", False).checkpoint


@pytest.fixture(scope="module")
def trained(checkpoint):
    return load_supernet(checkpoint)


def _candidate(trained, step=0):
    """A candidate of the supernet's space (the uniform sampler's at ``step``: no budget applied)."""
    return UniformSampler(trained.space, seed=0).candidate(step)


def test_inherited_weights_keep_the_supernet_unchanged_and_recompute_batchnorm_on_k_batches(trained, data):
    train_split, val_split = open_split(data, "train"), open_split(data, "val")
    candidate = _candidate(trained)
    before = {k: v.clone() for k, v in trained.model.state_dict().items()}

    kept = evaluate_inherited(trained, candidate, train_split, val_split, bn_batches=0)
    again = evaluate_inherited(trained, candidate, train_split, val_split, bn_batches=0)
    assert kept.metrics == again.metrics and kept.seconds > 0
    recalibrated = evaluate_inherited(trained, candidate, train_split, val_split, bn_batches=1)
    assert set(recalibrated.metrics) == set(kept.metrics)
    torch.manual_seed(12345)  # a score does not depend on the process's random state (stochastic depth draws)
    assert evaluate_inherited(trained, candidate, train_split, val_split, bn_batches=1).metrics == recalibrated.metrics
    after = trained.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "measuring a candidate changes no supernet weight"

    # Recalibration is precise BN on the first K * 32 training images: the candidate's own statistics.
    model = trained.candidate_detector(candidate)
    running = {n: b.clone() for n, b in model.named_buffers() if n.endswith("running_mean")}
    recompute_bn_statistics(model, train_split, trained.recipe.image_size, BATCH_SIZE, 0, torch.device("cpu"))
    changed = [n for n, b in model.named_buffers() if n.endswith("running_mean") and not torch.equal(b, running[n])]
    assert changed, "the candidate's BatchNorm statistics are its own after recalibration"


def test_ap_is_measured_on_the_first_val_images_given(trained, data, monkeypatch):
    seen = {}
    real = predict.coco_evaluate

    def spy(coco, detections, label_to_category, image_ids=None, **kwargs):
        seen["ids"], seen["detected"] = list(image_ids), sorted({d["image_id"] for d in detections})
        return real(coco, detections, label_to_category, image_ids=image_ids, **kwargs)

    monkeypatch.setattr(predict, "coco_evaluate", spy)
    val_split = open_split(data, "val")
    evaluate_inherited(trained, _candidate(trained), open_split(data, "train"), val_split, 0, val_images=3)
    assert seen["ids"] == val_split.image_ids[:3] and seen["detected"] == sorted(val_split.image_ids[:3])


def test_the_search_evaluate_loads_the_supernet_once_and_takes_the_space_settings(trained, checkpoint, data, tmp_path):
    space = dataclasses.replace(
        trained.space, oneshot=dataclasses.replace(trained.space.oneshot, bn_batches=0, val_images=2)
    )
    load_inherited.cache_clear()
    evaluate = InheritedWeights(space, checkpoint, data)
    assert (evaluate.bn_batches, evaluate.val_images) == (0, 2)
    metrics = evaluate(_candidate(trained), tmp_path, lambda step, ap: None)
    assert 0.0 <= metrics["AP"] <= 1.0 and "latency_ms" not in metrics
    again = InheritedWeights(space, checkpoint, data)  # a later trial in the same worker process
    again(_candidate(trained, 1), tmp_path, lambda step, ap: None)
    assert again._load() is evaluate._load() and load_inherited.cache_info().misses == 1
    timed = InheritedWeights(space, checkpoint, data, measure_latency=True)(_candidate(trained), tmp_path, print)
    assert timed["latency_ms"] > 0


def test_a_oneshot_smoke_search_writes_its_results_and_a_rerun_keeps_the_supernet(tmp_path, capsys):
    out = tmp_path / "search"
    args = ["search", str(SPACE), "--strategy", "oneshot", "--smoke-test", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "trial state" in printed and f"results: {out}" in printed
    supernet = out / SUPERNET_DIR / "last.pt"
    assert (
        read_checkpoint(supernet)["step"] == SMOKE_STEPS and read_checkpoint(supernet)["variant"]["sampling"] == "fair"
    )
    with (out / "leaderboard.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["state"] for row in rows] == ["complete", "complete"]
    assert all(0.0 <= float(row["AP"]) <= 1.0 and int(row["macs"]) > 0 for row in rows)
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # AP against MACs by default
    assert list((out / "best").glob("*.yaml"))
    assert not list((out / "trials").rglob("*.pt")), "no trial trains"

    stamp = supernet.stat().st_mtime_ns
    assert main(args) == 0  # run again: the finished search and its supernet are kept as they are
    assert supernet.stat().st_mtime_ns == stamp
    with (out / "leaderboard.csv").open() as handle:
        assert [row["trial"] for row in csv.DictReader(handle)] == [row["trial"] for row in rows]


def test_a_space_a_supernet_cannot_hold_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "search"
    code = main(["search", str(builtin_space("compound")), "--strategy", "oneshot", "--smoke-test", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert "compound.yaml" in err and "a supernet needs a topology search space" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "section, message",
    [
        ("oneshot:\n  sampling: fare\n", ":2:3: `oneshot.sampling`: unknown value 'fare'; did you mean 'fair'?"),
        ("oneshot:\n  val_images: 0\n", ":2:3: `oneshot.val_images` must be >= 1, got 0"),
        ("oneshot:\n  stepz: 300\n", ":2:3: unknown key 'stepz' in `oneshot`; did you mean 'steps'?"),
        ("oneshot:\n  bn_batches: -1\n", ":2:3: `oneshot.bn_batches` must be >= 0, got -1"),
    ],
)
def test_a_bad_oneshot_section_is_refused_when_the_space_loads(write_space, section, message):
    from graphspec import ConfigError

    without = re.sub(r"^oneshot:.*?(?=^budget:)", "", SPACE.read_text(encoding="utf-8"), flags=re.S | re.M)
    path = write_space("space.yaml", section + without)
    with pytest.raises(ConfigError) as caught:
        load_search_space(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_the_synthetic_data_set_of_a_space_has_a_scene(write_space):
    from graphspec import ConfigError

    text = SPACE.read_text(encoding="utf-8")
    space = load_search_space(
        write_space("s.yaml", text.replace("  name: synthetic\n", "  name: synthetic\n  scene: surround\n"))
    )
    assert (space.dataset.scene, space.dataset.num_classes) == ("surround", 2)
    bad = text.replace("  name: synthetic\n", "  name: synthetic\n  scene: surround\n  image_size: 48\n")
    with pytest.raises(ConfigError, match="`dataset.image_size` must be at least 64 for the surround scene, got 48"):
        load_search_space(write_space("b.yaml", bad))
    with pytest.raises(ConfigError, match="unknown value 'surroundings'; did you mean 'surround'"):
        load_search_space(write_space("c.yaml", text.replace("  name: synthetic\n", "  scene: surroundings\n")))
