"""The ranking-fidelity harness (``benchmarks/ranking/``, run by ``benchmarks.bench_ranking``): rank statistics
on hand examples, storage that only adds and keeps recipes apart (fake runs, no training), SynFlow, and the
no-fusion control spec."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_oneshot as oneshot
from benchmarks import bench_ranking as bench
from benchmarks.ranking import ROOT
from benchmarks.ranking.correlation import kendall_tau, precision_at_k, seed_to_seed_tau, spearman_rho
from benchmarks.ranking.methods import (
    Context,
    context_for,
    macs_score,
    params_score,
    recipe_detector,
    synflow,
    synflow_score,
    trained_spec,
)
from benchmarks.ranking.recipes import RECIPE_FILE, load_recipes, search_proxy_recipe
from benchmarks.ranking.reports import build_report, report_path
from benchmarks.ranking.runs import log_rows, record_verification, run_missing, timed_run, training_seconds, verify
from benchmarks.ranking.scoring import StoredTraining, oneshot_methods, score_methods
from benchmarks.ranking.store import RunStore, checkpoint_path, cpu_model, machine, project_version
from benchmarks.ranking.topologies import CONTROL_SPEC, Topology, ground_truth_set, sampled_topologies, write_specs
from effdet_graph.builtin import specs_dir
from effdet_graph.cli import main
from graphspec import InputError

# -- rank statistics -------------------------------------------------------------------------------


def test_kendall_tau_hand_example():
    # Pairs of (1,2,3,4) vs (1,3,2,4): 6 pairs, one discordant (2-3) -> (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # Tie in x at (1, 1): pairs 0-1 tied in x only, 0-2 and 1-2 concordant: tau-b = 2 / sqrt(2 * 3).
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_spearman_rho_hand_example():
    # Ranks (1,2,3,4,5) vs (2,1,4,3,5): sum d^2 = 4, rho = 1 - 6 * 4 / (5 * 24) = 0.8.
    assert spearman_rho([10, 20, 30, 40, 50], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert spearman_rho([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    # Ties take their mean rank: x ranks (1.5, 1.5, 3) vs y (1, 2, 3) -> Pearson = sqrt(3) / 2.
    assert spearman_rho([5, 5, 7], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)


def test_precision_at_3_hand_example():
    truth = [0.9, 0.8, 0.7, 0.1, 0.2]
    assert precision_at_k(truth, [5, 4, 3, 2, 1]) == pytest.approx(1.0)
    assert precision_at_k(truth, [5, 1, 3, 4, 2]) == pytest.approx(2 / 3)  # picks 0, 3, 2
    assert precision_at_k(truth, [1, 2, 3, 5, 4]) == pytest.approx(1 / 3)  # picks 3, 4, 2


def test_seed_to_seed_tau_is_the_mean_over_pairs():
    table = {"a": {0: 1.0, 1: 1.0, 2: 3.0}, "b": {0: 2.0, 1: 2.0, 2: 2.0}, "c": {0: 3.0, 1: 3.0, 2: 1.0}}
    # seeds 0-1 agree (tau 1); 0-2 and 1-2 reverse (tau -1): mean -1/3.
    assert seed_to_seed_tau(table, [0, 1, 2]) == pytest.approx(-1 / 3)
    assert math.isnan(seed_to_seed_tau(table, [0]))


# -- storage ---------------------------------------------------------------------------------------


def _topologies():
    return [Topology(name, f"name: {name}\n", "test") for name in ("a", "b", "c")]


class FakeRun:
    """Counts calls; AP from the topology and seed."""

    def __init__(self):
        self.calls: list[tuple[str, int, str]] = []

    def __call__(self, topology, spec, seed, recipe, data, work) -> Mapping[str, float]:
        assert spec.read_text() == topology.spec_text
        self.calls.append((topology.name, seed, recipe.name))
        return {"AP": 0.1 * ("abc".index(topology.name) + 1) + 0.01 * seed, "AP50": 0.5}


def test_storage_skips_stored_runs_and_separates_recipes(tmp_path):
    path = tmp_path / "ranking.json"
    quick, gt = bench.RECIPES["quick"], bench.RECIPES[bench.GROUND_TRUTH]
    assert quick.hash != gt.hash
    run = FakeRun()
    store = RunStore(path)
    made = run_missing(_topologies(), [0, 1], quick, store, tmp_path, tmp_path, run=run, log=lambda _: None)
    assert made == 6 and len(run.calls) == 6

    again = RunStore(path)  # a rerun reads the file back and skips every stored run
    assert run_missing(_topologies(), [0, 1, 2], quick, again, tmp_path, tmp_path, run=run, log=print) == 3
    assert len(run.calls) == 9 and all(seed == 2 for _, seed, _ in run.calls[6:])

    # Another recipe runs everything again, and neither recipe's table sees the other's runs.
    assert run_missing(_topologies(), [0], gt, again, tmp_path, tmp_path, run=run, log=lambda _: None) == 3
    stored = json.loads(path.read_text())["runs"]
    assert len(stored) == 12
    assert {r["version"] for r in stored} == {project_version()}
    assert {r["recipe"]["name"] for r in stored} == {"quick", bench.GROUND_TRUTH}
    assert {r["machine"]["torch"] for r in stored} == {machine()["torch"]}
    assert set(RunStore(path).ap_table(gt, _topologies())["a"]) == {0}
    assert set(RunStore(path).ap_table(quick, _topologies())["a"]) == {0, 1, 2}

    # A changed spec text is a new run; the old one stays stored.
    changed = [Topology("a", "name: a\n# edited\n", "test")]
    assert run_missing(changed, [0], quick, again, tmp_path, tmp_path, run=run, log=lambda _: None) == 1
    assert len(json.loads(path.read_text())["runs"]) == 13
    with pytest.raises(KeyError):
        again.add(changed[0], 0, quick, {"AP": 0.0}, 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"runs": [\n', ":2:1: not JSON (Expecting value); restore the file"),
        ('{"schema": 1}', ": not a store of ranking runs (KeyError('runs')); restore the file"),
        ('{"runs": [{"topology": "a"}]}', ": not a store of ranking runs (KeyError('spec_hash')); restore the file"),
    ],
)
def test_a_broken_store_is_one_line_naming_the_file(tmp_path, text, message, capsys):
    path = tmp_path / "ranking.json"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        RunStore(path)
    assert str(error.value) == f"{path}{message}"
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--report-only", "--results", str(path)])
    assert exit_info.value.code == 2 and capsys.readouterr().err == f"error: {path}{message}\n"


def test_score_methods_with_a_plugged_in_method():
    topologies = _topologies()
    truth = {"a": 0.1, "b": 0.2, "c": 0.3}
    table = {name: {0: ap, 1: ap} for name, ap in truth.items()}
    methods = {"good": lambda t, c: truth[t.name], "bad": lambda t, c: -truth[t.name]}
    context = Context((40, 112, 320), 64)
    results = {r.name: r for r in score_methods(topologies, table, [0, 1], context, methods)}
    assert results["good"].tau == pytest.approx(1.0) and results["good"].rho == pytest.approx(1.0)
    assert results["bad"].tau == pytest.approx(-1.0) and results["good"].precision_at_3 == 1.0
    assert results["good"].seconds >= 0
    assert results["good"].topologies == 3 and results["good"].ceiling == pytest.approx(1.0)


def test_supernet_rows_rank_the_topologies_of_their_space_and_cost_training_plus_measuring(tmp_path):
    """A supernet row covers only the topologies its results hold; its ceiling is the seeds' tau over those."""
    gt = bench.RECIPES[bench.GROUND_TRUTH]
    supernet = {
        "train_seconds": 100.0,
        "scores": {
            "0": {"a": {"AP": 0.2, "seconds": 1.0}, "b": {"AP": 0.1, "seconds": 1.0}, "c": {"AP": 0.3, "seconds": 1.0}},
            "4": {"a": {"AP": 0.1, "seconds": 2.0}, "c": {"AP": 0.3, "seconds": 2.0}},
            "1": {},
        },
    }
    path = tmp_path / "oneshot.json"
    path.write_text(json.dumps({gt.hash: {"supernets": {"fair": supernet}}}))
    methods = oneshot_methods(gt, path)
    assert list(methods) == ["supernet fair, no BN recalibration", "supernet fair, BN on 4 batches"]
    table = {"a": {0: 0.1, 1: 0.2}, "b": {0: 0.3, 1: 0.1}, "c": {0: 0.5, 1: 0.6}}
    results = score_methods(_topologies(), table, [0, 1], Context((16, 48, 160), 64), methods)
    without, recalibrated = results
    assert (without.topologies, without.seconds) == (3, pytest.approx(103.0))
    assert without.tau == pytest.approx(1 / 3)  # truth c > b (0.2) ~ a (0.15): a, b swapped
    assert (recalibrated.topologies, recalibrated.seconds, recalibrated.tau) == (2, pytest.approx(104.0), 1.0)
    assert recalibrated.ceiling == pytest.approx(1.0) and without.ceiling == pytest.approx(1 / 3)
    assert oneshot_methods(gt, tmp_path / "none.json") == {}


