"""The spec a search space starts from: a built-in spec name (``bifpn``) or a spec path relative to the
search-space file, loaded both as a typed :class:`Spec` and as raw YAML data (``$name`` references kept)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effdet_graph.builtin import builtin_specs, specs_dir
from graphspec import Spec, build_spec, load_spec_document
from graphspec.errors import choices_text, did_you_mean, quote
from graphspec.reader import Reader

REQUIRED_PARAMS = ("width", "repeats")


@dataclass(frozen=True)
class Template:
    """The template spec; ``data`` is its YAML as written, to be edited into candidate spec files."""

    path: Path
    spec: Spec
    data: dict[str, Any] = field(compare=False, repr=False)


def read_template(reader: Reader, base_dir: Path) -> Template:
    """The ``template`` key: a built-in spec name, or a ``.yaml`` path (relative to ``base_dir``)."""
    path_key = ("template",)
    value = reader.string(path_key)
    if "/" in value or value.endswith((".yaml", ".yml")):
        path = base_dir / value
        if not path.is_file():
            raise reader.fail(
                f"template file {str(path)!r} not found; give a built-in spec name or a path relative to "
                f"{str(base_dir)!r}",
                path_key,
            )
    else:
        names = [spec.stem for spec in builtin_specs()]
        if value not in names:
            raise reader.fail(
                f"unknown built-in template {quote(value)}{did_you_mean(value, names)} {choices_text(names)}", path_key
            )
        path = specs_dir() / f"{value}.yaml"
    document = load_spec_document(path)
    data = document.data  # as written: build_spec substitutes into a new structure, leaving this one as it is
    spec = build_spec(document)
    missing = [name for name in REQUIRED_PARAMS if name not in spec.params]
    if missing:
        raise reader.fail(
            f"template {path} does not declare the parameters {', '.join(missing)}; a search sets "
            "them (declare them under `params`, use them as `width: $width`)",
            path_key,
        )
    return Template(path, spec, data)
