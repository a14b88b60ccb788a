"""``search/cluster.yaml`` passes Ray's own cluster-config validation (the installed Ray's
``prepare_config`` + ``validate_config``, i.e. ``ray/autoscaler/ray-schema.json``), and a misspelled key fails it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

util = pytest.importorskip("ray.autoscaler._private.util")
jsonschema = pytest.importorskip("jsonschema")

CLUSTER = Path(__file__).resolve().parents[2] / "search" / "cluster.yaml"
SCHEMA = Path(util.__file__).resolve().parents[1] / "ray-schema.json"


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """What ``ray up`` checks before it talks to a cloud: defaults merged, then the schema and its rules.
    Ray's schema lets a provider have any key; we also require the provider keys it documents."""
    prepared = util.prepare_config(copy.deepcopy(config))
    util.validate_config(prepared)
    known = set(json.loads(SCHEMA.read_text())["properties"]["provider"]["properties"])
    unknown = set(config["provider"]) - known
    if unknown:
        raise ValueError(f"unknown provider keys {sorted(unknown)}")
    return prepared


@pytest.fixture
def config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER.read_text(encoding="utf-8"))


def test_cluster_yaml_is_a_valid_ray_cluster_config(config):
    prepared = validate(config)
    nodes = prepared["available_node_types"]
    assert nodes[prepared["head_node_type"]]["resources"] == {"CPU": 0}
    assert nodes["gpu_worker"]["resources"]["GPU"] == 1 and nodes["gpu_worker"]["max_workers"] <= config["max_workers"]
    assert prepared["provider"]["type"] == "aws" and prepared["provider"]["cache_stopped_nodes"] is True
    assert prepared["file_mounts"] == {"/home/ubuntu/effdet-graph": "."}
    assert any("constraints.txt" in cmd and "effdet-graph[search]" in cmd for cmd in prepared["setup_commands"])
    assert any("ray start --head" in cmd for cmd in prepared["head_start_ray_commands"])
    assert any("$RAY_HEAD_IP" in cmd for cmd in prepared["worker_start_ray_commands"])


def rename(config: dict[str, Any], path: tuple[str, ...], new_key: str) -> dict[str, Any]:
    mutated = copy.deepcopy(config)
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    parent[new_key] = parent.pop(path[-1])
    return mutated


@pytest.mark.parametrize(
    "path, misspelled",
    [
        (("idle_timeout_minutes",), "idle_timeout_minute"),
        (("head_start_ray_commands",), "head_start_ray_command"),
        (("available_node_types", "gpu_worker", "min_workers"), "min_worker"),
        (("available_node_types", "head", "resources"), "resource"),
        (("auth", "ssh_user"), "ssh_usr"),
        (("provider", "cache_stopped_nodes"), "cache_stoped_nodes"),
    ],
)
def test_a_misspelled_key_fails_validation(config, path, misspelled):
    validate(config)
    with pytest.raises((jsonschema.ValidationError, ValueError)) as info:
        validate(rename(config, path, misspelled))
    assert misspelled in str(info.value) or repr(path[-1]) in str(info.value)


def test_a_head_type_that_is_not_a_node_type_fails_validation(config):
    config["head_node_type"] = "head_node"
    with pytest.raises(ValueError, match="`head_node_type` must be one of `available_node_types`"):
        validate(config)
