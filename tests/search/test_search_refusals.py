"""Search spaces and options that cannot give a result are refused before anything is written (one line, exit 2),
and a search whose every trial failed says so (exit 2) after writing its leaderboard; the summary names only the
files that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import CheapEvaluate
from search_helpers import variant_text

import search.run as run_module
import search.strategies.proxy as proxy_module
from effdet_graph.builtin import specs_dir
from effdet_graph.cli import main
from graphspec import ConfigError
from search.space import load_search_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EDGES = str(specs_dir() / "search" / "bifpn_edges.yaml")


def _position(text: str, token: str) -> tuple[int, int]:
    index = text.index(token)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def _refused(capsys: pytest.CaptureFixture[str], space: Path, out: Path, token: str, *fragments: str) -> str:
    """Run ``effdet-graph search space``: exit 2, one stderr line at ``token``'s position, nothing written."""
    assert main(["search", str(space), "--smoke-test", "--device", "cpu", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    line, column = _position(space.read_text(encoding="utf-8"), token)
    assert err.startswith(f"error: {space}:{line}:{column}: "), err
    assert "\n" not in err and "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in err, err
    assert not out.exists()
    return err


def _coco_space(tmp_path: Path, path: str) -> Path:
    space = tmp_path / "space.yaml"
    text = variant_text("bifpn_edges", "  name: synthetic", f"  name: coco\n  path: {path}")
    space.write_text(text, encoding="utf-8")
    return space


def _coco_layout(root: Path, splits: tuple[str, ...] = ("train", "val")) -> None:
    for split in splits:
        (root / split / "images").mkdir(parents=True)
        (root / split / "instances.json").write_text('{"images": [], "categories": []}\n', encoding="utf-8")


# --- data set paths ------------------------------------------------------------------------------------------------


def test_a_coco_path_that_does_not_exist_is_refused_at_dataset_path(tmp_path, capsys):
    space = _coco_space(tmp_path, "nowhere/coco")
    err = _refused(capsys, space, tmp_path / "out", "path: nowhere", "`dataset.path` 'nowhere/coco'", "does not exist")
    assert repr(str(tmp_path / "nowhere" / "coco")) in err  # relative to the space file, shown as it was read
    assert "--data" not in err


def test_a_coco_folder_without_its_val_split_is_refused(tmp_path, capsys):
    _coco_layout(tmp_path / "coco", splits=("train",))
    space = _coco_space(tmp_path, "coco")
    _refused(capsys, space, tmp_path / "out", "path: coco", "`dataset.path` 'coco'", "has no val/images")


def test_a_complete_coco_layout_loads_relative_to_the_space_file(tmp_path, monkeypatch):
    _coco_layout(tmp_path / "coco")
    space = _coco_space(tmp_path, "coco")
    monkeypatch.chdir(tmp_path.parent)
    loaded = load_search_space(space)
    assert loaded.dataset.path == tmp_path / "coco"


def test_a_path_with_a_control_character_is_echoed_escaped(tmp_path):
    space = _coco_space(tmp_path, '"bad\\x1bpath"')
    with pytest.raises(ConfigError) as info:
        load_search_space(space)
    assert "\x1b" not in str(info.value) and "'bad\\x1bpath'" in str(info.value)


# --- constraints and budgets -----------------------------------------------------------------------------------------


def test_a_compound_constraint_out_of_reach_is_refused_with_the_reachable_range(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(variant_text("compound", "  product: 2.0", "  product: 100.0"), encoding="utf-8")
    _refused(
        capsys,
        space,
        tmp_path / "out",
        "product: 100.0",
        "`constraint.product` 100.0: out of reach",
        "alpha * beta^2 * gamma^2 takes values in [1, 5.37824]",
    )


def test_a_zero_tolerance_without_solve_for_is_refused(write_space):
    text = variant_text("compound", "  tolerance: 0.1\n  solve_for: gamma", "  tolerance: 0\n ")
    with pytest.raises(ConfigError, match=r"`constraint\.product` 2\.0: .*tolerance 0 and no `solve_for`"):
        load_search_space(write_space("space.yaml", text))
    text = variant_text("compound", "  tolerance: 0.1\n", "  tolerance: 0\n")  # solve_for repairs onto the target
    assert load_search_space(write_space("space.yaml", text)).choices.tolerance == 0


def test_a_compound_budget_below_its_smallest_candidate_is_refused(tmp_path, capsys):
    text = variant_text("compound", "  scope: detector ", "  scope: feature_network ")
    space = tmp_path / "space.yaml"
    space.write_text(text.replace("  max_params: 12_000_000", "  max_params: 1_000"), encoding="utf-8")
    _refused(
        capsys,
        space,
        tmp_path / "out",
        "max_params: 1_000",
        "`budget.max_params` 1,000: no candidate of the space can meet it",
        "even the feature network at phi 0, fusion 'sum' with every coefficient at its low end has",
    )


def test_a_topology_budget_below_the_backbone_and_heads_is_refused(write_space):
    text = variant_text("nasfpn_cells", "  scope: feature_network", "  scope: detector")
    with pytest.raises(ConfigError, match=r"`budget\.max_params` .*counting only its backbone and heads"):
        load_search_space(write_space("space.yaml", text))


# --- results -------------------------------------------------------------------------------------------------------


def _cheap_search(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail: dict[int, str]) -> None:
    """Make ``effdet-graph search`` evaluate with :class:`CheapEvaluate` (no data set, no feature cache, no
    training)."""
    monkeypatch.setattr(run_module, "prepare_dataset", lambda space, results: tmp_path / "data")
    monkeypatch.setattr(proxy_module, "prepare_shared_cache", lambda *args: None)
    monkeypatch.setattr(proxy_module, "ProxyTask", lambda *args, **kwargs: CheapEvaluate(fail=fail))


def test_a_search_whose_every_trial_failed_exits_2_after_writing_its_leaderboard(tmp_path, capsys, monkeypatch):
    _cheap_search(monkeypatch, tmp_path, {0: "raise", 1: "raise"})
    out = tmp_path / "out"
    assert main(["search", EDGES, "--trials", "2", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("error")] == [
        "error: no trial of 2 completed (2 failed); first error (trial 0): ValueError: planted failure in "
        f"trial 0; see {out / 'leaderboard.csv'}"
    ]
    assert "Traceback" not in captured.err  # Optuna's warnings keep one line; the tracebacks are in trials/
    assert "planted failure" in (out / "trials" / "0000" / "traceback.txt").read_text(encoding="utf-8")
    assert (out / "leaderboard.csv").is_file()
    assert f"results: {out}  (leaderboard.csv, trials/)" in captured.out
    assert not (out / "best").exists() and not (out / "pareto.png").exists()


def test_the_summary_names_the_files_a_search_wrote(tmp_path, capsys, monkeypatch):
    _cheap_search(monkeypatch, tmp_path, {0: "raise"})
    out = tmp_path / "out"
    assert main(["search", EDGES, "--trials", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"results: {out}  (leaderboard.csv, best/, pareto.png, trials/)" in printed
    assert all((out / name).exists() for name in ("leaderboard.csv", "best", "pareto.png", "trials"))


@pytest.mark.parametrize("under", [False, True])
def test_out_naming_a_file_exits_2_with_one_line(tmp_path, capsys, under):
    taken = tmp_path / "taken"
    taken.write_text("mine\n", encoding="utf-8")
    out = taken / "sub" if under else taken
    assert main(["search", EDGES, "--smoke-test", "--device", "cpu", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    what = f"lies under the file {str(taken)!r}" if under else "is a file"
    assert captured.err.strip() == f"error: --out {str(out)!r} {what}, not a folder; give a folder for the results"
    assert taken.read_text(encoding="utf-8") == "mine\n" and sorted(tmp_path.iterdir()) == [taken]