# -- SynFlow and the control -----------------------------------------------------------------------


def _builtin(name: str, width: int):
    text = (specs_dir() / f"{name}.yaml").read_text().replace("width: 64", f"width: {width}", 1)
    return Topology(name, text, "test")


def test_synflow_is_finite_positive_and_prefers_a_wider_network(one_torch_thread):
    bifpn = _builtin("bifpn", 64)
    narrow = synflow_score(bifpn, Context((16, 24, 48), 64, overrides={"width": 16}))
    wide = synflow_score(bifpn, Context((16, 24, 48), 64, overrides={"width": 32}))
    assert math.isfinite(narrow) and narrow > 0
    assert wide > narrow


def test_synflow_restores_the_weights(one_torch_thread):
    import torch

    from effdet_graph.fpn.compiler import compile_spec

    network = compile_spec(_builtin("fpn", 16).spec(), (16, 24, 48)).double()
    before = [p.detach().clone() for p in network.parameters()]
    inputs = [torch.ones(1, c, s, s, dtype=torch.float64) for c, s in ((16, 8), (24, 4), (48, 2))]
    assert synflow(network, inputs) > 0
    assert all(torch.equal(a, b) for a, b in zip(before, network.parameters()))


def test_cheap_methods_score_the_spec_the_recipe_trains():
    """The beacon recipe trains one cell (``overrides: {repeats: 1}``): params and MACs count that spec, not
    the file's three cells."""
    from graphspec import loads_spec
    from graphspec.cost import estimate_cost

    (bifpn,) = [t for t in ground_truth_set(0) if t.name == "bifpn"]
    context = context_for(bench.RECIPES["beacon"])
    spec = context.spec(bifpn)
    assert spec.params["repeats"] == 1 and bifpn.spec().params["repeats"] == 3
    one_cell = loads_spec(bifpn.spec_text, "bifpn.yaml", {**bifpn.spec().params, "repeats": 1})
    expected = estimate_cost(one_cell, context.in_channels, context.image_size).total
    assert params_score(bifpn, context) == expected.params
    assert macs_score(bifpn, context) == expected.macs
    unscaled = Context(context.in_channels, context.image_size)
    assert params_score(bifpn, context) < params_score(bifpn, unscaled)


