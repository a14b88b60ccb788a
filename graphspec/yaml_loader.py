"""Safe YAML loading that keeps the line and column of every value.

PyYAML's safe composer builds a node tree; we turn it into plain Python values ourselves so that
(1) no tag can construct an object (``!!python/...`` is rejected, not executed), (2) alias
expansion is bounded (no "billion laughs"), and (3) every value's position is kept in a table
keyed by its path, e.g. ``("cell", "nodes", 3, "inputs", 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graphspec.errors import ConfigError, Location

YamlPath = tuple[Any, ...]

MAX_EXPANDED_NODES = 20_000
MAX_DEPTH = 50
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAPPING_TAG = "tag:yaml.org,2002:map"
_SEQUENCE_TAG = "tag:yaml.org,2002:seq"


@dataclass
class LoadedYaml:
    """A document as plain Python values plus the position of each value, by path."""

    file: str
    data: Any
    marks: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: YamlPath) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        while path not in self.marks and path:
            path = path[:-1]
        line, column = self.marks.get(path, (0, 0))
        return Location(self.file, line, column)


def load_yaml(path: str | Path, error: type[ConfigError] = ConfigError, holds: str = "a mapping") -> LoadedYaml:
    """Read and safely load a YAML file.

    Args:
        path: The file.
        error: The error type to raise (:class:`ConfigError`, or :class:`~graphspec.errors.SpecError` for specs).
        holds: What the file must hold, for the message about an empty file.

    Returns:
        The document's values and their positions.

    Raises:
        ConfigError: ``error``, with a position, if the file is missing, unreadable, empty or not safe YAML.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found; check the path", Location(str(path))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read the file: {exc}", Location(str(path))) from None
    return loads_yaml(text, str(path), error, holds)


def loads_yaml(
    text: str, file: str = "<string>", error: type[ConfigError] = ConfigError, holds: str = "a mapping"
) -> LoadedYaml:
    """Safely load YAML text (see :func:`load_yaml`); ``file`` is the name used in messages.

    Args:
        text: The YAML text.
        file: The file name used in messages.
        error: The error type to raise.
        holds: What the text must hold, for the message about an empty document.

    Returns:
        The document's values and their positions.

    Raises:
        ConfigError: ``error``, with a position, if the text is empty or not safe YAML.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        raise error(f"YAML syntax error: {problem}", Location(file, line, column)) from None
    except yaml.YAMLError as exc:
        raise error(f"YAML error: {exc}", Location(file)) from None
    except RecursionError:
        raise error(f"the document is nested too deeply (at most {MAX_DEPTH} levels)", Location(file)) from None
    if root is None:
        raise error(f"the file is empty; it must hold {holds}", Location(file, 1, 1))
    loaded = LoadedYaml(file, None)
    loaded.data = _Converter(loaded, error).convert(root, ())
    return loaded


class _Converter:
    def __init__(self, loaded: LoadedYaml, error: type[ConfigError]):
        self.loaded = loaded
        self.error = error
        self.expanded = 0
        self.active: set[int] = set()
        self.constructor = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, path: YamlPath) -> Any:
        self.expanded += 1
        location = Location(self.loaded.file, node.start_mark.line + 1, node.start_mark.column + 1)
        if self.expanded > MAX_EXPANDED_NODES:
            raise self.error(
                f"the document expands to more than {MAX_EXPANDED_NODES} values "
                "(an alias bomb?); write the values out instead of nesting aliases",
                location,
            )
        if len(path) > MAX_DEPTH:
            raise self.error(f"the document is nested more than {MAX_DEPTH} levels deep; flatten it", location)
        if id(node) in self.active:
            raise self.error("a YAML alias refers to its own anchor (a recursive structure)", location)
        self.loaded.marks.setdefault(path, (location.line, location.column))
        if node.tag.startswith("tag:yaml.org,2002:python/") or node.tag.startswith("!"):
            raise self.error(
                f"the YAML tag '{node.tag}' is not allowed; the file holds plain data "
                "(mappings, lists, strings, numbers, booleans)",
                location,
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                raise self.error(f"the YAML tag '{node.tag}' is not allowed; write plain data", location)
            return self.constructor.construct_object(node, deep=True)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQUENCE_TAG:
                    raise self.error(f"the YAML tag '{node.tag}' is not allowed; write plain data", location)
                return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
            if node.tag != _MAPPING_TAG:
                raise self.error(f"the YAML tag '{node.tag}' is not allowed; write plain data", location)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.error("mapping keys must be plain scalars (no merge keys `<<`)", location)
                key = self.convert(key_node, path + ("<key>",))
                key_location = Location(self.loaded.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in result:
                    raise self.error(f"duplicate key '{key}'", key_location)
                self.loaded.marks[path + (key,)] = (key_location.line, key_location.column)
                result[key] = self.convert(value_node, path + (key,))
            return result
        finally:
            self.active.discard(id(node))
