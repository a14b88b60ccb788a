"""Files the project reads back, damaged by something else (it writes each atomically): one line naming the file
and how to recover, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.data.transforms import TrainTransform
from effdet_graph.model.backbone import create_backbone
from effdet_graph.training.feature_cache import FeatureCache, open_feature_cache
from graphspec import InputError
from search.engines.trial_files import RECORD, read_record, trial_dir


def test_a_damaged_trial_record_is_one_line_naming_it(tmp_path):
    path = trial_dir(tmp_path, 3) / RECORD
    path.parent.mkdir(parents=True)
    path.write_text('{"number": 3, "state": "comp', encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}: not a trial record \(JSONDecodeError: .*\); delete it"):
        read_record(tmp_path, 3)
    path.write_text(json.dumps({"number": 3, "colour": "red"}), encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}: not a trial record \(TypeError: "):
        read_record(tmp_path, 3)


@pytest.mark.parametrize("damage", ["level0.npy", "targets.pt", "meta.json"])
def test_a_damaged_feature_cache_is_one_line_naming_its_folder(tmp_path, damage, one_torch_thread):
    data = tmp_path / "shapes"
    make_dataset(data, images=4, seed=0, image_size=64)
    dataset = CocoDetection.from_split(data / "train")
    backbone = create_backbone("mobilenetv3_small_050", [3, 4, 5]).eval()
    cpu = torch.device("cpu")
    built = open_feature_cache(dataset, backbone, "mobilenetv3_small_050", TrainTransform(64), 1, cpu, False)
    file = built.path / damage
    file.write_bytes(file.read_bytes()[: len(file.read_bytes()) // 3])
    with pytest.raises(InputError, match=rf"^{built.path}: a damaged feature cache \(.*\); delete the folder and"):
        FeatureCache.open(built.path)
    assert "\n" not in str(pytest.raises(InputError, FeatureCache.open, built.path).value)
    assert Path(built.path).is_dir()  # left for the user to look at
