"""``effdet-graph search`` end to end at the smoke budget with the real proxy task: the results folder
(leaderboard, best spec that ``build`` rebuilds, Pareto plot), the ``--steps`` override, and bad input."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from effdet_graph.builtin import specs_dir
from effdet_graph.cli import main
from effdet_graph.device import DEVICE_HELP
from effdet_graph.io.checkpoint import read_checkpoint

SPACE = str(specs_dir() / "search" / "bifpn_edges.yaml")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_smoke_search_writes_its_results(tmp_path, capsys, monkeypatch):
    import search.strategies.proxy
    from effdet_graph.training import feature_cache

    events: list[str] = []  # the space's trials share one feature cache, built before the first trial starts
    build, train_and_evaluate = feature_cache._build, search.strategies.proxy.train_and_evaluate
    monkeypatch.setattr(feature_cache, "_build", lambda *args: (events.append("build"), build(*args)))
    monkeypatch.setattr(
        search.strategies.proxy,
        "train_and_evaluate",
        lambda *a, **k: (events.append("trial"), train_and_evaluate(*a, **k))[1],
    )
    out = tmp_path / "search"
    assert (
        main(["search", SPACE, "--smoke-test", "--trials", "2", "--steps", "3", "--device", "cpu", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "trial state" in printed and f"results: {out}" in printed
    assert events == ["build", "trial", "trial"]
    assert len(list((out / "data" / "train" / "feature_cache").glob("*/meta.json"))) == 1

    with (out / "leaderboard.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["state"] for row in rows] == ["complete", "complete"]
    assert all(0.0 <= float(row["AP"]) <= 1.0 and int(row["params"]) > 0 for row in rows)
    assert float(rows[0]["AP"]) >= float(rows[1]["AP"])  # best first
    best = list((out / "best").glob("*.yaml"))
    assert [path.name for path in best] == [f"bifpn_edges_trial{int(rows[0]['trial']):04d}.yaml"]
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for row in rows:  # --steps replaced the smoke budget's steps
        assert read_checkpoint(out / "trials" / f"{int(row['trial']):04d}" / "train" / "last.pt")["step"] == 3

    capsys.readouterr()
    assert main(["build", str(best[0]), "--input-size", "256", "--in-channels", "40,112,320", "--json"]) == 0
    assert '"params"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--steps must be at least 1, got 0"),
        (["--trials", "0"], "--trials must be at least 1, got 0"),
        (["--device", "gpu"], f"--device 'gpu' is not a device; use {DEVICE_HELP}"),
        (
            ["--engine", "ray", "--device", "cuda", "--gpus-per-trial", "0"],
            "--device cuda: the Ray trials reserve no GPU; give --gpus-per-trial N (N > 0)",
        ),
    ],
)
def test_bad_search_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    assert main(["search", SPACE, *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}"
    assert not (tmp_path / "out").exists()


def test_a_missing_space_file_exits_2(tmp_path, capsys):
    assert main(["search", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nope.yaml" in err and "\n" not in err


@pytest.mark.parametrize("script", ["compound.py", "topology.py"])
def test_the_runnable_scripts_share_the_command_options_and_its_errors(script, tmp_path):
    path = Path(__file__).resolve().parents[2] / "search" / script
    shown = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "default ray" in shown.stdout and "--gpus-per-trial" in shown.stdout
    bad = subprocess.run(
        [sys.executable, str(path), "--steps", "0", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (bad.returncode, bad.stderr.strip()) == (2, "error: --steps must be at least 1, got 0")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("sqlite:////nonexistent/folder/study.db", "unable to open database file"),
        ("nosuchdb://host/db", "Can't load plugin: sqlalchemy.dialects:nosuchdb"),
    ],
)
def test_a_storage_that_cannot_be_opened_exits_2_before_anything_is_written(tmp_path, capsys, url, reason):
    assert main(["search", SPACE, "--storage", url, "--smoke-test", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --storage {url}: cannot open the database ({reason}); check the URL")
    assert "\n" not in err and not (tmp_path / "out").exists()
