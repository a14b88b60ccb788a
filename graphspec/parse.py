"""Validate loaded YAML and turn it into a :class:`~graphspec.model.Spec`.

The sections are read through the shared :class:`~graphspec.reader.Reader`; every check raises
:class:`SpecError` naming the file, line, column, node and the valid choices.
Graph-level checks (cycles, reachability) run afterwards in :mod:`graphspec.graph`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphspec import model
from graphspec.errors import SpecError, choices_text, did_you_mean, quote
from graphspec.graph import check_graph
from graphspec.limits import MAX_NODES, MAX_REPEATS, MAX_WIDTH, Limits, check_limits
from graphspec.params import resolve_params
from graphspec.reader import REQUIRED, Keys, Reader, key_name, key_text
from graphspec.yaml_loader import LoadedYaml, YamlPath, load_yaml, loads_yaml

TOP_KEYS: Keys = {
    "name": False,
    "description": False,
    "params": False,
    "width": True,
    "inputs": True,
    "defaults": False,
    "cell": True,
}
INPUT_KEYS: Keys = {"backbone": True, "lateral": False, "derived": False}
DERIVED_KEYS: Keys = {"level": True, "from": True, "downsample": False, "act": False, "projection": False}
DEFAULT_KEYS: Keys = {
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
CELL_KEYS: Keys = {"repeats": False, "nodes": True, "outputs": True}
NODE_KEYS: Keys = {
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
_FIELD_CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "merge": (model.MERGES, "merge"),
    "fusion": (model.FUSIONS, "fusion method"),
    "upsample": (model.UPSAMPLES, "upsample mode"),
    "downsample": (model.DOWNSAMPLES, "downsample mode"),
    "projection": (model.PROJECTIONS, "projection"),
    "padding": (model.PADDINGS, "padding"),
}
_LEVEL = re.compile(r"P(0|[1-9][0-9]*)")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_LEVEL = 12
_HOLDS = "a spec: a mapping with at least `width`, `inputs` and `cell`"


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None, limits: Limits | None = None) -> model.Spec:
    """Load, resolve parameters, validate and return the spec in ``path``.

    Args:
        path: The spec file.
        overrides: Named parameter values (what ``--set width=160`` does on the command line).
        limits: The resource limits it must fit (default :meth:`Limits.from_env`: 200 M parameters and
            16 GiB of activations at a 512 x 512 input, unless the environment changes them).

    Returns:
        The validated spec.

    Raises:
        SpecError: Any problem, located in the file.
    """
    return build_spec(load_spec_document(path), overrides, limits)


def loads_spec(
    text: str, file: str = "<string>", overrides: Mapping[str, Any] | None = None, limits: Limits | None = None
) -> model.Spec:
    """Like :func:`load_spec` for YAML text; ``file`` is the name used in messages.

    Raises:
        SpecError: Any problem, located in the text.
    """
    return build_spec(loads_spec_document(text, file), overrides, limits)


def load_spec_document(path: str | Path) -> LoadedYaml:
    """The YAML of the spec in ``path``, checked to be a mapping, parameters not yet resolved: read a spec
    once, look at its declared ``params`` (:func:`graphspec.params.declared_params`), then build it with
    :func:`build_spec`.

    Raises:
        SpecError: The file is missing, not safe YAML or not a mapping.
    """
    return _top_level(load_yaml(path, SpecError, _HOLDS))


def loads_spec_document(text: str, file: str = "<string>") -> LoadedYaml:
    """Like :func:`load_spec_document` for YAML text.

    Raises:
        SpecError: The text is not safe YAML or not a mapping.
    """
    return _top_level(loads_yaml(text, file, SpecError, _HOLDS))


def build_spec(
    loaded: LoadedYaml, overrides: Mapping[str, Any] | None = None, limits: Limits | None = None
) -> model.Spec:
    """Resolve the parameters of a loaded spec document (in place: ``loaded`` is consumed), validate it
    and return the spec.

    The top-level keys are checked first (a misspelt ``param:`` is an unknown key, not a missing
    parameter), then the parameters are substituted, the sections read, the graph checked, and last the
    size of the network checked against ``limits`` with the cost model, before anything is built.

    Args:
        loaded: A document from :func:`load_spec_document` or :func:`loads_spec_document`.
        overrides: Named parameter values.
        limits: The resource limits (default :meth:`Limits.from_env`).

    Returns:
        The validated spec.

    Raises:
        SpecError: Any problem, located in the file.
    """
    Reader(loaded, SpecError).mapping((), TOP_KEYS, "the spec")
    values = resolve_params(loaded, overrides or {})
    spec = _Parser(loaded, values).spec()
    check_graph(spec)
    check_limits(spec, limits or Limits.from_env(), loaded.where(("width",)))
    return spec


def _top_level(loaded: LoadedYaml) -> LoadedYaml:
    if not isinstance(loaded.data, dict):
        raise SpecError(
            f"the top level must be a mapping with keys {', '.join(k for k, r in TOP_KEYS.items() if r)}, "
            f"got a {type(loaded.data).__name__}",
            loaded.where(()),
        )
    return loaded


class _Parser(Reader):
    """The spec's sections, read through the shared :class:`Reader`; messages name the node being read."""

    def __init__(self, loaded: LoadedYaml, values: dict[str, Any]):
        super().__init__(loaded, SpecError)
        self.values = values
        self.node_id: str | None = None

    def fail(self, message: str, path: YamlPath) -> SpecError:
        return SpecError(message, self.loaded.where(path), self.node_id, key_name(path) or None)

    # -- spec-only readers -----------------------------------------------------------------------
    def bounded_int(self, path: YamlPath, high: int, default: Any = REQUIRED) -> int:
        """A positive integer of at most ``high``, a limit of the language (see :mod:`graphspec.limits`)."""
        value = self.integer(path, low=0, low_open=True, default=default)
        if value > high:
            raise self.fail(
                f"{key_text(path)} must be at most {high} (a limit of the spec language), got {value}", path
            )
        return value

    def level(self, path: YamlPath, value: Any = REQUIRED) -> int:
        """The level ``P<n>`` at ``path`` (or ``value``, read at ``path``, e.g. a mapping key) as ``n``."""
        hint = self.bool_hint(path) if value is REQUIRED else self.loaded.bool_hint(path, key=True)
        value = self.get(path) if value is REQUIRED else value
        match = _LEVEL.fullmatch(value) if isinstance(value, str) else None
        if not match or not 0 <= int(match.group(1)) <= MAX_LEVEL:
            raise self.fail(
                f"a level is written P<n> with 0 <= n <= {MAX_LEVEL} (e.g. P3), got {quote(value)}{hint}", path
            )
        return int(match.group(1))

    def name_list(self, path: YamlPath, what: str, default: Any = REQUIRED) -> list[str]:
        value = self.get(path, default)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, bool) and self.bool_hint(path + (i,)):
                    raise self.fail(
                        f"{what} must be a list of names, got {item}{self.bool_hint(path + (i,))}", path + (i,)
                    )
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{what} must be a list of names, got {quote(value)}", path)
        return value

    # -- sections --------------------------------------------------------------------------------
    def spec(self) -> model.Spec:
        self.mapping((), TOP_KEYS, "the spec")
        name = self.string(("name",), Path(self.loaded.file).stem, what="`name`")
        description = self.get(("description",), "")
        if not isinstance(description, str):
            raise self.fail("`description` must be a string", ("description",))
        width = self.bounded_int(("width",), MAX_WIDTH)
        backbone, lateral, derived = self.inputs()
        defaults = self.defaults()
        self.mapping(("cell",), CELL_KEYS, "`cell`")
        repeats = self.bounded_int(("cell", "repeats"), MAX_REPEATS, default=1)
        levels = sorted(backbone + [d.level for d in derived])
        nodes = self.nodes(levels, defaults)
        outputs = self.outputs(levels, nodes)
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

    def inputs(self) -> tuple[list[int], str, list[model.DerivedLevel]]:
        self.mapping(("inputs",), INPUT_KEYS, "`inputs`")
        names = self.name_list(("inputs", "backbone"), "`inputs.backbone`")
        if not names:
            raise self.fail("`inputs.backbone` needs at least one level, e.g. [P3, P4, P5]", ("inputs", "backbone"))
        backbone = [self.level(("inputs", "backbone", i)) for i in range(len(names))]
        if backbone != list(range(backbone[0], backbone[0] + len(backbone))):
            raise self.fail(
                "`inputs.backbone` must list consecutive levels, finest first, e.g. [P3, P4, P5]",
                ("inputs", "backbone"),
            )
        lateral = self.choice(("inputs", "lateral"), model.LATERALS, "none", what="lateral")
        derived: list[model.DerivedLevel] = []
        items = self.get(("inputs", "derived"), [])
        if not isinstance(items, list):
            raise self.fail("`inputs.derived` must be a list", ("inputs", "derived"))
        top = backbone[-1]
        for i in range(len(items)):
            path = ("inputs", "derived", i)
            self.mapping(path, DERIVED_KEYS, "a derived level")
            level = self.level(path + ("level",))
            source = self.level(path + ("from",))
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
                    downsample=self.choice(path + ("downsample",), model.DOWNSAMPLES, "max_pool", what="downsample"),
                    act=self.choice(path + ("act",), model.ACTIVATIONS, "none", what="activation"),
                    projection=self.choice(path + ("projection",), model.PROJECTIONS, "conv_bn", what="projection"),
                    location=self.loaded.where(path),
                )
            )
            top = level
        return backbone, lateral, derived

    def defaults(self) -> dict[str, Any]:
        section = self.mapping(("defaults",), DEFAULT_KEYS, "`defaults`", optional=True)
        result = dict(BUILTIN_DEFAULTS)
        for key in section:
            result[key] = self.node_field(key, ("defaults", key))
        return result

    def node_field(self, key: str, path: YamlPath) -> Any:
        if key in _FIELD_CHOICES:
            choices, what = _FIELD_CHOICES[key]
            return self.choice(path, choices, what=what)
        if key == "conv_bias":
            return self.boolean(path, what="`conv_bias`")
        if key == "bn_eps":
            return float(self.number(path, 0, 1, low_open=True, what="`bn_eps`"))
        if key == "bn_momentum":
            return float(self.number(path, 0, 1, low_open=True, what="`bn_momentum`"))
        if key == "op":
            steps = self.name_list(path, "`op`")
            for i in range(len(steps)):
                self.choice(path + (i,), model.OP_STEPS, what="op step")
            return tuple(steps)
        raise AssertionError(f"no reader for node field {key}")

    def nodes(self, levels: list[int], defaults: dict[str, Any]) -> list[model.Node]:
        value = self.get(("cell", "nodes"))
        if not isinstance(value, list) or not value:
            raise self.fail("`cell.nodes` must be a non-empty list of nodes", ("cell", "nodes"))
        if len(value) > MAX_NODES:
            raise self.fail(
                f"the cell has {len(value)} nodes; at most {MAX_NODES} is a limit of the spec language",
                ("cell", "nodes"),
            )
        nodes: list[model.Node] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(value):
            path = ("cell", "nodes", i)
            given = item.get("id") if isinstance(item, dict) else None
            self.node_id = given if isinstance(given, str) and _ID.fullmatch(given) else None
            entry = self.mapping(path, NODE_KEYS, "a node")
            node_id = entry["id"]
            if isinstance(node_id, bool) and self.bool_hint(path + ("id",)):
                word = self.loaded.bool_word(path + ("id",))
                raise self.fail(f"node id {word}{self.bool_hint(path + ('id',))}", path + ("id",))
            if not isinstance(node_id, str) or not _ID.fullmatch(node_id) or _LEVEL.fullmatch(node_id):
                raise self.fail(
                    f"node id {quote(node_id)} must be an identifier (letters, digits, _) and not a level name like P3",
                    path + ("id",),
                )
            if node_id in model.reserved_ids():
                raise self.fail(
                    f"the id {quote(node_id)} is a PyTorch module attribute and cannot name a submodule; "
                    "rename the node (see docs/spec.md, reserved names)",
                    path + ("id",),
                )
            if node_id in seen:
                raise self.fail(
                    f"duplicate node id {quote(node_id)} (first defined by node #{seen[node_id] + 1}); "
                    "ids must be unique",
                    path + ("id",),
                )
            seen[node_id] = i
            level = self.level(path + ("level",))
            if level not in levels:
                raise self.fail(
                    f"level {model.level_name(level)} is outside the spec's levels P{levels[0]}-P{levels[-1]}",
                    path + ("level",),
                )
            inputs = self.name_list(path + ("inputs",), "`inputs`")
            if not inputs:
                raise self.fail("a node needs at least one input", path + ("inputs",))
            residual = self.name_list(path + ("residual",), "`residual`", default=[])
            fields = {
                key: self.node_field(key, path + (key,)) if key in entry else defaults[key]
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
                        raise self.fail(
                            f"unknown input {quote(ref)}{did_you_mean(ref, names)} {choices_text(names)}", path
                        )
                    if ref in refs[:j] or (field == "residual" and ref in node.inputs):
                        raise self.fail(f"{quote(ref)} is listed twice; list each input once", path)
        self.node_id = None

    def outputs(self, levels: list[int], nodes: list[model.Node]) -> dict[int, str]:
        path = ("cell", "outputs")
        value = self.get(path)
        if not isinstance(value, dict):
            raise self.fail("`cell.outputs` must map every level to a node id, e.g. {P3: p3_out, P4: p4_out}", path)
        by_id = {node.id: node for node in nodes}
        outputs: dict[int, str] = {}
        for key, node_id in value.items():
            level = self.level(path + (key,), key)
            if level not in levels:
                raise self.fail(
                    f"output level {key} is outside the spec's levels P{levels[0]}-P{levels[-1]}", path + (key,)
                )
            if level in outputs:
                raise self.fail(
                    f"level {key} has two outputs ({quote(outputs[level])} and {quote(node_id)})", path + (key,)
                )
            if not isinstance(node_id, str):
                raise self.fail(
                    f"output {key} must name one node id, got {quote(node_id)}{self.bool_hint(path + (key,))}",
                    path + (key,),
                )
            if node_id not in by_id:
                raise self.fail(
                    f"output {key}: unknown node {quote(node_id)}{did_you_mean(node_id, by_id)} {choices_text(by_id)}",
                    path + (key,),
                )
            if by_id[node_id].level != level:
                raise self.fail(
                    f"output {key} names node {quote(node_id)}, which is at level "
                    f"{model.level_name(by_id[node_id].level)}",
                    path + (key,),
                )
            if node_id in outputs.values():
                raise self.fail(f"node {quote(node_id)} is the output of two levels", path + (key,))
            outputs[level] = node_id
        missing = [model.level_name(level) for level in levels if level not in outputs]
        if missing:
            raise self.fail(
                f"`cell.outputs` has no node for {', '.join(missing)}; every level "
                f"P{levels[0]}-P{levels[-1]} needs one so the cell can repeat",
                path,
            )
        return dict(sorted(outputs.items()))
