"""Validate loaded YAML and turn it into a :class:`~graphspec.model.Spec`.

Every check raises :class:`SpecError` naming the file, line, column, node and the valid choices.
Graph-level checks (cycles, reachability) run afterwards in :mod:`graphspec.graph`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphspec import model
from graphspec.errors import SpecError, choices_text, did_you_mean
from graphspec.graph import check_graph
from graphspec.params import resolve_params
from graphspec.yaml_loader import LoadedYaml, YamlPath, load_yaml, loads_yaml

TOP_KEYS = {
    "name": False,
    "description": False,
    "params": False,
    "width": True,
    "inputs": True,
    "defaults": False,
    "cell": True,
}
INPUT_KEYS = {"backbone": True, "lateral": False, "derived": False}
DERIVED_KEYS = {"level": True, "from": True, "downsample": False, "act": False, "projection": False}
DEFAULT_KEYS = {
    "merge": False,
    "fusion": False,
    "upsample": False,
    "downsample": False,
    "projection": False,
    "op": False,
    "conv_bias": False,
    "bn_eps": False,
    "bn_momentum": False,
    "padding": False,
}
CELL_KEYS = {"repeats": False, "nodes": True, "outputs": True}
NODE_KEYS = {
    "id": True,
    "level": True,
    "inputs": True,
    "merge": False,
    "fusion": False,
    "residual": False,
    "op": False,
    "upsample": False,
    "downsample": False,
    "projection": False,
}
BUILTIN_DEFAULTS: dict[str, Any] = {
    "merge": "weighted_sum",
    "fusion": "fast_normalized",
    "upsample": "nearest",
    "downsample": "max_pool",
    "projection": "conv_bn",
    "op": ("swish", "separable_conv", "bn"),
    "conv_bias": False,
    "bn_eps": 1e-5,
    "bn_momentum": 0.1,
    "padding": "symmetric",
}
_LEVEL = re.compile(r"P(0|[1-9][0-9]*)")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_LEVEL = 12


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> model.Spec:
    """Load, resolve parameters, validate and return the spec in ``path``.

    ``overrides`` sets named parameters (what ``--set width=160`` does on the command line).
    """
    return _build(load_yaml(path), overrides or {})


def loads_spec(text: str, file: str = "<string>", overrides: Mapping[str, Any] | None = None) -> model.Spec:
    """Like :func:`load_spec` for YAML text; ``file`` is the name used in messages."""
    return _build(loads_yaml(text, file), overrides or {})


def _build(loaded: LoadedYaml, overrides: Mapping[str, Any]) -> model.Spec:
    if not isinstance(loaded.data, dict):
        raise SpecError(
            f"the top level must be a mapping with keys {', '.join(k for k, r in TOP_KEYS.items() if r)}, "
            f"got a {type(loaded.data).__name__}",
            loaded.where(()),
        )
    values = resolve_params(loaded, overrides)
    spec = _Parser(loaded, values).spec()
    check_graph(spec)
    return spec


class _Parser:
    def __init__(self, loaded: LoadedYaml, values: dict[str, Any]):
        self.loaded = loaded
        self.values = values
        self.node_id: str | None = None

    def fail(self, message: str, path: YamlPath) -> SpecError:
        return SpecError(message, self.loaded.where(path), self.node_id)

    # -- generic field readers -------------------------------------------------------------------
    def mapping(self, value: Any, path: YamlPath, keys: dict[str, bool], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} must be a mapping with keys {', '.join(keys)}", path)
        for key in value:
            if key not in keys:
                raise self.fail(
                    f"unknown key '{key}' in {what}{did_you_mean(key, keys)} {choices_text(keys)}", path + (key,)
                )
        for key, required in keys.items():
            if required and key not in value:
                raise self.fail(f"missing required key '{key}' in {what}", path)
        return value

    def choice(self, value: Any, path: YamlPath, choices: tuple[str, ...], what: str) -> str:
        if value not in choices:
            raise self.fail(f"unknown {what} '{value}'{did_you_mean(value, choices)} {choices_text(choices)}", path)
        return value

    def positive_int(self, value: Any, path: YamlPath, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{what} must be an integer, got {value!r}", path)
        if value <= 0:
            raise self.fail(f"{what} must be positive, got {value}", path)
        return value

    def level(self, value: Any, path: YamlPath) -> int:
        match = _LEVEL.fullmatch(value) if isinstance(value, str) else None
        if not match or not 0 <= int(match.group(1)) <= MAX_LEVEL:
            raise self.fail(f"a level is written P<n> with 0 <= n <= {MAX_LEVEL} (e.g. P3), got {value!r}", path)
        return int(match.group(1))

    def name_list(self, value: Any, path: YamlPath, what: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{what} must be a list of names, got {value!r}", path)
        return value

    # -- sections --------------------------------------------------------------------------------
    def spec(self) -> model.Spec:
        data = self.mapping(self.loaded.data, (), TOP_KEYS, "the spec")
        name = data.get("name", Path(self.loaded.file).stem)
        if not isinstance(name, str):
            raise self.fail("`name` must be a string", ("name",))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("`description` must be a string", ("description",))
        width = self.positive_int(data["width"], ("width",), "`width`")
        backbone, lateral, derived = self.inputs(data["inputs"])
        defaults = self.defaults(data.get("defaults", {}))
        cell = self.mapping(data["cell"], ("cell",), CELL_KEYS, "`cell`")
        repeats = self.positive_int(cell.get("repeats", 1), ("cell", "repeats"), "`cell.repeats`")
        levels = sorted(backbone + [d.level for d in derived])
        nodes = self.nodes(cell["nodes"], levels, defaults)
        outputs = self.outputs(cell["outputs"], levels, nodes)
        return model.Spec(
            name=name,
            description=description,
            file=self.loaded.file,
            width=width,
            repeats=repeats,
            backbone_levels=tuple(backbone),
            lateral=lateral,
            derived=tuple(derived),
            nodes=tuple(nodes),
            outputs=outputs,
            conv_bias=defaults["conv_bias"],
            padding=defaults["padding"],
            batch_norm=model.BatchNormStyle(defaults["bn_eps"], defaults["bn_momentum"]),
            params=dict(self.values),
        )

    def inputs(self, value: Any) -> tuple[list[int], str, list[model.DerivedLevel]]:
        section = self.mapping(value, ("inputs",), INPUT_KEYS, "`inputs`")
        names = self.name_list(section["backbone"], ("inputs", "backbone"), "`inputs.backbone`")
        if not names:
            raise self.fail("`inputs.backbone` needs at least one level, e.g. [P3, P4, P5]", ("inputs", "backbone"))
        backbone = [self.level(v, ("inputs", "backbone", i)) for i, v in enumerate(names)]
        if backbone != list(range(backbone[0], backbone[0] + len(backbone))):
            raise self.fail(
                "`inputs.backbone` must list consecutive levels, finest first, e.g. [P3, P4, P5]",
                ("inputs", "backbone"),
            )
        lateral = self.choice(section.get("lateral", "none"), ("inputs", "lateral"), model.LATERALS, "lateral")
        derived: list[model.DerivedLevel] = []
        items = section.get("derived", [])
        if not isinstance(items, list):
            raise self.fail("`inputs.derived` must be a list", ("inputs", "derived"))
        top = backbone[-1]
        for i, item in enumerate(items):
            path = ("inputs", "derived", i)
            entry = self.mapping(item, path, DERIVED_KEYS, "a derived level")
            level = self.level(entry["level"], path + ("level",))
            source = self.level(entry["from"], path + ("from",))
            if level != top + 1 or source != top:
                raise self.fail(
                    f"derived levels extend the pyramid one level at a time: expected level P{top + 1} "
                    f"from P{top}, got {model.level_name(level)} from {model.level_name(source)}",
                    path,
                )
            derived.append(
                model.DerivedLevel(
                    level=level,
                    source=source,
                    downsample=self.choice(
                        entry.get("downsample", "max_pool"), path + ("downsample",), model.DOWNSAMPLES, "downsample"
                    ),
                    act=self.choice(entry.get("act", "none"), path + ("act",), model.ACTIVATIONS, "activation"),
                    projection=self.choice(
                        entry.get("projection", "conv_bn"), path + ("projection",), model.PROJECTIONS, "projection"
                    ),
                    location=self.loaded.where(path),
                )
            )
            top = level
        return backbone, lateral, derived

    def defaults(self, value: Any) -> dict[str, Any]:
        section = self.mapping(value, ("defaults",), DEFAULT_KEYS, "`defaults`")
        result = dict(BUILTIN_DEFAULTS)
        for key, item in section.items():
            result[key] = self.node_field(key, item, ("defaults", key))
        return result

    def node_field(self, key: str, value: Any, path: YamlPath) -> Any:
        if key == "merge":
            return self.choice(value, path, model.MERGES, "merge")
        if key == "fusion":
            return self.choice(value, path, model.FUSIONS, "fusion method")
        if key == "upsample":
            return self.choice(value, path, model.UPSAMPLES, "upsample mode")
        if key == "downsample":
            return self.choice(value, path, model.DOWNSAMPLES, "downsample mode")
        if key == "projection":
            return self.choice(value, path, model.PROJECTIONS, "projection")
        if key == "padding":
            return self.choice(value, path, model.PADDINGS, "padding")
        if key == "conv_bias":
            if not isinstance(value, bool):
                raise self.fail(f"`conv_bias` must be true or false, got {value!r}", path)
            return value
        if key == "bn_eps":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise self.fail(f"`bn_eps` must be a positive number, got {value!r}", path)
            return float(value)
        if key == "bn_momentum":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise self.fail(f"`bn_momentum` must be a number in (0, 1], got {value!r}", path)
            return float(value)
        if key == "op":
            steps = self.name_list(value, path, "`op`")
            for i, step in enumerate(steps):
                self.choice(step, path + (i,), model.OP_STEPS, "op step")
            return tuple(steps)
        raise AssertionError(f"no reader for node field {key}")

    def nodes(self, value: Any, levels: list[int], defaults: dict[str, Any]) -> list[model.Node]:
        if not isinstance(value, list) or not value:
            raise self.fail("`cell.nodes` must be a non-empty list of nodes", ("cell", "nodes"))
        nodes: list[model.Node] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(value):
            path = ("cell", "nodes", i)
            self.node_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
            entry = self.mapping(item, path, NODE_KEYS, "a node")
            node_id = entry["id"]
            if not isinstance(node_id, str) or not _ID.fullmatch(node_id) or _LEVEL.fullmatch(node_id):
                raise self.fail(
                    f"node id {node_id!r} must be an identifier (letters, digits, _) and not a level name like P3",
                    path + ("id",),
                )
            if node_id in seen:
                raise self.fail(
                    f"duplicate node id '{node_id}' (first defined by node #{seen[node_id] + 1}); ids must be unique",
                    path + ("id",),
                )
            seen[node_id] = i
            level = self.level(entry["level"], path + ("level",))
            if level not in levels:
                raise self.fail(
                    f"level {model.level_name(level)} is outside the spec's levels P{levels[0]}-P{levels[-1]}",
                    path + ("level",),
                )
            inputs = self.name_list(entry["inputs"], path + ("inputs",), "`inputs`")
            if not inputs:
                raise self.fail("a node needs at least one input", path + ("inputs",))
            residual = self.name_list(entry.get("residual", []), path + ("residual",), "`residual`")
            fields = {
                key: self.node_field(key, entry[key], path + (key,)) if key in entry else defaults[key]
                for key in ("merge", "fusion", "upsample", "downsample", "projection", "op")
            }
            if fields["merge"] == "global_pool_attention" and len(inputs) != 2:
                raise self.fail(
                    f"merge 'global_pool_attention' takes exactly 2 inputs, got {len(inputs)}", path + ("inputs",)
                )
            nodes.append(
                model.Node(
                    id=node_id,
                    level=level,
                    inputs=tuple(inputs),
                    merge=fields["merge"],
                    fusion=fields["fusion"],
                    residual=tuple(residual),
                    op=fields["op"],
                    edges=model.EdgeStyle(fields["upsample"], fields["downsample"], fields["projection"]),
                    location=self.loaded.where(path),
                )
            )
        self.node_id = None
        self.references(nodes, levels)
        return nodes

    def references(self, nodes: list[model.Node], levels: list[int]) -> None:
        names = [model.level_name(level) for level in levels] + [node.id for node in nodes]
        for i, node in enumerate(nodes):
            self.node_id = node.id
            for field in ("inputs", "residual"):
                refs = getattr(node, field)
                for j, ref in enumerate(refs):
                    path = ("cell", "nodes", i, field, j)
                    if ref == node.id:
                        raise self.fail(f"the node lists itself in `{field}` (a self-loop)", path)
                    if ref not in names:
                        raise self.fail(f"unknown input '{ref}'{did_you_mean(ref, names)} {choices_text(names)}", path)
                    if ref in refs[:j] or (field == "residual" and ref in node.inputs):
                        raise self.fail(f"'{ref}' is listed twice; list each input once", path)
        self.node_id = None

    def outputs(self, value: Any, levels: list[int], nodes: list[model.Node]) -> dict[int, str]:
        path = ("cell", "outputs")
        if not isinstance(value, dict):
            raise self.fail("`cell.outputs` must map every level to a node id, e.g. {P3: p3_out, P4: p4_out}", path)
        by_id = {node.id: node for node in nodes}
        outputs: dict[int, str] = {}
        for key, node_id in value.items():
            level = self.level(key, path + (key,))
            if level not in levels:
                raise self.fail(
                    f"output level {key} is outside the spec's levels P{levels[0]}-P{levels[-1]}", path + (key,)
                )
            if level in outputs:
                raise self.fail(f"level {key} has two outputs ('{outputs[level]}' and {node_id!r})", path + (key,))
            if not isinstance(node_id, str):
                raise self.fail(f"output {key} must name one node id, got {node_id!r}", path + (key,))
            if node_id not in by_id:
                raise self.fail(
                    f"output {key}: unknown node '{node_id}'{did_you_mean(node_id, by_id)} {choices_text(by_id)}",
                    path + (key,),
                )
            if by_id[node_id].level != level:
                raise self.fail(
                    f"output {key} names node '{node_id}', which is at level {model.level_name(by_id[node_id].level)}",
                    path + (key,),
                )
            if node_id in outputs.values():
                raise self.fail(f"node '{node_id}' is the output of two levels", path + (key,))
            outputs[level] = node_id
        missing = [model.level_name(level) for level in levels if level not in outputs]
        if missing:
            raise self.fail(
                f"`cell.outputs` has no node for {', '.join(missing)}; every level "
                f"P{levels[0]}-P{levels[-1]} needs one so the cell can repeat",
                path,
            )
        return dict(sorted(outputs.items()))
