"""Search spaces as data: load a ``specs/search/*.yaml`` file into a typed :class:`SearchSpace`.

Every file has the common keys (``COMMON_KEYS``) and the keys of its ``search`` kind: ``compound``
(:mod:`search.kinds.compound`), ``nasfpn_cells`` (:mod:`search.kinds.cells`) or ``bifpn_edges``
(:mod:`search.kinds.edges`).
Any mistake raises :class:`graphspec.SpecError` naming FILE:LINE:COL and the key, with a did-you-mean
for unknown keys and values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from effdet_graph.builtin import specs_dir
from effdet_graph.data.synthetic import CLASSES
from graphspec.yaml_loader import load_yaml
from search.budget import Budget, read_budget
from search.detector import table_row
from search.kinds import cells, compound, edges
from search.schema import Reader
from search.template import Template, read_template

KINDS = {"compound": compound, "nasfpn_cells": cells, "bifpn_edges": edges}
COMMON_KEYS = {
    "search": True,
    "name": False,
    "description": False,
    "template": True,
    "dataset": False,
    "proxy": True,
    "budget": True,
    "sampler": False,
}
DATASETS = ("synthetic", "coco")
SAMPLERS = ("tpe", "random")
SEARCH_DIR = "search"

Choices = compound.CompoundChoices | cells.CellChoices | edges.EdgeChoices


@dataclass(frozen=True)
class DatasetConfig:
    """``synthetic``: the built-in shapes data set (:mod:`effdet_graph.data.synthetic`), written to ``path`` or
    a run folder; ``coco``: a COCO-format folder at ``path`` (absolute, or relative to the space file)."""

    name: str = "synthetic"
    path: Path | None = None
    num_classes: int = len(CLASSES)
    images: int = 160
    image_size: int = 256


@dataclass(frozen=True)
class ProxyConfig:
    """Proxy training of each candidate: ``steps`` optimizer steps of ``batch_size`` images at
    ``image_size`` (``None``: the candidate's resolution) with learning rate ``lr`` and weight EMA
    ``ema_decay``; intermediate AP is measured up to ``reports`` times (for early stopping)."""

    steps: int
    batch_size: int = 8
    image_size: int | None = None
    lr: float = 0.05
    ema_decay: float = 0.99
    reports: int = 3


@dataclass(frozen=True)
class SamplerSettings:
    """Which sampler the engine should create (``tpe`` or ``random``) and its seed."""

    name: str = "tpe"
    seed: int = 0


@dataclass(frozen=True)
class SearchSpace:
    """A loaded search-space file. ``choices`` is the kind's part; ``choices.draw(template, trial)`` samples."""

    name: str
    description: str
    file: str
    kind: str
    template: Template
    choices: Choices
    dataset: DatasetConfig
    proxy: ProxyConfig
    budget: Budget
    sampler: SamplerSettings


def builtin_space(name: str) -> Path:
    """The path of a built-in search space (``nasfpn_cells`` -> ``specs/search/nasfpn_cells.yaml``)."""
    return specs_dir() / SEARCH_DIR / f"{name}.yaml"


def load_search_space(path: str | Path) -> SearchSpace:
    """Load and check a search-space file."""
    loaded = load_yaml(path)
    reader = Reader(loaded)
    every_key = COMMON_KEYS | {key: False for module in KINDS.values() for key in module.KEYS}
    reader.mapping((), every_key, "a search space")
    kind = reader.choice(("search",), list(KINDS))
    module = KINDS[kind]
    reader.mapping((), COMMON_KEYS | module.KEYS, f"a `{kind}` search space")
    dataset = _dataset(reader, Path(loaded.file).parent)
    template = read_template(reader, Path(loaded.file).parent)
    return SearchSpace(
        name=reader.string(("name",)) if reader.has(("name",)) else Path(loaded.file).stem,
        description=reader.string(("description",)) if reader.has(("description",)) else "",
        file=loaded.file,
        kind=kind,
        template=template,
        choices=module.read(reader, template, dataset.num_classes),
        dataset=dataset,
        proxy=_proxy(reader),
        budget=read_budget(reader),
        sampler=_sampler(reader),
    )


def _dataset(reader: Reader, base_dir: Path) -> DatasetConfig:
    section = reader.mapping(
        ("dataset",),
        {"name": False, "path": False, "num_classes": False, "images": False, "image_size": False},
        "`dataset`",
        optional=True,
    )
    name = reader.choice(("dataset", "name"), DATASETS) if reader.has(("dataset", "name")) else DATASETS[0]
    path = base_dir / reader.string(("dataset", "path")) if reader.has(("dataset", "path")) else None
    if name == "coco" and path is None:
        raise reader.fail("a `coco` dataset needs `path`: the folder with train/ and val/", ("dataset",))
    default_classes = len(CLASSES) if name == "synthetic" else table_row(0).num_classes
    num_classes = reader.integer(("dataset", "num_classes"), low=1) if "num_classes" in section else default_classes
    images = reader.integer(("dataset", "images"), low=8) if "images" in section else DatasetConfig.images
    size = reader.integer(("dataset", "image_size"), low=32) if "image_size" in section else DatasetConfig.image_size
    return DatasetConfig(name, path, num_classes, images, size)


def _proxy(reader: Reader) -> ProxyConfig:
    reader.mapping(
        ("proxy",),
        {"steps": True, "batch_size": False, "image_size": False, "lr": False, "ema_decay": False, "reports": False},
        "`proxy`",
    )
    batch = reader.integer(("proxy", "batch_size"), low=1) if reader.has(("proxy", "batch_size")) else 8
    size = reader.integer(("proxy", "image_size"), low=32) if reader.has(("proxy", "image_size")) else None
    lr = reader.number(("proxy", "lr"), low=0.0) if reader.has(("proxy", "lr")) else ProxyConfig.lr
    ema = (
        reader.number(("proxy", "ema_decay"), low=0.0) if reader.has(("proxy", "ema_decay")) else ProxyConfig.ema_decay
    )
    reports = reader.integer(("proxy", "reports"), low=1) if reader.has(("proxy", "reports")) else ProxyConfig.reports
    return ProxyConfig(reader.integer(("proxy", "steps"), low=1), batch, size, lr, ema, reports)


def _sampler(reader: Reader) -> SamplerSettings:
    reader.mapping(("sampler",), {"name": False, "seed": False}, "`sampler`", optional=True)
    name = reader.choice(("sampler", "name"), SAMPLERS) if reader.has(("sampler", "name")) else SAMPLERS[0]
    seed = reader.integer(("sampler", "seed"), low=0) if reader.has(("sampler", "seed")) else 0
    return SamplerSettings(name, seed)