def test_control_spec_validates_builds_and_has_no_fusion(capsys, one_torch_thread):
    path = CONTROL_SPEC
    assert main(["validate", str(path)]) == 0
    assert main(["build", str(path), "--input-size", "64"]) == 0
    spec = Topology("nofusion", path.read_text(), "test").spec()
    assert all(len(node.inputs) == 1 and node.inputs[0] == f"P{node.level}" for node in spec.nodes)


def test_the_beacon_lies_beyond_the_controls_p3_reach_and_within_fpns(one_torch_thread, tmp_path):
    """The beacon recipe's detector (one cell, one-layer heads) on 128 px: the class outputs of every P3 cell an
    object's centre can fall in (centres lie at least 58 px from the 40 px band,
    tests/effdet_graph/test_synthetic_dataset.py) have no gradient at all from the band in the no-fusion control, and
    some in FPN, whose P3 is fused from the coarse levels."""
    import torch

    from effdet_graph.data.synthetic import SCENES

    recipe = bench.RECIPES["beacon"]
    size = recipe.dataset["image_size"]
    band = size * 5 // 16
    specs = write_specs([t for t in ground_truth_set(0) if t.name in ("nofusion", "fpn")], tmp_path)
    first_cell = (band + 58) // 8  # the P3 column (stride 8) of the nearest centre, the band on the left
    share = {}
    for name, path in specs.items():
        torch.manual_seed(0)
        model = recipe_detector(recipe, path, len(SCENES["beacon"].classes))
        model.eval()
        image = (0.1 * torch.randn(1, 3, size, size)).requires_grad_(True)
        model(image)[0][0][0, :, :, first_cell:].abs().sum().backward()
        gradient = image.grad[0].abs().sum(0)
        share[name] = float(gradient[:, :band].sum() / gradient.sum())
    assert share["nofusion"] == 0.0
    assert share["fpn"] > 1e-2


def test_sampled_topologies_are_seeded_and_distinct():
    first = sampled_topologies(3, seed=0)
    assert [t.spec_hash for t in first] == [t.spec_hash for t in sampled_topologies(3, seed=0)]
    assert len({t.spec_hash for t in first}) == 3
    assert all(t.spec().name == t.name for t in first)


# -- recipes, stored-training methods and the report -----------------------------------------------


