"""Where the built-in specs live: ``specs/`` of a source checkout, or ``share/effdet-graph/specs`` of
an installed environment."""

from __future__ import annotations

import sys
from pathlib import Path

from graphspec import InputError
from graphspec.errors import did_you_mean

__all__ = ["builtin_specs", "resolve_spec_path", "specs_dir", "shown_path"]


def specs_dir() -> Path:
    """The folder that holds the built-in specs."""
    candidates = (
        Path(__file__).resolve().parent.parent / "specs",
        Path(sys.prefix) / "share" / "effdet-graph" / "specs",
    )
    for candidate in candidates:
        if (candidate / "bifpn.yaml").is_file():
            return candidate
    raise InputError("the built-in specs are not installed; reinstall effdet-graph or pass a spec file path")


def shown_path(path: str | Path) -> str:
    """``path`` as a file written for the user names it: a built-in spec relative to the project
    (``specs/search/bifpn_edges.yaml``), wherever the clone or the environment lies; any other path as given."""
    folder = specs_dir()
    resolved = Path(path).resolve()
    if resolved.is_relative_to(folder):
        return str(Path(folder.name) / resolved.relative_to(folder))
    return str(path)


def builtin_specs() -> list[Path]:
    """The built-in feature-network specs, sorted by name."""
    return sorted(specs_dir().glob("*.yaml"))


def resolve_spec_path(name_or_path: str) -> Path:
    """A spec path as given, or the built-in spec of that name (``bifpn`` -> ``specs/bifpn.yaml``).

    Raises:
        InputError: ``name_or_path`` is a bare name (no folder, no ``.yaml``) that is neither a file nor a
            built-in spec; the message names the closest built-in.
    """
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return path
    builtin = specs_dir() / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    names = [spec.stem for spec in builtin_specs()]
    raise InputError(
        f"{name_or_path}: neither a spec file nor a built-in spec{did_you_mean(name_or_path, names)} "
        f"(built-in: {', '.join(names)})"
    )
