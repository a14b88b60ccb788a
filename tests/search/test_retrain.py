"""Retraining a search's best trials stand-alone next to the space's template (``search --retrain K``)."""

from __future__ import annotations

import json

import pytest

from effdet_graph.cli import main
from graphspec.cost import Cost
from search.objective import OBJECTIVES
from search.reporting.results import TrialRecord
from search.reporting.retrain import RETRAIN_DIR, RETRAIN_JSON, RETRAIN_TABLE, retrain_choice
from search.run import SMOKE_STEPS
from search.space import builtin_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _record(number: int, ap: float, params: int = 10, macs: int = 100, state: str = "complete") -> TrialRecord:
    return TrialRecord(number, state, f"trial{number}.yaml", params, macs, {"AP": ap} if state == "complete" else {})


def test_the_best_trials_no_larger_than_the_template_are_chosen_best_first():
    records = [
        _record(0, 0.30),
        _record(1, 0.50, macs=101),  # more MACs than the template
        _record(2, 0.40),
        _record(3, 0.45, params=11),  # more params
        _record(4, 0.0, state="failed"),
        _record(5, 0.35),
        _record(6, 0.20),
    ]
    chosen = retrain_choice(records, OBJECTIVES["ap"], 3, Cost(params=10, macs=100))
    assert [r.number for r in chosen] == [2, 5, 0]
    assert retrain_choice(records, OBJECTIVES["ap"], 0, Cost(10, 100)) == []
    assert [r.number for r in retrain_choice(records, OBJECTIVES["ap"], 9, Cost(10, 100))] == [2, 5, 0, 6]


def test_a_search_retrains_its_best_trial_and_the_template_with_two_seeds_and_a_rerun_keeps_the_runs(tmp_path, capsys):
    out = tmp_path / "search"
    args = ["search", str(builtin_space("bifpn_edges")), "--smoke-test", "--device", "cpu", "--out", str(out)]
    assert main([*args, "--retrain", "1", "--retrain-seeds", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"retrained stand-alone ({RETRAIN_TABLE}):" in printed and "within noise of" in printed
    saved = json.loads((out / RETRAIN_JSON).read_text())
    assert saved["steps"] == SMOKE_STEPS and saved["seeds"] == 2
    rows = saved["rows"]
    assert rows[0]["spec"] == "bifpn" and rows[1]["spec"].startswith("bifpn_edges_trial")
    assert all(len(row["seed_metrics"]) == 2 and row["AP_spread"]["seeds"] == 2 for row in rows)
    assert rows[1]["fpn_params"] <= rows[0]["fpn_params"]  # the template is the size limit (the budget's scope)
    assert (out / RETRAIN_TABLE).read_text().splitlines()[0].startswith("spec ")
    runs = sorted(p.name for p in (out / RETRAIN_DIR).iterdir())
    assert runs[:2] == [f"bifpn-{SMOKE_STEPS}steps-seed0", f"bifpn-{SMOKE_STEPS}steps-seed1"] and len(runs) == 4

    checkpoints = {p: p.stat().st_mtime_ns for p in (out / RETRAIN_DIR).rglob("last.pt")}
    assert len(checkpoints) == 4
    assert main([*args, "--retrain", "1", "--retrain-seeds", "2"]) == 0  # finished runs are found, not retrained
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints
    assert json.loads((out / RETRAIN_JSON).read_text())["rows"][0]["seed_metrics"] == rows[0]["seed_metrics"]


@pytest.mark.parametrize(
    "space, options, message",
    [
        ("compound", ["--retrain", "2"], "is a 'compound' space, whose candidates differ in their detector"),
        ("bifpn_edges", ["--retrain", "-1"], "--retrain must be at least 0, got -1"),
        ("bifpn_edges", ["--seed", "-1"], "--seed must be >= 0, got -1"),
        ("bifpn_edges", ["--retrain", "1", "--retrain-seeds", "0"], "--retrain-seeds must be at least 1, got 0"),
        ("bifpn_edges", ["--retrain", "1", "--retrain-steps", "0"], "--retrain-steps must be at least 1, got 0"),
    ],
)
def test_a_bad_retraining_or_seed_is_refused_before_anything_is_written(tmp_path, capsys, space, options, message):
    out = tmp_path / "search"
    code = main(["search", str(builtin_space(space)), "--smoke-test", "--out", str(out), *options])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err and message in err
    assert not out.exists()