def test_recipe_sends_the_seed_to_the_option_it_varies():
    gt = bench.RECIPES["lr012-val1600"]
    assert gt.options(2)["seed"] == 2 and "data_seed" not in gt.options(2)
    data_only = gt.but("data only", varies="data_seed", seed=0)
    assert data_only.options(2) | {} == {**gt.train, "seed": 0, "data_seed": 2}
    assert data_only.hash != gt.hash and data_only.dataset == gt.dataset
    assert gt.but("again").hash == gt.hash  # the name is not part of the hash
    halved = gt.but("half lr", lr=gt.train["lr"] / 2)
    assert halved.train["lr"] == gt.train["lr"] / 2 and halved.varies == "seed"


def test_recipes_file_gives_the_recipes_and_their_reports_paths(tmp_path):
    book = load_recipes()
    detector, recipes = book.detector, book.recipes
    surround, plain = recipes["surround"], recipes["no-jitter"]
    assert detector == {"phi": 0, "backbone": "mobilenetv2_050", "scale_range": (0.75, 1.33)}
    assert surround.train == {**detector, "image_size": 128, "batch_size": 8, "lr": 0.04, "steps": 1000}
    assert plain.train == {**surround.train, "scale_range": (1.0, 1.0)} and plain.dataset == surround.dataset
    # the hashes of the stored runs: moving the recipes into YAML, and renaming them, changed no value
    assert (surround.hash, plain.hash) == ("f072dab5eb36c298", "b5e2418572ede535")
    beacon = recipes["beacon"]
    assert beacon.train == {**recipes["warmup"].train, "steps": 1800, "head_depth": 1, "overrides": {"repeats": 1}}
    assert beacon.dataset["scene"] == "beacon" and beacon.hash == "d409af4c9dda4eab"  # its stored runs'
    lr008 = recipes["beacon-lr008"]
    assert lr008.train == {**beacon.train, "lr": 0.08, "steps": 1500} and lr008.dataset == beacon.dataset
    assert (lr008.hash, recipes["lr012-val1600"].hash) == ("8ab71adbf59dbf9c", "1e193910d7d07c61")
    assert book.ground_truth == bench.GROUND_TRUTH == "fixed-init"
    assert recipes["fixed-init"].hash == "308151522059c372"
    assert report_path(plain) == bench.RESULTS.with_name("ranking_report-no-jitter.json")
    assert report_path(recipes["fixed-init"]) == bench.RESULTS.with_name("ranking_report-fixed-init.json")


@pytest.mark.parametrize(("name", "scene"), [("fixed-init", "beacon"), ("surround", "surround")])
def test_recipe_trains_on_its_scene_with_valid_options(tmp_path, name, scene):
    import effdet_graph as eg

    recipe = bench.RECIPES[name]
    assert recipe.dataset["scene"] == scene and recipe.train["image_size"] == recipe.dataset["image_size"]
    eg.TrainOptions(data=tmp_path, spec=tmp_path / "s.yaml", out=tmp_path, **recipe.options(0))  # checks every value


