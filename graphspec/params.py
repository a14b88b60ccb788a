"""Named spec parameters: defaults declared under ``params``, used as ``$name``, overridden by ``--set``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from graphspec.errors import Location, SpecError, choices_text, did_you_mean, quote
from graphspec.reader import as_number
from graphspec.yaml_loader import LoadedYaml, YamlPath

_SCALAR_TYPES = (bool, int, float, str)


def parse_assignments(assignments: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``["width=160", "fusion=sum"]`` into ``{"width": 160, "fusion": "sum"}`` (YAML scalars)."""
    result: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set expects KEY=VALUE, got {quote(text)}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        if not isinstance(parsed, _SCALAR_TYPES):
            raise SpecError(f"--set {key}: the value must be a number, a string or a boolean, got {quote(value)}")
        result[key.strip()] = parsed
    return result


def declared_params(loaded: LoadedYaml) -> dict[str, Any]:
    """The parameters a loaded spec declares under ``params``, with their defaults (nothing is substituted).

    Args:
        loaded: A spec document.

    Returns:
        Each parameter's name -> default value.

    Raises:
        SpecError: ``params`` is not a mapping, a name is not an identifier, or a default is not a scalar.
    """
    data = loaded.data
    declared = data.get("params", {}) if isinstance(data, dict) else {}
    if not isinstance(declared, dict):
        raise SpecError("`params` must be a mapping of name: default value", loaded.where(("params",)))
    values: dict[str, Any] = {}
    for name, default in declared.items():
        location = loaded.where(("params", name))
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"parameter name {quote(name)} must be an identifier (letters, digits, _)", location)
        if not isinstance(default, _SCALAR_TYPES):
            raise SpecError(f"parameter {quote(name)} needs a number, string or boolean default", location)
        values[name] = default
    return values


def resolve_params(loaded: LoadedYaml, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``overrides`` to the spec's ``params`` defaults and substitute every ``$name`` in place.

    Args:
        loaded: A spec document; its ``data`` is replaced by the substituted values.
        overrides: Parameter values that win over the defaults.

    Returns:
        The final parameter values.

    Raises:
        SpecError: An unknown parameter, an override of the wrong type, or a ``$name`` that no parameter
            declares.
    """
    values = declared_params(loaded)
    for name, value in overrides.items():
        if name not in values:
            raise SpecError(
                f"--set {name}: the spec has no parameter {quote(name)}{did_you_mean(name, values)} "
                f"{choices_text(values) if values else '(it declares no params)'}",
                Location(loaded.file),
            )
        values[name] = _coerce(name, value, values[name], loaded.file)
    loaded.data = _substitute(loaded, loaded.data, (), values)
    return values


def _coerce(name: str, value: Any, default: Any, file: str) -> Any:
    expected = type(default)
    if expected is float and not isinstance(value, bool):
        number = as_number(value)  # also "1e-3", which YAML 1.1 reads as a string
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return float(number)
    if type(value) is not expected:
        kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}[expected]
        raise SpecError(
            f"--set {name}={quote(value)}: expected {kind} like the default {quote(default)}", Location(file)
        )
    return value


def _substitute(loaded: LoadedYaml, value: Any, path: YamlPath, values: Mapping[str, Any]) -> Any:
    if path[:1] == ("params",):
        return value
    if isinstance(value, dict):
        return {k: _substitute(loaded, v, path + (k,), values) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(loaded, v, path + (i,), values) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("$"):
        name = value[1:]
        if name not in values:
            raise SpecError(
                f"unresolved parameter {quote('$' + name)}{did_you_mean(name, values)}; declare it under `params` "
                f"{choices_text(values) if values else ''}".rstrip(),
                loaded.where(path),
            )
        return values[name]
    return value
