"""Typed, located reads of a loaded YAML document: the one reader of every YAML file the project reads.

A :class:`Reader` reads values out of a :class:`~graphspec.yaml_loader.LoadedYaml` by path (mapping keys and
list indices) and checks them; each problem raises one :class:`~graphspec.errors.ConfigError` (or the
subclass the reader was made with, e.g. :class:`~graphspec.errors.SpecError` for specs) whose message is
one line ``FILE:LINE:COL: what is wrong; how to fix it``. An error about a mapping entry points at its key,
one about a list item at the item. Unknown keys and values get a did-you-mean and the valid choices.

A file kind declares its schema once, as :data:`Keys` tables (each allowed key -> whether it is required),
and reads its sections with :meth:`Reader.mapping` and the typed getters. Every getter takes ``default``:
where the path holds nothing (no key, or ``null``) the default is returned unchecked; without a default the
value is required.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from graphspec.errors import ConfigError, choices_text, did_you_mean, quote
from graphspec.yaml_loader import LoadedYaml, YamlPath

Keys = dict[str, bool]
"""A section's schema: each allowed key, and whether it is required."""


class _Missing:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final[Any] = _Missing()
"""The ``default`` of a getter whose value must be present."""


def key_name(path: YamlPath) -> str:
    """The dotted name of ``path``: ``("budget", "max_macs") -> "budget.max_macs"``, list items by index."""
    return ".".join(str(p) for p in path)


def key_text(path: YamlPath) -> str:
    """``("budget", "max_macs") -> "`budget.max_macs`"``; the empty path is ``the file``."""
    return f"`{key_name(path)}`" if path else "the file"