def test_the_larger_val_recipes_train_on_the_beacon_recipes_images(tmp_path):
    """``lr012-val1600`` is ``beacon-lr008`` at lr 0.12 with 1,600 val images after the same 1,200 training images
    (the synthetic set seeds each image by its index); ``fixed-init`` is that recipe with the weights' seed fixed."""
    from effdet_graph.data.synthetic import make_dataset

    gt, wide, fixed = (bench.RECIPES[name] for name in ("beacon-lr008", "lr012-val1600", "fixed-init"))
    assert wide.train == {**gt.train, "lr": 0.12} and fixed.train == {**wide.train, "seed": 0}
    assert (wide.varies, fixed.varies) == ("seed", "data_seed") and fixed.dataset == wide.dataset
    sizes = {}
    for name, recipe in (("gt", gt), ("wide", wide)):
        args = {k: v for k, v in recipe.dataset.items() if k != "images"}
        sizes[name] = make_dataset(tmp_path / name, images=recipe.dataset["images"] // 100, **args)
    assert (sizes["gt"].train_images, sizes["wide"].train_images, sizes["wide"].val_images) == (12, 12, 16)
    train = tmp_path / "gt" / "train"
    files = sorted(path.relative_to(tmp_path / "gt") for path in train.rglob("*") if path.is_file())
    assert len(files) > 12
    for file in files:
        assert (tmp_path / "gt" / file).read_bytes() == (tmp_path / "wide" / file).read_bytes(), file


def test_the_bench_search_space_is_the_surround_recipe(tmp_path):
    """``bifpn_edges_bench`` searches on the surround recipe's data and detector, and its proxy and supernet train
    as a surround run does."""
    import effdet_graph as eg
    from effdet_graph.model.scaling import detector_config
    from search.space import builtin_space, load_search_space
    from search.strategies.proxy import proxy_options

    gt = bench.RECIPES["surround"]
    space = load_search_space(builtin_space("bifpn_edges_bench"))
    data = space.dataset
    assert dict(
        images=data.images,
        image_size=data.image_size,
        seed=space.sampler.seed,
        scene=data.scene,
        val_fraction=data.val_fraction,
    ) == dict(gt.dataset)
    detector = space.choices.detector
    searched = proxy_options(space, detector, tmp_path, tmp_path / "s.yaml", tmp_path, gt.train["steps"], 0, None)
    recipe = eg.TrainOptions(data=tmp_path, spec=tmp_path / "s.yaml", out=tmp_path, **gt.options(0))
    for name in ("steps", "batch_size", "image_size", "lr", "ema_decay", "scale_range", "backbone", "phi", "seed"):
        assert getattr(searched, name) == getattr(recipe, name), name
    assert searched.warmup_steps == gt.train["steps"] // 10 and recipe.warmup_steps is None  # None: a tenth
    assert searched.head_depth == detector_config(gt.train["phi"]).head.depth and recipe.head_depth is None  # the phi's
    assert space.oneshot.steps == gt.train["steps"]
    assert (space.choices.detector.phi, space.choices.detector.backbone) == (gt.train["phi"], gt.train["backbone"])


def test_search_proxy_recipe_is_the_recipe_files_proxy_cut_to_a_budget():
    training = bench.RECIPE_BOOK.search_proxy
    gt = bench.RECIPES["surround"]
    recipe = search_proxy_recipe(100, gt, training)
    assert recipe.train["steps"] == 100 and recipe.train["warmup_steps"] == 10
    assert (recipe.train["lr"], recipe.train["ema_decay"]) == (training["lr"], training["ema_decay"]) == (0.15, 0.99)
    assert recipe.train["image_size"] == training["image_size"] and recipe.dataset == gt.dataset
    assert recipe.train["backbone"] == gt.train["backbone"]
    assert search_proxy_recipe(200, gt, training).hash != recipe.hash
    beacon = bench.RECIPES["beacon"]  # one cell, one-layer heads: the proxy trains that detector too
    beacon_proxy = search_proxy_recipe(100, beacon, training).train
    assert (beacon_proxy["head_depth"], beacon_proxy["overrides"]) == (1, {"repeats": 1})
    assert recipe.hash == "3ed4bdedb375a9f4"  # the stored proxy runs' (unchanged by the detector options)


def test_a_search_proxy_block_with_a_bad_value_is_refused_naming_its_line(tmp_path):
    from graphspec import ConfigError

    text = RECIPE_FILE.read_text(encoding="utf-8")
    bad = tmp_path / "recipes.yaml"
    bad.write_text(
        text.replace("search_proxy: {image_size: 128,", "search_proxy: {image_size: -128,"), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"recipes.yaml:\d+:\d+: .*search_proxy.*image_size"):
        load_recipes(bad)


def _store_with(tmp_path, recipe, aps: dict[str, list[float]], seconds=10.0):
    store = RunStore(tmp_path / "ranking.json")
    for name, values in aps.items():
        for seed, ap in enumerate(values):
            store.add(Topology(name, f"name: {name}\n", "test"), seed, recipe, {"AP": ap}, seconds)
    return store


def test_stored_training_scores_by_the_stored_ap_and_costs_the_runs_seconds(tmp_path):
    proxy = search_proxy_recipe(100, bench.RECIPES[bench.GROUND_TRUTH], bench.RECIPE_BOOK.search_proxy)
    store = _store_with(tmp_path, proxy, {"a": [0.3], "b": [0.1], "c": [0.2]}, seconds=7.0)
    method = StoredTraining(proxy, store)
    topologies = _topologies()
    table = {"a": {0: 0.9}, "b": {0: 0.1}, "c": {0: 0.5}}
    (result,) = score_methods(topologies, table, [0], Context((16, 48, 160), 64), {"proxy": method})
    assert result.tau == pytest.approx(1.0) and result.seconds == pytest.approx(21.0)
    with pytest.raises(KeyError, match="no stored run of a seed 1"):
        StoredTraining(proxy, store, seed=1)(topologies[0], None)


def test_another_recipes_single_runs_rank_the_topologies_they_cover(tmp_path):
    """A ``ranking_runs`` row: another recipe's runs with one seed, on the topologies that have one; its ceiling is
    the ground truth's seed-to-seed tau over those."""
    other = bench.RECIPES["lr012-val1600"]
    store = _store_with(tmp_path, other, {"a": [0.0, 0.3], "c": [0.0, 0.1]}, seconds=5.0)
    method = StoredTraining(other, store, seed=1)
    assert [method.covers(t) for t in _topologies()] == [True, False, True]
    table = {"a": {0: 0.9, 1: 0.8}, "b": {0: 0.5, 1: 0.7}, "c": {0: 0.1, 1: 0.2}}
    (result,) = score_methods(_topologies(), table, [0, 1], Context((16, 48, 160), 64), {"one run": method})
    assert (result.topologies, result.tau, result.ceiling, result.seconds) == (2, 1.0, 1.0, 10.0)
    assert bench.RECIPE_BOOK.ranking_runs == {"lr012-val1600": (1, 2)}


def test_report_ceilings_control_gap_and_json(tmp_path):
    gt = bench.RECIPES[bench.GROUND_TRUTH]
    aps = {
        "nofusion": [0.10, 0.12, 0.11],
        "fpn": [0.30, 0.32, 0.31],
        "bifpn": [0.40, 0.42, 0.41],
        "x": [0.20, 0.35, 0.21],  # a sampled topology: passes fpn with seed 1
    }
    store = _store_with(tmp_path, gt, aps)
    topologies = [Topology(name, f"name: {name}\n", "test") for name in aps]
    methods = {"ap": lambda t, c: float(np.mean(aps[t.name]))}
    report = build_report(store, topologies, [0, 1, 2], gt, methods)
    # Seeds 0-2 agree; seed 1 swaps x and fpn against either (tau (5 - 1) / 6): mean (2/3 + 1 + 2/3) / 3.
    assert report.ceiling == pytest.approx(7 / 9)
    assert report.builtin_ceiling == pytest.approx(1.0)  # x is not in the built-in set
    assert report.seed_sd == pytest.approx(np.mean([0.01, 0.01, 0.01, np.std(aps["x"], ddof=1)]))
    assert report.control_gap("fpn") == pytest.approx(0.2 / report.seed_sd)
    data = report.as_json()
    assert data["control_gap_sd"] == {"fpn": 7.0, "bifpn": 10.5} and data["builtin_topologies"] == 3
    assert list(data["mean_ap"]) == ["bifpn", "fpn", "x", "nofusion"]
    assert data["ap_by_seed"]["x"] == [0.20, 0.35, 0.21] and data["minutes_per_run"] == pytest.approx(10 / 60, abs=0.05)
    assert data["methods"][0]["tau"] == 1.0
    assert "above the no-fusion control, in seed standard deviations: fpn +7.0, bifpn +10.5" in report.text()
    assert build_report(store, topologies[:2], [0, 1, 2], gt, methods) is None  # fewer than 3 topologies


def test_the_batchnorm_study_compares_each_k_with_the_most_batches():

    def scores(aps, seconds):
        return {name: {"AP": ap, "seconds": seconds} for name, ap in zip("abc", aps)}

    study = oneshot.bn_study(
        {"0": scores([0.3, 0.2, 0.1], 1.0), "4": scores([0.1, 0.2, 0.3], 3.0), "2": {"a": {"AP": 0.1, "seconds": 2}}}
    )
    assert study == [  # K 2 lacks topologies measured with the most batches: left out
        {"bn_batches": 0, "mean_ap": 0.2, "tau_vs_most": -1.0, "seconds": 1.0},
        {"bn_batches": 4, "mean_ap": 0.2, "tau_vs_most": 1.0, "seconds": 3.0},
    ]
    assert oneshot.bn_study({}) == []


@pytest.mark.parametrize("recipe", ["surround", "fixed-init"])
def test_the_supernets_space_holds_bifpn_and_the_sampled_topologies_at_the_recipes_repeats(recipe):
    """The union is made with the recipe's spec overrides (the beacon's one cell), as the supernet trains it; a
    union of D0's three cells held none of the one-cell topologies."""
    held = {t.name for t in oneshot.space_topologies(ground_truth_set(), bench.RECIPES[recipe])}
    assert held == {"bifpn"} | {t.name for t in sampled_topologies(10)}


_LOG_HEADER = "step,epoch,lr,loss,class_loss,box_loss,images_per_s\n"


def test_a_runs_training_seconds_come_from_its_log(tmp_path):
    (tmp_path / "log.csv").write_text(_LOG_HEADER + "10,0,0.1,1,1,1,40.0\n20,0,0.1,1,1,1,20.0\n25,0,0.1,1,1,1,10.0\n")
    rows = log_rows(tmp_path)
    assert [row["step"] for row in rows] == ["10", "20", "25"] and log_rows(tmp_path / "none") == []
    assert training_seconds(rows, batch_size=8) == pytest.approx(80 / 40 + 80 / 20 + 40 / 10)


def test_a_resumed_runs_seconds_add_the_killed_runs_logged_steps(tmp_path):
    """The killed run logged steps 10-30 and saved its checkpoint at step 20; the resume keeps the rows of steps 10
    and 20 (10 steps of 4 images at 5 and at 10 images/s: 8 + 4 s) and logs steps 30 and 40 anew."""
    quick = bench.RECIPES["quick"]
    (topology,) = _topologies()[:1]
    folder = checkpoint_path(tmp_path, RunStore.key(topology, 0, quick)).parent
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"")
    killed = "10,0,0.1,1,1,1,5.0\n20,0,0.1,1,1,1,10.0\n"
    (folder / "log.csv").write_text(_LOG_HEADER + killed + "30,0,0.1,1,1,1,10.0\n")

    def resume(topology, spec, seed, recipe, data, work):
        (folder / "log.csv").write_text(_LOG_HEADER + killed + "30,0,0.1,1,1,1,400.0\n40,0,0.1,1,1,1,400.0\n")
        return {"AP": 0.5}

    metrics, seconds = timed_run(resume, topology, tmp_path, 0, quick, tmp_path, tmp_path)
    assert metrics == {"AP": 0.5} and quick.train["batch_size"] == 4
    assert 12.0 <= seconds < 12.5
    (folder / "last.pt").unlink()  # a fresh run (no checkpoint) counts only its own time
    assert timed_run(resume, topology, tmp_path, 0, quick, tmp_path, tmp_path)[1] < 0.5


