"""Supernet training through the training loop: the samplers' schedules, the checkpoint a supernet and its
candidates' weights come out of, exact resumption, and what is refused."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from search_helpers import TINY_TRAINING

from effdet_graph.data.synthetic import make_dataset
from effdet_graph.errors import CheckpointError
from effdet_graph.io.checkpoint import load_checkpoint, read_checkpoint
from effdet_graph.training import TrainOptions, train
from effdet_graph.training.options import OptionError
from graphspec import InputError
from search.space import SearchSpace, builtin_space, load_search_space
from search.strategies.oneshot.checkpoint import load_supernet
from search.strategies.oneshot.sampling import FairSampler, UniformSampler, fair_choice, make_sampler
from search.strategies.oneshot.training import train_supernet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOPOLOGY_SPACES = ("bifpn_edges", "nasfpn_cells")


class OptionLister:
    """A trial that keeps each choice point's options (and picks the first)."""

    number = 0

    def __init__(self) -> None:
        self.options: dict[str, list[Any]] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.options[name] = list(choices)
        return choices[0]


def choice_points(space: SearchSpace) -> dict[str, list[Any]]:
    """Every choice point of ``space`` and its options."""
    lister = OptionLister()
    space.choices.draw(space.template, lister)
    return lister.options


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 train and 2 val images of 128 x 128."""
    out = tmp_path_factory.mktemp("data") / "shapes"
    make_dataset(out, images=10, seed=3, image_size=128)
    return out


def options(space: SearchSpace, data: Path, out: Path, **changes: Any) -> TrainOptions:
    return TrainOptions(data=data, spec=Path(space.file), out=out, **{**TINY_TRAINING, **changes})


@pytest.fixture(scope="module")
def fair_run(spaces, data, tmp_path_factory) -> Path:
    """The checkpoint of two fair steps of the bifpn_edges supernet."""
    out = tmp_path_factory.mktemp("fair")
    return train_supernet(
        spaces["bifpn_edges"], options(spaces["bifpn_edges"], data, out, steps=2), "fair", False
    ).checkpoint


@pytest.mark.parametrize("name", TOPOLOGY_SPACES)
def test_the_fair_sampler_suggests_each_option_once_per_cycle_of_its_choice_point(spaces, name):
    space = spaces[name]
    points = choice_points(space)
    longest = max(len(choices) for choices in points.values())
    sampler = FairSampler(space, seed=5)
    suggested = [sampler.candidate(step).suggestions for step in range(2 * longest)]
    assert all(list(s) == list(points) for s in suggested)  # every step suggests every choice point
    for point, choices in points.items():
        n = len(choices)
        for start in range(0, len(suggested) - n + 1, n):  # each full cycle of this choice point
            cycle = Counter(str(s[point]) for s in suggested[start : start + n])
            assert cycle == Counter(str(choice) for choice in choices), f"{point}, steps {start}-{start + n - 1}"
    assert len({tuple(map(str, s.values())) for s in suggested}) == len(suggested)  # no combination repeats


def test_the_fair_sampler_trains_the_uniform_candidate_where_its_choices_give_no_network(write_space):
    text = (
        builtin_space("bifpn_edges")
        .read_text(encoding="utf-8")
        .replace("  - {from: P5, to: p5_td}\n", "  - {from: P5, to: p5_td}\n  - {from: p6_td, to: p5_td}\n")
    )
    space = load_search_space(write_space("orphan.yaml", text))  # p5_td may now lose all its inputs
    fair, uniform = FairSampler(space, seed=1), UniformSampler(space, seed=1)
    points = choice_points(space)
    empty = 0
    for step in range(24):
        scheduled = {name: fair_choice(1, name, choices, step) for name, choices in points.items()}
        candidate = fair.candidate(step)
        if not any(scheduled[f"edge.{source}->p5_td"] for source in ("P5", "p6_td", "P7")):
            empty += 1
            assert candidate.spec_text == uniform.candidate(step).spec_text
        else:
            assert candidate.suggestions == scheduled
    assert empty > 0


@pytest.mark.parametrize("name", TOPOLOGY_SPACES)
def test_the_uniform_sampler_is_seeded_and_depends_on_the_step_alone(spaces, name):
    space = spaces[name]
    first = [UniformSampler(space, seed=3).candidate(step).spec_text for step in range(6)]
    backwards = UniformSampler(space, seed=3)
    assert [backwards.candidate(step).spec_text for step in reversed(range(6))] == first[::-1]
    assert len(set(first)) == len(first)
    other = [UniformSampler(space, seed=4).candidate(step).spec_text for step in range(6)]
    assert other != first


@pytest.mark.parametrize(("name", "sampling"), [("bifpn_edges", "uniform"), ("nasfpn_cells", "fair")])
def test_training_writes_a_checkpoint_the_supernet_and_each_candidates_weights_come_out_of(
    spaces, data, tmp_path, name, sampling
):
    space = spaces[name]
    result = train_supernet(space, options(space, data, tmp_path / "run", steps=2), sampling, progress=False)
    assert result.steps_run == 2 and result.checkpoint == tmp_path / "run" / "last.pt"
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt["step"] == 2 and ckpt["args"]["bn_images"] == 0
    assert ckpt["variant"] == {
        "kind": "supernet",
        "load_with": "search.strategies.oneshot.checkpoint.load_supernet",
        "space_file": space.file,
        "space_text": Path(space.file).read_text(encoding="utf-8"),
        "sampling": sampling,
    }
    union_file = tmp_path / "run" / f"{name}_union.yaml"
    assert ckpt["spec_text"] == union_file.read_text(encoding="utf-8") and ckpt["spec_file"] == str(union_file)
    assert ckpt["backbone"] == "mobilenetv3_small_050" and ckpt["spec_params"]["width"] == 16
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2]

    trained = load_supernet(result.checkpoint)
    assert trained.sampling == sampling and not trained.model.training
    torch.manual_seed(0)
    images = torch.rand(2, 3, 128, 128)
    outputs = []
    for candidate in (make_sampler(space, "uniform", 9).candidate(step) for step in range(2)):
        alone = trained.candidate_detector(candidate)  # strict load: exactly the candidate detector's keys
        trained.supernet.select(trained.supernet.path(candidate))
        with torch.no_grad():
            expected, got = alone(images), trained.model(images)
        for e, g in zip(expected[0] + expected[1], got[0] + got[1]):
            torch.testing.assert_close(g, e, atol=1e-5, rtol=0)
        outputs.append(got[0][0])
    assert not torch.allclose(outputs[0], outputs[1])  # the two candidates differ, so the agreement means something


def test_a_resumed_supernet_run_ends_with_the_weights_of_an_uninterrupted_one(
    spaces, data, tmp_path, killed_after_first_checkpoint
):
    space = spaces["bifpn_edges"]
    whole = train_supernet(space, options(space, data, tmp_path / "whole", epochs=2, batch_size=2), "fair", False)
    killed_after_first_checkpoint(
        lambda: train_supernet(space, options(space, data, tmp_path / "cut", epochs=2, batch_size=2), "fair", False)
    )
    cut = tmp_path / "cut" / "last.pt"
    assert read_checkpoint(cut)["step"] == 4
    resumed = train_supernet(
        space, options(space, data, tmp_path / "cut", epochs=2, batch_size=2, resume=cut), "fair", False
    )
    assert resumed.steps_run == 4 and resumed.total_steps == 8

    a, b = read_checkpoint(whole.checkpoint), read_checkpoint(resumed.checkpoint)
    assert a["step"] == b["step"] == 8
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part} {key} differs"


def test_a_supernet_checkpoint_is_no_plain_detector_checkpoint(spaces, data, tmp_path, fair_run):
    with pytest.raises(
        CheckpointError,
        match=r"last.pt: holds a supernet, not a plain detector, and rebuilds none; "
        r"load it with search.strategies.oneshot.checkpoint.load_supernet",
    ):
        load_checkpoint(fair_run)
    plain = TrainOptions(
        data=data, spec=Path("bifpn"), out=tmp_path / "plain", steps=2, resume=fair_run, **TINY_TRAINING
    )
    refused = r"cannot resume .*variant: checkpoint a supernet, this run a plain detector"
    with pytest.raises(CheckpointError, match=refused):
        train(plain, progress=False)
    space = spaces["bifpn_edges"]
    with pytest.raises(CheckpointError, match=r"variant.sampling: checkpoint 'fair', this run 'uniform'"):
        train_supernet(space, options(space, data, tmp_path / "other", steps=2, resume=fair_run), "uniform", False)
    detector = train(
        TrainOptions(data=data, spec=Path("bifpn"), out=tmp_path / "plain", steps=1, **TINY_TRAINING), False
    )
    with pytest.raises(
        CheckpointError, match=r"holds a plain detector, not a supernet; load it with effdet_graph.load_checkpoint"
    ):
        load_supernet(detector.checkpoint)
    damaged = {**torch.load(fair_run, weights_only=True), "variant": {"kind": "supernet"}}
    torch.save(damaged, tmp_path / "damaged.pt")
    with pytest.raises(CheckpointError, match=r"damaged.pt: entry 'variant.load_with' must be a non-empty string"):
        load_supernet(tmp_path / "damaged.pt")


def test_the_space_a_supernet_was_trained_on_is_checked_when_it_is_loaded(data, tmp_path, write_space):
    original = builtin_space("bifpn_edges").read_text(encoding="utf-8")
    path = write_space("edges.yaml", original)
    space = load_search_space(path)
    run = train_supernet(space, options(space, data, tmp_path / "run", steps=1), "uniform", False)
    path.write_text(original.replace("lr: 0.15", "lr: 0.2"), encoding="utf-8")
    assert load_supernet(run.checkpoint).space.proxy.lr == 0.2  # the candidates are the same
    path.write_text(original.replace("  - {from: P3, to: p4_td}", ""), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"the candidates of search space .*edges.yaml are not those the"):
        load_supernet(run.checkpoint)
    moved = load_search_space(write_space("moved.yaml", original))
    assert load_supernet(run.checkpoint, space=moved).space is moved


@pytest.mark.parametrize(
    ("changes", "sampling", "message"),
    [
        ({"phi": 1}, "uniform", r"phi must be the phi of search space bifpn_edges \(0\), .*; got 1"),
        ({"bn_images": 512}, "uniform", r"bn_images must be 0 for a supernet: .*; got 512"),
        ({"compile": True}, "uniform", r"compile must be off for a supernet"),
        ({}, "random", r"sampling must be one of uniform, fair, got 'random'"),
    ],
)
def test_what_a_supernet_does_not_train_with_is_refused_before_anything_is_written(
    spaces, data, tmp_path, changes, sampling, message
):
    space = spaces["bifpn_edges"]
    with pytest.raises((OptionError, InputError), match=message):
        train_supernet(space, options(space, data, tmp_path / "run", steps=1, **changes), sampling, False)
    assert not (tmp_path / "run").exists()


def test_a_supernet_trains_on_a_frozen_backbones_feature_cache(spaces, data, tmp_path):
    space = spaces["bifpn_edges"]
    run = options(space, data, tmp_path / "run", steps=3, freeze_backbone=True, feature_cache=True, views=2)
    result = train_supernet(space, run, "fair", progress=False)
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt["step"] == 3 and ckpt["args"]["feature_cache"] and ckpt["args"]["freeze_backbone"]
    once = options(space, data, tmp_path / "once", steps=1, freeze_backbone=True)  # on the fly, one step
    start = read_checkpoint(train_supernet(space, once, "fair", False).checkpoint)
    backbone = [k for k in ckpt["model"] if k.startswith("backbone.")]
    assert backbone and [k for k in backbone if not torch.equal(ckpt["model"][k], start["model"][k])] == []
    assert len(list((data / "train" / "feature_cache").glob("*/meta.json"))) == 1
