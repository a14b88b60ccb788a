"""Typed reads of a loaded YAML document: every problem is a :class:`SpecError` naming FILE:LINE:COL and the key.

The search-space loader reads its sections through one :class:`Reader`; the messages follow the spec
language's (``graphspec.parse``): unknown keys get a did-you-mean and the valid choices, ranges name
both of their values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphspec.errors import SpecError, choices_text, did_you_mean
from graphspec.yaml_loader import LoadedYaml, YamlPath


def key_text(path: YamlPath) -> str:
    """``("budget", "max_macs") -> "`budget.max_macs`"``."""
    return "`" + ".".join(str(p) for p in path) + "`" if path else "the file"


@dataclass(frozen=True)
class IntRange:
    """Integers ``low..high``, both included."""

    low: int
    high: int


@dataclass(frozen=True)
class FloatRange:
    """Real numbers in ``[low, high]``."""

    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


class Reader:
    """Reads values out of ``loaded`` by path, raising :class:`SpecError` at the value's position."""

    def __init__(self, loaded: LoadedYaml):
        self.loaded = loaded

    def fail(self, message: str, path: YamlPath) -> SpecError:
        return SpecError(message, self.loaded.where(path))

    def get(self, path: YamlPath, default: Any = None) -> Any:
        """The raw value at ``path`` (mapping keys and list indices), or ``default`` where it has none."""
        value = self.loaded.data
        for key in path:
            in_dict = isinstance(value, dict) and key in value
            in_list = isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)
            if not (in_dict or in_list):
                return default
            value = value[key]
        return value

    def has(self, path: YamlPath) -> bool:
        """Whether ``path`` holds a value (a missing key and ``null`` both mean no)."""
        return self.get(path) is not None

    def mapping(self, path: YamlPath, keys: dict[str, bool], what: str, optional: bool = False) -> dict[str, Any]:
        """The mapping at ``path``; ``keys`` maps each allowed key to whether it is required. An ``optional``
        mapping that is absent reads as ``{}``."""
        value = self.get(path)
        if optional and value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{what} must be a mapping with keys {', '.join(keys)}", path)
        for key in value:
            if key not in keys:
                raise self.fail(
                    f"unknown key '{key}' in {what}{did_you_mean(key, keys)} {choices_text(keys)}", path + (key,)
                )
        missing = [key for key, required in keys.items() if required and key not in value]
        if missing:
            raise self.fail(f"missing required key '{missing[0]}' in {what}", path)
        return value

    def string(self, path: YamlPath) -> str:
        value = self.get(path)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key_text(path)} must be a non-empty string, got {value!r}", path)
        return value

    def choice(self, path: YamlPath, choices: Sequence[str]) -> str:
        value = self.get(path)
        if value not in choices:
            raise self.fail(
                f"{key_text(path)}: unknown value {value!r}{did_you_mean(value, choices)} {choices_text(choices)}", path
            )
        return value

    def choices(self, path: YamlPath, valid: Sequence[str]) -> tuple[str, ...]:
        """A non-empty list of distinct values, each one of ``valid``."""
        value = self.get(path)
        if not isinstance(value, list) or not value:
            raise self.fail(f"{key_text(path)} must be a non-empty list {choices_text(valid)}", path)
        for i, item in enumerate(value):
            self.choice(path + (i,), valid)
            if item in value[:i]:
                raise self.fail(f"{key_text(path)}: {item!r} is listed twice", path + (i,))
        return tuple(value)

    def integer(self, path: YamlPath, low: int | None = None, high: int | None = None) -> int:
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{key_text(path)} must be an integer, got {value!r}", path)
        self.bounds(value, path, low, high)
        return value

    def number(self, path: YamlPath, low: float | None = None, high: float | None = None) -> float:
        """A finite number. PyYAML reads ``2e9`` (YAML 1.1, no dot or sign) as a string; such strings
        are accepted as numbers too."""
        value = self.get(path)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"{key_text(path)} must be a number, got {value!r}", path)
        self.bounds(value, path, low, high)
        return value

    def bounds(self, value: float, path: YamlPath, low: float | None, high: float | None) -> None:
        if (low is not None and value < low) or (high is not None and value > high):
            valid = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
            raise self.fail(f"{key_text(path)} must be {valid}, got {value}", path)

    def int_range(self, path: YamlPath, low: int | None = None, high: int | None = None) -> IntRange:
        """``{low: a, high: b}`` with integers ``low <= a <= b <= high``."""
        self.mapping(path, {"low": True, "high": True}, key_text(path))
        result = IntRange(self.integer(path + ("low",), low, high), self.integer(path + ("high",), low, high))
        self.ordered(result.low, result.high, path)
        return result

    def float_range(self, path: YamlPath, low: float | None = None) -> FloatRange:
        """``{low: a, high: b}`` with numbers ``low <= a <= b``."""
        self.mapping(path, {"low": True, "high": True}, key_text(path))
        result = FloatRange(self.number(path + ("low",), low), self.number(path + ("high",), low))
        self.ordered(result.low, result.high, path)
        return result

    def ordered(self, low: float, high: float, path: YamlPath) -> None:
        if low > high:
            raise self.fail(f"{key_text(path)}: low {low} is greater than high {high}; swap them", path + ("low",))
