"""Named plug-ins: the search engines (``--engine``) and strategies (``--strategy``) are each a :class:`Registry`
of classes, registered by name with the class or its import path (``"package.module:Class"``), so that listing
them (the command line's choices) imports no search library."""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from graphspec.errors import InputError, quote

T = TypeVar("T")

#: Packages of this project: a missing one is a bug, not an extra to install.
OWN_PACKAGES = ("search", "effdet_graph", "graphspec")


class Registry(Generic[T]):
    """Classes of one kind by name, in registration order; a class given by its import path is imported on first
    use.

    Args:
        kind: what the classes are, for messages (``engine``).
        option: the command-line option that names one (``--engine``).
    """

    def __init__(self, kind: str, option: str) -> None:
        self.kind = kind
        self.option = option
        self._entries: dict[str, str | type[T]] = {}

    def register(self, name: str, entry: str | type[T]) -> None:
        """Make ``entry`` (a class, or ``"package.module:Class"`` imported on first use) available as ``name``."""
        self._entries[name] = entry

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def load(self, name: str) -> type[T]:
        """The class registered as ``name``.

        Raises:
            InputError: no class has that name, or the library it needs is not installed.
        """
        if name not in self._entries:
            raise InputError(f"unknown {self.kind} {quote(name)}; choose one of {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            try:
                entry = getattr(importlib.import_module(module), attribute)
            except ModuleNotFoundError as exc:
                if exc.name is None or exc.name.split(".")[0] in OWN_PACKAGES:
                    raise
                raise InputError(
                    f"{self.option} {name} needs the '{exc.name}' package; install the search extra: "
                    "pip install -e '.[search]'"
                ) from None
            self._entries[name] = entry
        return entry