def bounds_text(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str | None:
    """What a value within the bounds is, for a message: ``positive``, ``>= 1``, ``in (0, 1]`` ... (``None``
    when there are no bounds)."""
    if low is None and high is None:
        return None
    if high is None:
        return "positive" if low == 0 and low_open else f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def within(
    value: float, low: float | None, high: float | None, low_open: bool = False, high_open: bool = False
) -> bool:
    """Whether ``value`` lies within the bounds (``None``: unbounded on that side)."""
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    return above and below


def as_number(value: Any) -> Any:
    """``value`` as a number where it is one: PyYAML reads ``1e-3`` and ``2e9`` (YAML 1.1: no dot, no
    exponent sign) as strings, so a string that Python reads as a finite float becomes that float.
    Anything else is returned as it is."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


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
    """Reads values out of ``loaded`` by path, raising ``error`` at the value's position.

    Args:
        loaded: The document.
        error: The error type every problem raises (a :class:`ConfigError` subclass).
    """

    def __init__(self, loaded: LoadedYaml, error: type[ConfigError] = ConfigError):
        self.loaded = loaded
        self.error = error

    @property
    def file(self) -> str:
        """The file name used in messages."""
        return self.loaded.file

    def fail(self, message: str, path: YamlPath) -> ConfigError:
        """The error (to raise) for ``message`` at ``path``'s position, with the key's dotted name."""
        return self.error(message, self.loaded.where(path), key=key_name(path) or None)

    # -- raw access ------------------------------------------------------------------------------
    def get(self, path: YamlPath, default: Any = None) -> Any:
        """The raw value at ``path``, or ``default`` where it has none.

        Args:
            path: Mapping keys and list indices from the top of the document.
            default: What a missing path reads as.

        Returns:
            The value, unchecked.
        """
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

    def bool_hint(self, path: YamlPath) -> str:
        """``"; YAML reads yes as the boolean true: quote it ('yes') ..."`` where the value at ``path`` is a
        boolean written ``yes``, ``no``, ``on``, ``off`` ... (YAML 1.1), else ``""``: for messages about a
        value that should have been a name."""
        return self.loaded.bool_hint(path) if isinstance(self.get(path), bool) else ""

    def _absent(self, path: YamlPath, default: Any) -> bool:
        return default is not REQUIRED and not self.has(path)

    # -- structure -------------------------------------------------------------------------------
    def mapping(
        self, path: YamlPath, keys: Keys | None, what: str | None = None, optional: bool = False
    ) -> dict[str, Any]:
        """The mapping at ``path``, checked against its schema.

        Args:
            path: Where the mapping is.
            keys: Each allowed key -> whether it is required; ``None``: any string keys.
            what: The mapping's name in messages (default: its key, e.g. ```proxy```).
            optional: Whether an absent mapping is allowed (it reads as ``{}``).

        Returns:
            The mapping.

        Raises:
            ConfigError: Not a mapping; an unknown key (with a did-you-mean); a missing required key.
        """
        what = what or key_text(path)
        value = self.get(path)
        if optional and value is None:
            return {}
        if not isinstance(value, dict):
            expected = f"a mapping with keys {', '.join(keys)}" if keys else "a mapping"
            raise self.fail(f"{what} must be {expected}, got {_shown(value)}", path)
        for key in value:
            if keys is None and not isinstance(key, str):
                hint = self.loaded.bool_hint(path + (key,), key=True)
                raise self.fail(f"{what}: keys must be strings, got {quote(key)}{hint}", path + (key,))
            if keys is not None and key not in keys:
                hint = self.loaded.bool_hint(path + (key,), key=True)
                raise self.fail(
                    f"unknown key {quote(key)} in {what}{did_you_mean(key, keys)} {choices_text(keys)}{hint}",
                    path + (key,),
                )
        missing = [key for key, required in (keys or {}).items() if required and key not in value]
        if missing:
            raise self.fail(f"missing required key {quote(missing[0])} in {what}", path)
        return value

    def items(self, path: YamlPath, what: str | None = None, non_empty: bool = True) -> list[Any]:
        """The list at ``path`` (non-empty unless ``non_empty`` is false).

        Raises:
            ConfigError: Not a list, or an empty one where one item is needed.
        """
        value = self.get(path)
        if not isinstance(value, list) or (non_empty and not value):
            raise self.fail(
                f"{what or key_text(path)} must be a {'non-empty ' * non_empty}list, got {quote(value)}", path
            )
        return value

    # -- scalars ---------------------------------------------------------------------------------
    def string(self, path: YamlPath, default: Any = REQUIRED, what: str | None = None) -> str:
        """A non-empty string.

        Raises:
            ConfigError: Anything else.
        """
        if self._absent(path, default):
            return default
        value = self.get(path)
        if not isinstance(value, str) or not value:
            raise self.fail(
                f"{what or key_text(path)} must be a non-empty string, got {quote(value)}{self.bool_hint(path)}", path
            )
        return value

    def boolean(self, path: YamlPath, default: Any = REQUIRED, what: str | None = None) -> bool:
        """``true`` or ``false``.

        Raises:
            ConfigError: Anything else (``1``, ``'yes'`` in quotes ...).
        """
        if self._absent(path, default):
            return default
        value = self.get(path)
        if not isinstance(value, bool):
            raise self.fail(f"{what or key_text(path)} must be true or false, got {quote(value)}", path)
        return value

    def choice(self, path: YamlPath, choices: Sequence[str], default: Any = REQUIRED, what: str | None = None) -> str:
        """One of ``choices``.

        Args:
            path: Where the value is.
            choices: The valid values.
            default: What an absent value reads as (without it the value is required).
            what: The kind of value in messages (``unknown fusion method 'x'``); default: the key
                (```budget.scope`: unknown value 'x'``).

        Raises:
            ConfigError: Another value, with a did-you-mean and the valid choices.
        """
        if self._absent(path, default):
            return default
        value = self.get(path)
        if not isinstance(value, str) or value not in choices:
            head = f"unknown {what} {quote(value)}" if what else f"{key_text(path)}: unknown value {quote(value)}"
            raise self.fail(f"{head}{did_you_mean(value, choices)} {choices_text(choices)}{self.bool_hint(path)}", path)
        return value

    def choices(self, path: YamlPath, valid: Sequence[str], default: Any = REQUIRED) -> tuple[str, ...]:
        """A non-empty list of distinct values, each one of ``valid``.

        Raises:
            ConfigError: Not such a list; an unknown value (did-you-mean); a value listed twice.
        """
        if self._absent(path, default):
            return default
        value = self.get(path)
        if not isinstance(value, list) or not value:
            raise self.fail(f"{key_text(path)} must be a non-empty list {choices_text(valid)}", path)
        for i, item in enumerate(value):
            self.choice(path + (i,), valid)
            if item in value[:i]:
                raise self.fail(f"{key_text(path)}: {quote(item)} is listed twice", path + (i,))
        return tuple(value)

    def integer(
        self,
        path: YamlPath,
        low: int | None = None,
        high: int | None = None,
        default: Any = REQUIRED,
        what: str | None = None,
        low_open: bool = False,
    ) -> int:
        """An integer within ``[low, high]`` (``low_open``: above ``low``; ``low=0, low_open=True``: positive).

        Raises:
            ConfigError: Not an integer (``true`` is not one), or out of bounds.
        """
        if self._absent(path, default):
            return default
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{what or key_text(path)} must be an integer, got {quote(value)}", path)
        self.check_bounds(value, path, low, high, what, low_open=low_open)
        return value

    def number(
        self,
        path: YamlPath,
        low: float | None = None,
        high: float | None = None,
        default: Any = REQUIRED,
        what: str | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float:
        """A finite number within the bounds. YAML-1.1 strings like ``1e-3`` count as numbers (:func:`as_number`).

        Returns:
            The number (an ``int`` where the file wrote one, a ``float`` otherwise).

        Raises:
            ConfigError: Not a finite number, or out of bounds.
        """
        if self._absent(path, default):
            return default
        raw = self.get(path)
        value = as_number(raw)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            valid = bounds_text(low, high, low_open, high_open)
            if isinstance(value, (int, float, str)) and not isinstance(value, bool) and _overflows(value):
                raise self.fail(
                    f"{what or key_text(path)}: {quote(raw)} is too large to be a finite number"
                    + (f"; it must be {valid}" if valid else ""),
                    path,
                )
            raise self.fail(f"{what or key_text(path)} must be a number, got {quote(raw)}", path)
        self.check_bounds(value, path, low, high, what, low_open, high_open)
        return value

    def check_bounds(
        self,
        value: float,
        path: YamlPath,
        low: float | None,
        high: float | None,
        what: str | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        """Raise at ``path`` unless ``value`` lies within the bounds: ```x` must be in [0, 8], got 9``.

        Raises:
            ConfigError: ``value`` is out of bounds.
        """
        if not within(value, low, high, low_open, high_open):
            valid = bounds_text(low, high, low_open, high_open)
            raise self.fail(f"{what or key_text(path)} must be {valid}, got {value}", path)

    # -- ranges ----------------------------------------------------------------------------------
    def int_range(self, path: YamlPath, low: int | None = None, high: int | None = None) -> IntRange:
        """``{low: a, high: b}`` with integers ``low <= a <= b <= high``.

        Raises:
            ConfigError: Not such a mapping, an end out of bounds, or ``a > b``.
        """
        return IntRange(*self._ends(path, self.integer, low, high))

    def float_range(self, path: YamlPath, low: float | None = None, high: float | None = None) -> FloatRange:
        """``{low: a, high: b}`` with numbers ``low <= a <= b <= high``.

        Raises:
            ConfigError: Not such a mapping, an end out of bounds, or ``a > b``.
        """
        return FloatRange(*self._ends(path, self.number, low, high))

    def _ends(
        self, path: YamlPath, read: Callable[[YamlPath, Any, Any], Any], low: float | None, high: float | None
    ) -> tuple[Any, Any]:
        """The ``low`` and ``high`` of the range mapping at ``path``, each read by ``read`` within the bounds."""
        self.mapping(path, {"low": True, "high": True})
        ends = read(path + ("low",), low, high), read(path + ("high",), low, high)
        self.ordered(*ends, path)
        return ends

    def ordered(self, low: float, high: float, path: YamlPath) -> None:
        """Raise at ``path.low`` if ``low > high``.

        Raises:
            ConfigError: The ends are swapped.
        """
        if low > high:
            raise self.fail(f"{key_text(path)}: low {low} is greater than high {high}; swap them", path + ("low",))


def _overflows(value: float | str) -> bool:
    """Whether ``value`` is (or reads as) an infinite number: ``1.0e309``, ``.inf``."""
    try:
        return math.isinf(float(value))
    except (ValueError, OverflowError):
        return False


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {'list' if isinstance(value, list) else 'mapping'}"
    return "nothing" if value is None else repr(value)
