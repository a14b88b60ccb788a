"""The detector commands end to end: make-dataset, train, eval, predict, convert, compare; every bad input exits
with code 2 and one line naming the file, and leaves nothing half-written."""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
import subprocess
import sys

import pytest
import torch
from PIL import Image
from tiny_training import train_flags

from effdet_graph.builtin import builtin_specs, specs_dir
from effdet_graph.cli import main
from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.inference.evaluate import METRICS
from effdet_graph.io.checkpoint import load_checkpoint
from effdet_graph.model.detector import build_detector

TINY = train_flags()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "shapes"
    assert main(["make-dataset", str(out), "--images", "10", "--image-size", "128", "--seed", "2"]) == 0
    return out


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--data", str(data), *TINY, "--steps", "2", "--out", str(out)]) == 0
    return out / "last.pt"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("error: ")
    return err


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith("."))


def test_make_dataset(tmp_path, capsys):
    out = tmp_path / "shapes"
    assert main(["make-dataset", str(out), "--images", "5", "--image-size", "64", "--seed", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out}: train 4 images") and "val 1 images" in line and "64x64" in line
    assert (out / "train" / "instances.json").is_file() and len(list((out / "val" / "images").iterdir())) == 1
    assert main(["make-dataset", str(out)]) == 2
    assert f"{out}: already exists" in _error_line(capsys)
    context = tmp_path / "context"
    argv = ["make-dataset", str(context), "--images", "4", "--image-size", "96", "--scene", "context"]
    assert main([*argv, "--val-fraction", "0.5"]) == 0
    line = capsys.readouterr().out.strip()
    assert "train 2 images" in line and "val 2 images" in line
    assert line.endswith("classes warm, cool")


def test_train_writes_checkpoint_and_log(checkpoint, capsys):
    assert checkpoint.is_file() and (checkpoint.parent / "log.csv").is_file()
    assert _leftovers(checkpoint.parent) == []


def test_train_tensorboard_log(data, tmp_path, capsys):
    assert (
        main(["train", "--data", str(data), *TINY, "--steps", "1", "--out", str(tmp_path), "--log", "tensorboard"]) == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert list((tmp_path / "tensorboard").iterdir()) and not (tmp_path / "log.csv").exists()


def test_eval_prints_all_metrics(data, checkpoint, capsys):
    assert main(["eval", "--data", str(data), "--checkpoint", str(checkpoint)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split() == list(METRICS) and len(lines[2].split()) == 6
    ap = lines[2].split()[0]
    assert re.fullmatch(rf"AP {ap} \[\d\.\d{{3}}, \d\.\d{{3}}\]: 95% bootstrap interval \(200 resamples.*", lines[3])
    assert main(["eval", "--data", str(data), "--checkpoint", str(checkpoint), "--json", "--nms", "soft"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(METRICS) <= set(result) and result["nms"] == "soft"
    assert all(-1.0 <= result[m] <= 1.0 for m in METRICS)
    low, high = result["AP_ci"]
    assert low <= result["AP"] <= high and result["bootstrap"] == 200 and result["ci_level"] == 0.95
    argv = ["eval", "--data", str(data), "--checkpoint", str(checkpoint), "--bootstrap", "0"]
    assert main([*argv, "--json"]) == 0
    assert "AP_ci" not in json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main([*argv, "--class-agnostic"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    agnostic = float(re.fullmatch(r"AP (\d\.\d{3}) with the classes ignored \(class-agnostic\)", lines[3]).group(1))
    assert agnostic >= float(lines[2].split()[0]) - 0.001, "ignoring the classes can only add matches"
    assert main([*argv, "--class-agnostic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["AP_agnostic"] == pytest.approx(agnostic, abs=5e-4)


def test_predict_draws_images(data, checkpoint, tmp_path, capsys):
    images = sorted((data / "val" / "images").iterdir())
    jpeg = tmp_path / "photo.jpg"
    Image.open(images[0]).convert("RGB").save(jpeg)
    out = tmp_path / "drawn"
    assert (
        main(
            [
                "predict",
                *map(str, images),
                str(jpeg),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(out),
                "--score-threshold",
                "0.0",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"wrote {out}/") for line in lines)
    for path in [*images, jpeg]:
        with Image.open(out / path.name) as drawn, Image.open(path) as original:
            assert drawn.size == original.size and drawn.format == ("JPEG" if path == jpeg else "PNG")
    assert _leftovers(out) == []


def test_bad_inputs_exit_2_with_one_line(data, checkpoint, tmp_path, capsys):
    nowhere = tmp_path / "nowhere"
    assert main(["train", "--data", str(nowhere), *TINY, "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    assert f"{nowhere}: data set folder does not exist" in _error_line(capsys)
    assert main(["eval", "--data", str(nowhere), "--checkpoint", str(checkpoint)]) == 2
    assert str(nowhere) in _error_line(capsys)

    missing = tmp_path / "missing.png"
    out = tmp_path / "drawn"
    image = next((data / "val" / "images").iterdir())
    assert main(["predict", str(image), str(missing), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert f"{missing}: image file not found" in _error_line(capsys)
    assert not out.exists()  # checked before anything is written
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    assert main(["predict", str(garbage), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert f"{garbage}: not a readable image" in _error_line(capsys)

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(checkpoint.read_bytes()[:1000])
    for command in (["eval", "--data", str(data)], ["predict", str(image), "--out", str(out)]):
        assert main([*command, "--checkpoint", str(corrupt)]) == 2
        assert f"{corrupt}: not a readable PyTorch checkpoint" in _error_line(capsys)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    assert main(["eval", "--data", str(data), "--checkpoint", str(foreign)]) == 2
    assert f"{foreign}: not an effdet-graph checkpoint" in _error_line(capsys)

    other = tmp_path / "other"
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                *TINY,
                "--phi",
                "1",
                "--steps",
                "1",
                "--out",
                str(other),
                "--resume",
                str(checkpoint),
            ]
        )
        == 2
    )
    line = _error_line(capsys)
    assert str(checkpoint) in line and "phi: checkpoint 0, this run 1" in line
    assert not other.exists()

    lost = tmp_path / "lost"
    shutil.copytree(data, lost)
    gone = sorted((lost / "train" / "images").iterdir())[3]
    gone.unlink()
    assert main(["train", "--data", str(lost), *TINY, "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    line = _error_line(capsys)
    assert f"{lost}/train/instances.json" in line and gone.name in line
    assert not (tmp_path / "r").exists()


def test_input_error_through_the_console_script(data, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_text("nonsense")
    run = subprocess.run(
        [sys.executable, "-m", "effdet_graph.cli", "eval", "--data", str(data), "--checkpoint", str(corrupt)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [run.stderr.strip()] and str(corrupt) in run.stderr


def test_convert_effdet_checkpoint_then_eval(data, tmp_path, capsys):
    effdet = pytest.importorskip("effdet")
    reference = effdet.create_model("tf_efficientdet_d0", pretrained=False, pretrained_backbone=False)
    torch.save(reference.state_dict(), tmp_path / "d0.pth")
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"categories": [{"id": 1, "name": "person"}]}))
    converted = tmp_path / "d0.pt"
    assert (
        main(
            [
                "convert",
                str(tmp_path / "d0.pth"),
                "--phi",
                "0",
                "--image-size",
                "128",
                "--categories",
                str(names),
                "--out",
                str(converted),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith(f"wrote {converted}: EfficientDet-D0")
    from effdet_graph.io.checkpoint import load_checkpoint

    model, recipe = load_checkpoint(converted)
    assert recipe.num_classes == 90 and recipe.class_names[:2] == ["person", "2"]
    ours = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in ours.items())
    assert main(["eval", "--data", str(data), "--checkpoint", str(converted), "--json"]) == 0
    assert set(METRICS) <= set(json.loads(capsys.readouterr().out))

    wrong = tmp_path / "wrong.pt"
    assert main(["convert", str(tmp_path / "d0.pth"), "--phi", "1", "--out", str(wrong)]) == 2
    assert f"{tmp_path / 'd0.pth'} does not fit d1" in _error_line(capsys)
    assert not wrong.exists()


COMPARE_TINY = ["--backbone", "mobilenetv3_small_100", "--input-size", "128", "--device", "cpu", "--json"]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def compare_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "shapes"
    make_dataset(out, images=16, seed=0, image_size=64)
    return out


def test_compare_trains_and_reports_the_same_detector(compare_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    classes = CocoDetection.from_split(compare_data / "train").num_classes
    assert classes != 90
    argv = ["compare", "fpn", "bifpn", *COMPARE_TINY, "--train-steps", "2", "--data", str(compare_data)]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["spec"] for row in rows] == ["fpn", "bifpn"]
    for row in rows:
        assert row["num_classes"] == classes
        built = build_detector(row["file"], 0, backbone="mobilenetv3_small_100", num_classes=classes)
        assert row["params"] == _params(built)
        (checkpoint,) = (tmp_path / "runs" / "compare" / "runs").glob(f"{row['spec']}_d0_2steps_seed0_*/last.pt")
        trained, recipe = load_checkpoint(checkpoint)
        assert _params(trained) == row["params"] and recipe.num_classes == classes
        assert set(row["metrics"]) == set(METRICS) and row["seed_metrics"] == [row["metrics"]]
        assert row["AP_spread"]["seeds"] == 1 and row["AP_spread"]["std"] is None and row["within_noise_of"] == []

    assert main(argv) == 0  # the finished runs are resumed, not refused or trained again
    assert [row["params"] for row in json.loads(capsys.readouterr().out)] == [row["params"] for row in rows]

    assert main([*argv, "--num-classes", "90"]) == 2
    line = _error_line(capsys)
    assert f"{compare_data}/train/instances.json has {classes} classes" in line and "--num-classes 90" in line
    assert main([*argv, "--num-classes", str(classes)]) == 0
    capsys.readouterr()


def test_compare_without_training_builds_90_classes_or_num_classes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for extra, classes in (([], 90), (["--num-classes", "3"], 3)):
        assert main(["compare", "fpn", *COMPARE_TINY, *extra]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert row["num_classes"] == classes and row["metrics"] == {}
        assert row["params"] == _params(build_detector(row["file"], 0, "mobilenetv3_small_100", classes))
    assert main(["compare", "fpn", *COMPARE_TINY, "--data", str(tmp_path)]) == 2
    assert "give --train-steps" in _error_line(capsys)
    assert main(["compare", "fpn", *COMPARE_TINY, "--train-steps", "0"]) == 2
    assert "--train-steps must be at least 1" in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []  # nothing made for a refused command


@pytest.mark.parametrize("command", ["compare", "build", "train"])
def test_a_misspelled_builtin_spec_name_is_refused_with_the_closest(command, data, tmp_path, capsys):
    argv = {
        "compare": ["compare", "fpn", "bifpm"],
        "build": ["build", "bifpm"],
        "train": ["train", "--data", str(data), *TINY, "--spec", "bifpm", "--steps", "1", "--out", str(tmp_path / "r")],
    }[command]
    assert main(argv) == 2
    names = ", ".join(spec.stem for spec in builtin_specs())
    expected = f"error: bifpm: neither a spec file nor a built-in spec; did you mean 'bifpn'? (built-in: {names})"
    assert _error_line(capsys) == expected
    assert list(tmp_path.iterdir()) == []


def test_compare_refuses_a_broken_spec_before_making_data_or_training(tmp_path, monkeypatch, capsys):
    """Without --data, --train-steps makes a data set; a misspelled key in the second spec stops the command
    first, with nothing trained or made."""
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "typo_fpn.yaml"
    typo.write_text((specs_dir() / "fpn.yaml").read_text().replace("\nwidth:", "\nwidht:"))
    assert main(["compare", "fpn", str(typo), "--train-steps", "5", "--seeds", "2"]) == 2
    assert "unknown key 'widht' in the spec; did you mean 'width'?" in _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typo_fpn.yaml"]


def test_compare_seeds_reports_mean_spread_and_noise(compare_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["compare", "fpn", "bifpn", *COMPARE_TINY, "--train-steps", "2", "--data", str(compare_data), "--seeds", "2"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    runs = tmp_path / "runs" / "compare" / "runs"
    for row in rows:
        assert len(row["seed_metrics"]) == 2 and all(set(m) == set(METRICS) for m in row["seed_metrics"])
        aps = [m["AP"] for m in row["seed_metrics"]]
        assert row["metrics"]["AP"] == pytest.approx(statistics.fmean(aps))
        spread = row["AP_spread"]
        assert spread["seeds"] == 2 and spread["low"] == min(aps) and spread["high"] == max(aps)
        assert spread["std"] == pytest.approx(statistics.stdev(aps))
        for seed in (0, 1):
            assert len(list(runs.glob(f"{row['spec']}_d0_2steps_seed{seed}_*/last.pt"))) == 1
    fpn, bifpn = (row["AP_spread"] for row in rows)
    close = abs(fpn["mean"] - bifpn["mean"]) <= 2 * math.hypot(fpn["std"], bifpn["std"]) / math.sqrt(2)
    assert rows[0]["within_noise_of"] == (["bifpn"] if close else [])
    assert rows[1]["within_noise_of"] == (["fpn"] if close else [])

    table = [arg for arg in argv if arg != "--json"]
    assert main(table) == 0  # the runs are resumed: same numbers, now as a table
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(" AP sd  AP min-max  within noise of")
    for line, row in zip(lines[2:4], rows):
        spread = row["AP_spread"]
        assert line.startswith(row["spec"]) and f"{spread['low']:.3f}-{spread['high']:.3f}" in line
        assert line.endswith(", ".join(row["within_noise_of"]) or "-")
    assert "mean over training seeds 0-1" in lines[-1] and "2 * sqrt(sd_a^2/n_a + sd_b^2/n_b)" in lines[-1]

    assert main(["compare", "fpn", *COMPARE_TINY, "--seeds", "2"]) == 2
    assert "give --train-steps" in _error_line(capsys)
    assert main([*argv[:-1], "0"]) == 2
    assert "--seeds must be at least 1" in _error_line(capsys)
