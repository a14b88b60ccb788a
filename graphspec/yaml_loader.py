"""Safe YAML loading that keeps the line and column of every value.

PyYAML's safe composer builds a node tree; we turn it into plain Python values ourselves so that
(1) no tag can construct an object (``!!python/...`` is rejected, not executed), (2) alias
expansion is bounded (no "billion laughs"), and (3) every value's position is kept in a table
keyed by its path, e.g. ``("cell", "nodes", 3, "inputs", 1)``. Merge keys (``<<: *base``) are refused unless the
caller allows them (a spec is written out in full; a file of variants, such as the benchmarks' recipes, may
merge); a merged value keeps the position where it is written, in the anchored mapping.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from graphspec.errors import ConfigError, Location, escape, quote

YamlPath = tuple[Any, ...]
_V = TypeVar("_V")

MAX_EXPANDED_NODES = 20_000
MAX_DEPTH = 50
MAX_FILE_BYTES = 1_000_000
"""The largest YAML input read (1 MB; the built-in specs are a few kB)."""
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAPPING_TAG = "tag:yaml.org,2002:map"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SEQUENCE_TAG = "tag:yaml.org,2002:seq"


@dataclass
class LoadedYaml:
    """A document as plain Python values plus the position of each value, by path."""

    file: str
    data: Any
    marks: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    bool_words: dict[YamlPath, str] = field(default_factory=dict)
    """The text of each boolean written other than ``true``/``false`` (``yes``, ``off`` ...), by path; the
    text of such a mapping key is under ``path + (key, "<key>")``."""

    def where(self, path: YamlPath) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        while path not in self.marks and path:
            path = path[:-1]
        line, column = self.marks.get(path, (0, 0))
        return Location(self.file, line, column)

    def bool_word(self, path: YamlPath, key: bool = False) -> str | None:
        """The text YAML 1.1 read as a boolean at ``path`` when it was not ``true``/``false`` (``yes``, ``on``
        ...), else ``None``; ``key``: of the mapping key that ends ``path``."""
        return self.bool_words.get(path + ("<key>",) if key else path)

    def bool_hint(self, path: YamlPath, key: bool = False) -> str:
        """``"; YAML reads yes as the boolean true: quote it ('yes') to write the text"`` where :meth:`bool_word`
        has a word, else ``""``."""
        word = self.bool_word(path, key)
        if word is None:
            return ""
        meaning = "true" if word.lower() in ("y", "yes", "on") else "false"
        return f"; YAML reads {escape(word)} as the boolean {meaning}: quote it ({quote(word)}) to write the text"


def load_yaml(
    path: str | Path, error: type[ConfigError] = ConfigError, holds: str = "a mapping", merge_keys: bool = False
) -> LoadedYaml:
    """Read and safely load a YAML file.

    Only a regular file is read, and at most :data:`MAX_FILE_BYTES` of it: a directory, a FIFO, a socket or
    a device (``/dev/zero``) is refused by its kind before anything is read.

    Args:
        path: The file.
        error: The error type to raise (:class:`ConfigError`, or :class:`~graphspec.errors.SpecError` for specs).
        holds: What the file must hold, for the message about an empty file.
        merge_keys: Whether a mapping may take the entries of others with ``<<`` (YAML's merge key: its own
            entries win, then the merged mappings' in the order written).

    Returns:
        The document's values and their positions.

    Raises:
        ConfigError: ``error``, with a position, if the file is missing, not a regular file, too large,
            unreadable, not UTF-8, empty or not safe YAML.
    """
    return loads_yaml(read_text(path, error), str(path), error, holds, merge_keys)


def read_text(path: str | Path, error: type[ConfigError] = ConfigError) -> str:
    """The UTF-8 text of the regular file ``path``, at most :data:`MAX_FILE_BYTES` bytes.

    The file is opened without blocking (a FIFO with no writer would otherwise hang) and its kind is checked
    on the open file, so nothing but a regular file is ever read.

    Raises:
        ConfigError: ``error`` if the file is missing, a directory or another special file, larger than the
            limit, unreadable or not UTF-8.
    """
    where = Location(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error("file not found; check the path", where) from None
    except IsADirectoryError:
        raise error("is a directory, not a file; give the path of a YAML file", where) from None
    except OSError as exc:
        raise error(f"cannot read the file: {exc.strerror or exc}", where) from None
    try:
        kind = _special_kind(os.fstat(fd).st_mode)
    except OSError:
        kind = "not a readable file"
    if kind:
        os.close(fd)
        raise error(f"is {kind}, not a regular file; give the path of a YAML file", where)
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise error(f"cannot read the file: {exc.strerror or exc}", where) from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"the file is larger than {MAX_FILE_BYTES:,} bytes, the most a YAML input may hold", where)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
            Location(str(path), line, column),
        ) from None


def _special_kind(mode: int) -> str | None:
    """What a file of ``mode`` is, when it is not a regular file: ``a directory``, ``a FIFO (named pipe)`` ..."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    for test, kind in kinds:
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def loads_yaml(
    text: str,
    file: str = "<string>",
    error: type[ConfigError] = ConfigError,
    holds: str = "a mapping",
    merge_keys: bool = False,
) -> LoadedYaml:
    """Safely load YAML text (see :func:`load_yaml`); ``file`` is the name used in messages.

    Args:
        text: The YAML text.
        file: The file name used in messages.
        error: The error type to raise.
        holds: What the text must hold, for the message about an empty document.
        merge_keys: Whether ``<<`` merge keys are allowed (see :func:`load_yaml`).

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
        raise error(f"YAML syntax error: {escape(problem)}", Location(file, line, column)) from None
    except yaml.reader.ReaderError as exc:
        position = exc.position
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise error(
            f"the file holds the character {quote(chr(code))} (U+{code:04X}), which YAML does not allow; remove it",
            Location(file, line, column),
        ) from None
    except yaml.YAMLError as exc:
        raise error(
            f"YAML error: {escape(str(exc).splitlines()[0] if str(exc) else 'invalid YAML')}", Location(file)
        ) from None
    except RecursionError:
        raise error(f"the document is nested too deeply (at most {MAX_DEPTH} levels)", Location(file)) from None
    if root is None:
        raise error(f"the file is empty; it must hold {holds}", Location(file, 1, 1))
    loaded = LoadedYaml(file, None)
    loaded.data = _Converter(loaded, error, merge_keys).convert(root, ())
    return loaded


class _Converter:
    def __init__(self, loaded: LoadedYaml, error: type[ConfigError], merge_keys: bool = False):
        self.loaded = loaded
        self.error = error
        self.merge_keys = merge_keys
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
                f"the YAML tag {quote(node.tag)} is not allowed; the file holds plain data "
                "(mappings, lists, strings, numbers, booleans)",
                location,
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP_TAG:
                raise self.error(
                    f"YAML reads {escape(node.value)} as a date; quote it ({quote(node.value)}) to write the text",
                    location,
                )
            if node.tag not in _SCALAR_TAGS:
                raise self.error(f"the YAML tag {quote(node.tag)} is not allowed; write plain data", location)
            if node.tag == _BOOL_TAG and node.value.lower() not in ("true", "false"):
                self.loaded.bool_words[path] = node.value
            return self.constructor.construct_object(node, deep=True)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQUENCE_TAG:
                    raise self.error(f"the YAML tag {quote(node.tag)} is not allowed; write plain data", location)
                return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
            if node.tag != _MAPPING_TAG:
                raise self.error(f"the YAML tag {quote(node.tag)} is not allowed; write plain data", location)
            result: dict[Any, Any] = {}
            merged: list[yaml.Node] = []
            for key_node, value_node in node.value:
                if self.merge_keys and isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE_TAG:
                    merged.append(value_node)
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                    raise self.error("mapping keys must be plain scalars (no merge keys `<<`)", location)
                key = self.convert(key_node, path + ("<key>",))
                key_location = Location(self.loaded.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in result:
                    raise self.error(f"duplicate key {quote(key)}", key_location)
                self.loaded.marks[path + (key,)] = (key_location.line, key_location.column)
                word = self.loaded.bool_words.pop(path + ("<key>",), None)
                if word is not None:
                    self.loaded.bool_words[path + (key, "<key>")] = word
                result[key] = self.convert(value_node, path + (key,))
            for value_node in merged:
                self._merge(result, value_node, path)
            return result
        finally:
            self.active.discard(id(node))

    def _merge(self, result: dict[Any, Any], node: yaml.Node, path: YamlPath) -> None:
        """Add to ``result`` (the mapping at ``path``) the entries of the mapping, or list of mappings, ``node``
        that it lacks, each keeping the position (and boolean word) of where it is written."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                where = Location(self.loaded.file, source.start_mark.line + 1, source.start_mark.column + 1)
                raise self.error("a merge key `<<` takes a mapping or a list of mappings (`<<: *anchor`)", where)
            scratch = path + ("<merge>",)
            values = self.convert(source, scratch)
            added = [key for key in values if key not in result]
            result.update((key, values[key]) for key in added)
            _move(self.loaded.marks, scratch, path, added)
            _move(self.loaded.bool_words, scratch, path, added)


def _move(table: dict[YamlPath, _V], scratch: YamlPath, path: YamlPath, keys: Collection[Any]) -> None:
    """Move ``table``'s entries under ``scratch`` to ``path``: those of ``keys`` and below them; drop the rest."""
    for old in [p for p in table if p[: len(scratch)] == scratch]:
        value = table.pop(old)
        rest = old[len(scratch) :]
        if rest and rest[0] in keys:
            table[path + rest] = value
