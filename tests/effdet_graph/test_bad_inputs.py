"""Every bad input stopped at the door: broken data sets, checkpoints and command options exit with code 2
and one line naming the file (no traceback), before anything is written."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import torch
from PIL import Image
from tiny_training import train_flags
from torch.utils.data import DataLoader

from effdet_graph.cli import main
from effdet_graph.data.checks import check_split
from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.loading import reraise_worker_errors
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.data.transforms import collate_detection
from effdet_graph.errors import CheckpointError, DatasetError
from effdet_graph.io.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.training.step_log import open_step_log

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = [*train_flags(batch_size=2), "--steps", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """6 train and 2 val images of 64 x 64."""
    out = tmp_path_factory.mktemp("bad") / "shapes"
    make_dataset(out, images=8, image_size=64, seed=0)
    return out


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    """An untrained checkpoint of the tiny detector (a recipe and random weights: enough to load)."""
    dataset = CocoDetection.from_split(data / "train")
    recipe = ModelRecipe.create(
        "specs/bifpn.yaml",
        0,
        128,
        dataset.label_to_category,
        dataset.class_names,
        "mobilenetv3_small_050",
        {"width": 16, "repeats": 1},
    )
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, recipe, recipe.build().state_dict())
    return path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("error: ")
    return err


def _copy(data, tmp_path, name="copy"):
    copy = tmp_path / name
    shutil.copytree(data, copy)
    return copy


def _images(split):
    return sorted((split / "images").iterdir())


def _edit_json(split, change):
    path = split / "instances.json"
    annotations = json.loads(path.read_text())
    change(annotations)
    path.write_text(json.dumps(annotations))


# --- data sets: checked whole before training writes anything ---------------------------------------------


def _truncated(split, index=2):
    image = _images(split)[index]
    image.write_bytes(image.read_bytes()[:300])
    return image, "not a readable image (image file is truncated)"


def _not_an_image(split):
    image = _images(split)[1]
    image.write_text("hello")
    return image, "not a readable image"


def _other_size(split):
    image = _images(split)[3]
    Image.new("RGB", (50, 64)).save(image)
    return image, "is 50x64 but"


def _escaping(split):
    _edit_json(split, lambda a: a["images"][0].update(file_name="../../etc/passwd"))
    return split / "instances.json", "'../../etc/passwd': the file name leads out of the image folder"


def _directory(split):
    image = _images(split)[0]
    image.unlink()
    image.mkdir()
    return image, "is a directory"


@pytest.mark.parametrize("breakage", [_truncated, _not_an_image, _other_size, _escaping, _directory])
def test_broken_training_set_is_refused_before_out_is_made(data, tmp_path, capsys, breakage):
    broken = _copy(data, tmp_path)
    file, expected = breakage(broken / "train")
    out = tmp_path / "run"
    assert main(["train", "--data", str(broken), *TINY, "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: {file}: ") and expected in line
    assert not out.exists()


def test_check_split_reports_the_first_bad_image_in_order(data, tmp_path):
    broken = _copy(data, tmp_path)
    images = _images(broken / "train")
    images[4].write_text("not an image")
    images[1].write_bytes(images[1].read_bytes()[:300])
    with pytest.raises(DatasetError, match=rf"{images[1].name}: not a readable image"):
        check_split(broken, "train")
    assert len(check_split(data, "train")) == 6


def test_skipped_check_fails_in_the_loader_and_leaves_no_log(data, tmp_path, capsys):
    broken = _copy(data, tmp_path)
    image, _ = _truncated(broken / "train")
    out = tmp_path / "run"
    argv = ["train", "--data", str(broken), *TINY, "--steps", "3", "--out", str(out), "--skip-data-check"]
    argv += ["--log-every", "10"]  # no row is due before the loader reaches the bad image
    assert main(argv) == 2
    assert f"{image}: not a readable image" in _error_line(capsys)
    assert not (out / "log.csv").exists() and not (out / "last.pt").exists()


def test_step_log_is_created_with_its_first_row(tmp_path):
    log = open_step_log("csv", tmp_path / "run", 0)
    log.close()
    assert not (tmp_path / "run").exists()
    log = open_step_log("csv", tmp_path / "run", 0)
    log.write({"step": 1, "epoch": 0, "lr": 0.1, "loss": 1.0, "class_loss": 0.5, "box_loss": 0.5, "images_per_s": 2})
    log.close()
    assert (tmp_path / "run" / "log.csv").read_text().splitlines()[1].startswith("1,0,0.1,")


def test_worker_errors_arrive_as_one_line(data, checkpoint, tmp_path, capsys):
    broken = _copy(data, tmp_path)
    image, _ = _truncated(broken / "val", 0)
    dataset = CocoDetection.from_split(broken / "val")
    loader = DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=collate_detection)
    with pytest.raises(DatasetError) as info:
        list(reraise_worker_errors(loader))
    assert str(info.value) == f"{image}: not a readable image (image file is truncated)"
    assert main(["eval", "--data", str(broken), "--checkpoint", str(checkpoint), "--workers", "1"]) == 2
    assert _error_line(capsys) == f"error: {image}: not a readable image (image file is truncated)"


# --- checkpoints: validated as data ------------------------------------------------------------------------


def _mutated(checkpoint, tmp_path, change, name="bad.pt"):
    stored = torch.load(checkpoint, weights_only=True)
    change(stored)
    path = tmp_path / name
    torch.save(stored, path)
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.update(detector="d0"), "entry 'detector' must be a mapping, found str 'd0'"),
        (lambda c: c["detector"].pop("head"), "entry 'detector.head' is missing"),
        (lambda c: c["detector"]["head"].update(depth="3"), "entry 'detector.head.depth' must be an integer"),
        (lambda c: c.update(class_names=[]), "entry 'class_names' must be a non-empty list of strings"),
        (lambda c: c.update(label_to_category=[1, 2]), "entry 'label_to_category' has 2 category ids for 5 class"),
        (lambda c: c.update(phi=99), "entry 'phi' must be an integer in 0..8, found int 99"),
        (lambda c: c.update(image_size=0), "entry 'image_size' must be a positive integer"),
        (lambda c: c.update(spec_text=7), "entry 'spec_text' must be a non-empty string"),
        (lambda c: c.update(spec_params=[1]), "entry 'spec_params' must be a mapping"),
        (lambda c: c["model"].update(extra=[1.0]), "entry 'model['extra']' must be a tensor"),
        (lambda c: c.update(ema="weights"), "entry 'ema' must be a state_dict"),
        (lambda c: c.update(step=-1), "entry 'step' must be a non-negative integer"),
        (lambda c: c.pop("detector"), "checkpoint lacks the entries detector"),
    ],
)
def test_checkpoint_entries_are_checked(checkpoint, tmp_path, change, expected):
    path = _mutated(checkpoint, tmp_path, change)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value), str(info.value)


def test_predict_refuses_a_checkpoint_without_class_names(data, checkpoint, tmp_path, capsys):
    path = _mutated(checkpoint, tmp_path, lambda c: c.update(class_names=[]))
    image = _images(data / "val")[0]
    out = tmp_path / "drawn"
    assert main(["predict", str(image), "--checkpoint", str(path), "--out", str(out)]) == 2
    assert f"{path}: entry 'class_names' must be a non-empty list" in _error_line(capsys)
    assert not out.exists()


def test_stored_spec_errors_are_located_in_the_checkpoint(checkpoint, tmp_path):
    def tagged(stored):
        lines = stored["spec_text"].splitlines()
        lines.insert(3, "evil: !!python/object/apply:os.system ['true']")
        stored["spec_text"] = "\n".join(lines)

    path = _mutated(checkpoint, tmp_path, tagged)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: stored spec (copy of specs/bifpn.yaml): line 4:"), message
    assert "\n" not in message


class _Exploit:
    def __reduce__(self):
        return (os.system, ("true",))


def test_foreign_files_are_named_for_what_they_are(data, tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Exploit()}, evil)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"model": 1}))
    as_json = tmp_path / "ckpt.json"
    as_json.write_text('{"format": "effdet-graph/1"}')
    text = tmp_path / "notes.pt"
    text.write_text("some notes\n")
    cases = [
        (evil, "refused to load: unsupported global posix.system"),
        (raw, "not a PyTorch checkpoint (torch.save writes a zip archive); it looks like a raw pickle"),
        (as_json, "not a PyTorch checkpoint (torch.save writes a zip archive); it looks like JSON"),
        (text, "not a PyTorch checkpoint (torch.save writes a zip archive); it looks like text"),
        (tmp_path, "is a directory, not a checkpoint file"),
    ]
    for path, expected in cases:
        assert main(["eval", "--data", str(data), "--checkpoint", str(path)]) == 2
        line = _error_line(capsys)
        assert line.startswith(f"error: {path}: ") and expected in line, line
        assert "weights_only" not in line and "Unsupported operand" not in line


def test_convert_recognises_our_own_checkpoint_anywhere(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default --spec is the built-in bifpn, not a path in a checkout
    out = tmp_path / "converted.pt"
    assert main(["convert", str(checkpoint), "--phi", "0", "--out", str(out)]) == 2
    assert f"{checkpoint}: already an effdet-graph checkpoint; nothing to convert" in _error_line(capsys)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.zeros(2)}, foreign)
    assert main(["convert", str(foreign), "--phi", "0", "--out", str(out)]) == 2
    assert f"{foreign}: not effdet EfficientDet weights" in _error_line(capsys)
    assert not out.exists()


# --- command options ---------------------------------------------------------------------------------------


def test_out_naming_a_file_is_refused(data, checkpoint, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    assert main(["train", "--data", str(data), *TINY, "--out", str(taken)]) == 2
    assert f"{taken}: --out names an existing file" in _error_line(capsys)
    assert main(["train", "--data", str(data), *TINY, "--out", str(taken / "run")]) == 2
    assert f"{taken / 'run'}: --out cannot be made: {taken} is a file" in _error_line(capsys)
    image = _images(data / "val")[0]
    assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(taken)]) == 2
    assert f"{taken}: --out names an existing file" in _error_line(capsys)
    assert taken.read_text() == "keep me"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--workers", "-1"], "--workers must be >= 0, got -1"),
    ],
)
def test_eval_options_are_checked(data, checkpoint, capsys, flags, expected):
    assert main(["eval", "--data", str(data), "--checkpoint", str(checkpoint), *flags]) == 2
    assert _error_line(capsys) == f"error: {expected}"


def test_eval_on_a_split_without_annotations_says_why(data, checkpoint, tmp_path, capsys):
    bare = _copy(data, tmp_path)
    _edit_json(bare / "val", lambda a: a.update(annotations=[]))
    assert main(["eval", "--data", str(bare), "--checkpoint", str(checkpoint)]) == 2
    line = _error_line(capsys)
    assert f"{bare}/val/instances.json: the val split has no annotated objects, so AP is undefined" in line
    assert capsys.readouterr().out == ""


def test_directories_given_as_files(data, checkpoint, tmp_path, capsys):
    out = tmp_path / "drawn"
    assert main(["predict", str(tmp_path), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert f"{tmp_path}: is a directory, not an image file" in _error_line(capsys)
    assert main(["eval", "--data", str(data), "--checkpoint", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a directory, not a checkpoint file" in _error_line(capsys)
    assert not out.exists()
