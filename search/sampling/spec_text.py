"""Write a candidate's spec file: the template's YAML data with new parameter defaults and cell, below a
comment header saying where it came from.

Lists of scalars and the entries of lists (nodes, derived levels) are written in flow style, one
per line, as the built-in specs are; everything else in block style.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import yaml


class _FlowDict(dict):
    """A mapping written on one line."""


_BaseDumper: type[yaml.SafeDumper] = getattr(
    yaml, "CSafeDumper", yaml.SafeDumper
)  # libyaml's emitter where PyYAML has it


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    pass


def _flow_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    scalars = not any(isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=scalars)


def _flow_dict(dumper: yaml.SafeDumper, data: _FlowDict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(list, _flow_list)
_Dumper.add_representer(_FlowDict, _flow_dict)


def _styled(value: Any, in_list: bool = False) -> Any:
    if isinstance(value, dict):
        items = {key: _styled(item) for key, item in value.items()}
        return _FlowDict(items) if in_list or isinstance(value, _FlowDict) else items
    if isinstance(value, list):
        return [_styled(item, in_list=True) for item in value]
    return value


def render_spec_text(
    template: Mapping[str, Any], name: str, description: str, params: Mapping[str, Any], cell: Mapping[str, Any] | None
) -> str:
    """The spec file text: ``template`` (raw YAML data, ``$name`` references kept) with ``name``,
    ``description``, the ``params`` defaults replaced, and ``cell``'s ``nodes`` / ``outputs`` where given."""
    data: dict[str, Any] = {"name": name, "description": description}
    data.update({key: copy.deepcopy(value) for key, value in template.items() if key not in data})
    if "params" in template:
        data["params"] = {key: params[key] for key in template["params"]}
    if cell is not None:
        data["cell"].update(nodes=list(cell["nodes"]), outputs=_FlowDict(cell["outputs"]))
    else:
        data["cell"]["outputs"] = _FlowDict(data["cell"]["outputs"])
    return yaml.dump(_styled(data), Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def with_header(lines: Sequence[str], text: str, width: int = 110) -> str:
    """``text`` below ``lines`` as ``#`` comments, each wrapped at ``width`` (continuations indented)."""
    wrapped = [part for line in lines for part in textwrap.wrap(line, width - 2, subsequent_indent="  ")]
    return "".join(f"# {line}\n" for line in wrapped) + text