@pytest.mark.parametrize("phi", [0, 3])
def test_a_topology_is_trained_at_the_recipes_scaling_with_its_overrides(phi):
    """``trained_spec`` reads the text once and gives the spec a search candidate's parameters give (the template's
    defaults, D``phi``'s scaling, then the overrides)."""
    from graphspec import loads_spec
    from search.space.detector import spec_params

    for topology in ground_truth_set(samples=2):
        spec = trained_spec(topology, phi, {"repeats": 1})
        assert spec == loads_spec(
            topology.spec_text, f"{topology.name}.yaml", spec_params(topology.spec(), phi, {"repeats": 1})
        )
        assert spec.params["repeats"] == 1 and spec.params["width"] == {0: 64, 3: 160}[phi]  # D0, D3


def test_the_machine_names_the_cpu_model(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert cpu_model(tmp_path / "none") == (platform.processor() or platform.machine())
    assert machine()["processor"] == cpu_model()


def test_verify_makes_a_stored_run_again_and_keeps_each_outcome_with_its_machine(tmp_path):
    quick = bench.RECIPES["quick"]
    topology = _topologies()[1]
    store = RunStore(tmp_path / "ranking.json")
    run = FakeRun()
    store.add(topology, 1, quick, run(topology, write_specs([topology], tmp_path)["b"], 1, quick, None, None), 5.0)
    outcome = verify(topology, 1, quick, store, tmp_path, run=run)
    assert run.calls == [("b", 1, "quick")] * 2
    assert (outcome["stored_ap"], outcome["ap"], outcome["same"]) == (0.1 * 2 + 0.01, 0.1 * 2 + 0.01, True)
    assert outcome["stored_machine"] == outcome["machine"] == machine()
    path = tmp_path / "verify.json"
    record_verification(outcome, path)
    record_verification({**outcome, "ap": 0.2, "same": False}, path)
    assert [r["same"] for r in json.loads(path.read_text())["runs"]] == [True, False]
    with pytest.raises(KeyError, match="no stored run of b seed 0 with recipe quick"):
        verify(topology, 0, quick, store, tmp_path, run=run)


def test_the_stored_runs_cover_the_set():
    """The stored ground truth's runs, and those of the recipes before it run on the whole set, hold all 18
    topologies with every seed."""
    topologies = ground_truth_set()
    store = RunStore(bench.RESULTS)
    for name in (bench.GROUND_TRUTH, "beacon-lr008", "surround"):
        assert len(store.complete(bench.RECIPES[name], topologies, [0, 1, 2])) == 18, name


def test_a_sampled_topology_is_the_same_text_wherever_the_clone_lies(tmp_path):
    """A sampled topology's spec text (and so the key of its stored runs) names no path of the clone: a copy of
    the project under a longer path draws the same texts (a header that named the clone wrapped its lines
    elsewhere, and no stored sampled run matched)."""
    clone = tmp_path / ("a-folder-name-longer-than-any-clone-path-has-" * 2) / "effdet-graph"
    for part in ("graphspec", "effdet_graph", "search", "specs"):
        shutil.copytree(ROOT / part, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "benchmarks" / "ranking", clone / "benchmarks" / "ranking", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "benchmarks" / "__init__.py", clone / "benchmarks" / "__init__.py")
    script = (
        "import json; import effdet_graph; "
        "from benchmarks.ranking.topologies import sampled_topologies; "
        "print(json.dumps([effdet_graph.__file__, [t.spec_text for t in sampled_topologies(3)]]))"
    )
    env = {**os.environ, "PYTHONPATH": str(clone)}
    done = subprocess.run([sys.executable, "-c", script], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    module, texts = json.loads(done.stdout)
    assert Path(module).is_relative_to(clone)
    assert texts == [t.spec_text for t in sampled_topologies(3)]
    assert "(specs/search/bifpn_edges.yaml)" in texts[0] and str(clone) not in texts[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--verify", "fpnn", "0"], "--verify: no topology 'fpnn' in the set"),
        (["--verify", "fpn", "7"], f"--verify: no stored run of fpn seed 7 with recipe {bench.GROUND_TRUTH}"),
    ],
)
def test_verify_refuses_a_run_it_cannot_find(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("recipe", "at", "message"),
    [
        ("{train: {sed: 0}, dataset: {}}", "sed", "unknown `train` key 'sed'; did you mean 'seed'?"),
        ("{train: {lr: 0}, dataset: {}}", "lr", "`train.lr` must be positive, got 0"),
        ("{train: {}, dataset: {image: 20}}", "image", "unknown `dataset` key 'image'; did you mean 'images'?"),
        ("{varies: weights, train: {}, dataset: {}}", "varies", "`varies` must be seed or data_seed, got 'weights'"),
        ("{<<: *base, dataset: {}}", "step", "unknown `train` key 'step'; did you mean 'steps'?"),  # in the anchor
    ],
)
def test_a_recipe_no_run_could_train_with_is_refused_where_the_file_says_it(tmp_path, recipe, at, message):
    path = tmp_path / "recipes.yaml"
    text = f"detector: {{phi: 0}}\nbase: &base {{train: {{step: 9}}}}\nground_truth: r\nrecipes:\n  r: {recipe}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_recipes(path)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if f"{at}:" in row)
    column = text.splitlines()[line - 1].index(f"{at}:") + 1
    assert str(error.value) == f"{path}:{line}:{column}: recipe 'r': {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("detector: {phi: 0}\nrecipes: {r: {train: {}, dataset: {}}}\n", "`ground_truth` must name a recipe"),
        (
            "detector: {phi: 0}\nground_truth: q\nrecipes: {r: {train: {}, dataset: {}}}\n",
            "`ground_truth` must name a recipe of the file, got 'q'",
        ),
        ("detector: {phi: 0}\nground_truth: r\nrecipes: {r: {dataset: {}}}\n", "`recipes.r.train` must be a mapping"),
        ("detector: [phi]\nground_truth: r\nrecipes: {}\n", "`detector` must be a mapping"),
        (
            "detector: {phi: 0}\nground_truth: r\nrecipes: {r: {vary: data_seed, train: {}, dataset: {}}}\n",
            ":3:15: unknown key 'vary' in recipe 'r'; did you mean 'varies'?",
        ),
        ("detector: {phi: 0}\nrecipes: {r: {train: {}, dataset: {}}\n", "YAML syntax error"),
        (
            "detector: {phi: 0}\nground_truth: r\nranking_runs: {q: [1]}\nrecipes: {r: {train: {}, dataset: {}}}\n",
            ":3:16: `ranking_runs` names no recipe of the file: 'q'",
        ),
        (
            "detector: {phi: 0}\nground_truth: r\nranking_runs: {r: 1}\nrecipes: {r: {train: {}, dataset: {}}}\n",
            ":3:16: `ranking_runs.r` must be a list of seeds, got 1",
        ),
        ("detector: {phi: 0}\nground_truth: r\nranking_runs: [r]\nrecipes: {r: {train: {}, dataset: {}}}\n", ":3:"),
    ],
)
def test_a_broken_recipes_file_is_one_located_line(tmp_path, text, message):
    path = tmp_path / "recipes.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_recipes(path)
    assert str(error.value).startswith(f"{path}:") and message in str(error.value)
    assert "\n" not in str(error.value)
