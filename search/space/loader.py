"""Load a ``specs/search/*.yaml`` file into a typed :class:`~search.space.types.SearchSpace`.

Every file has the common keys (``COMMON_KEYS``) and the keys of its ``search`` kind: ``compound``
(:mod:`search.space.kinds.compound_scaling`), ``nasfpn_cells`` (:mod:`search.space.kinds.cells`) or ``bifpn_edges``
(:mod:`search.space.kinds.edges`).
The sections' keys are declared in :mod:`search.space.schema`. Any mistake raises :class:`graphspec.ConfigError`
naming FILE:LINE:COL and the key, with a did-you-mean for unknown keys and values; the ``proxy`` options are
checked by the rules of :class:`~effdet_graph.training.options.TrainOptions`, when the file loads. So is what
would make every trial fail or be rejected: a ``coco`` data set folder without its splits, a compound
``constraint`` out of the coefficients' reach, a ``budget`` no candidate can meet (:mod:`search.space.feasibility`).
"""

from __future__ import annotations

from pathlib import Path

from effdet_graph import detector_config
from effdet_graph.builtin import specs_dir
from effdet_graph.data import SCENES
from effdet_graph.training import OptionError, check_options
from graphspec.reader import Reader, YamlPath
from graphspec.yaml_loader import load_yaml
from search.space.budget import read_budget
from search.space.feasibility import check_budget_reachable
from search.space.kinds import cells, compound_scaling, edges
from search.space.schema import COMMON_KEYS, DATASET_KEYS, ONESHOT_KEYS, PROXY_KEYS, SAMPLER_KEYS
from search.space.template import read_template
from search.space.types import (
    DATASETS,
    PATH_SAMPLINGS,
    SAMPLERS,
    SPLITS,
    DatasetConfig,
    OneShotConfig,
    ProxyConfig,
    SamplerSettings,
    SearchSpace,
)

KINDS = {"compound": compound_scaling, "nasfpn_cells": cells, "bifpn_edges": edges}
SEARCH_DIR = "search"


def builtin_space(name: str) -> Path:
    """The path of a built-in search space (``nasfpn_cells`` -> ``specs/search/nasfpn_cells.yaml``)."""
    return specs_dir() / SEARCH_DIR / f"{name}.yaml"


def load_search_space(path: str | Path) -> SearchSpace:
    """Load and check a search-space file.

    Args:
        path: The file.

    Returns:
        The typed search space.

    Raises:
        ConfigError: Any problem, as one line ``FILE:LINE:COL: ...`` naming the key.
    """
    loaded = load_yaml(path, holds="a search space")
    reader = Reader(loaded)
    every_key = COMMON_KEYS | {key: False for module in KINDS.values() for key in module.KEYS}
    reader.mapping((), every_key, "a search space")
    kind = reader.choice(("search",), list(KINDS))
    module = KINDS[kind]
    reader.mapping((), COMMON_KEYS | module.KEYS, f"a `{kind}` search space")
    dataset = _dataset(reader, Path(loaded.file).parent)
    template = read_template(reader, Path(loaded.file).parent)
    space = SearchSpace(
        name=reader.string(("name",), default=Path(loaded.file).stem),
        description=reader.string(("description",), default=""),
        file=loaded.file,
        kind=kind,
        template=template,
        choices=module.read(reader, template, dataset.num_classes),
        dataset=dataset,
        proxy=_proxy(reader, Path(loaded.file).parent),
        budget=read_budget(reader),
        sampler=_sampler(reader),
        oneshot=_oneshot(reader),
    )
    check_budget_reachable(reader, space)
    return space


def _dataset(reader: Reader, base_dir: Path) -> DatasetConfig:
    reader.mapping(("dataset",), DATASET_KEYS, "`dataset`", optional=True)
    name = reader.choice(("dataset", "name"), DATASETS, default=DATASETS[0])
    relative = reader.string(("dataset", "path"), default=None)
    path = None if relative is None else base_dir / relative
    if name == "coco" and path is None:
        raise reader.fail("a `coco` dataset needs `path`: the folder with train/ and val/", ("dataset",))
    if name == "coco" and path is not None:
        problem = coco_folder_problem(path)
        if problem:
            read_as = "" if Path(relative).is_absolute() else f" (read as {str(path)!r}: relative to the space file)"
            raise reader.fail(f"`dataset.path` {relative!r}{read_as} {problem}", ("dataset", "path"))
    scene = reader.choice(("dataset", "scene"), list(SCENES), default=DatasetConfig.scene)
    if name == "coco" and reader.has(("dataset", "scene")):
        raise reader.fail("`scene` is a setting of the `synthetic` data set, not of `coco`", ("dataset", "scene"))
    default_classes = len(SCENES[scene].classes) if name == "synthetic" else detector_config(0).num_classes
    image_size = reader.integer(("dataset", "image_size"), low=32, default=DatasetConfig.image_size)
    if name == "synthetic" and image_size < SCENES[scene].min_size:
        raise reader.fail(
            f"`dataset.image_size` must be at least {SCENES[scene].min_size} for the {scene} scene, got {image_size}",
            ("dataset", "image_size"),
        )
    return DatasetConfig(
        name,
        path,
        num_classes=reader.integer(("dataset", "num_classes"), low=1, default=default_classes),
        scene=scene,
        val_fraction=reader.number(
            ("dataset", "val_fraction"), low=0.01, high=0.99, default=DatasetConfig.val_fraction
        ),
        images=reader.integer(("dataset", "images"), low=8, default=DatasetConfig.images),
        image_size=image_size,
    )


def coco_folder_problem(path: Path) -> str | None:
    """What keeps ``path`` from being a COCO-format data set folder as the proxy task opens it, or ``None``.

    The proxy task trains on ``train/`` and evaluates on ``val/``, each ``SPLIT/images/`` and
    ``SPLIT/instances.json`` (:func:`effdet_graph.data.checks.open_split`). Only this layout is checked: it is
    cheap whatever the size of the data set; the annotations are checked when a trial opens them.

    Args:
        path: The folder.

    Returns:
        What is wrong, as a predicate (``does not exist; give ...``), or ``None`` when the layout is complete.
    """
    layout = "give a COCO-format folder with " + " and ".join(f"{s}/images/ + {s}/instances.json" for s in SPLITS)
    if not path.exists():
        return f"does not exist; {layout}"
    if not path.is_dir():
        return f"is not a folder; {layout}"
    for split in SPLITS:
        for part, present in (("images", Path.is_dir), ("instances.json", Path.is_file)):
            if not present(path / split / part):
                return f"has no {split}/{part}; {layout}"
    return None


def _scale_range(reader: Reader, path: YamlPath) -> tuple[float, float]:
    """A ``{low: a, high: b}`` scale jitter (:class:`ProxyConfig`'s default where absent)."""
    if not reader.has(path):
        return ProxyConfig.scale_range
    jitter = reader.float_range(path)
    return (jitter.low, jitter.high)


def _proxy(reader: Reader, base_dir: Path) -> ProxyConfig:
    """The ``proxy`` section: types here, ranges by the rules of the training options the trials will use."""
    reader.mapping(("proxy",), PROXY_KEYS, "`proxy`")
    weights = None
    if reader.has(("proxy", "backbone_weights")):
        weights = base_dir / reader.string(("proxy", "backbone_weights"))
        if not weights.is_file():
            raise reader.fail(
                f"proxy.backbone_weights: no weights file at {str(weights)!r}", ("proxy", "backbone_weights")
            )
    pretrained = reader.boolean(("proxy", "pretrained_backbone"), default=False)
    if pretrained and weights is not None:
        raise reader.fail("give proxy.pretrained_backbone or proxy.backbone_weights, not both", ("proxy",))
    proxy = ProxyConfig(
        steps=reader.integer(("proxy", "steps")),
        batch_size=reader.integer(("proxy", "batch_size"), default=ProxyConfig.batch_size),
        image_size=reader.integer(("proxy", "image_size"), low=32, default=ProxyConfig.image_size),
        lr=reader.number(("proxy", "lr"), default=ProxyConfig.lr),
        ema_decay=reader.number(("proxy", "ema_decay"), default=ProxyConfig.ema_decay),
        reports=reader.integer(("proxy", "reports"), low=1, default=ProxyConfig.reports),
        scale_range=_scale_range(reader, ("proxy", "scale_range")),
        pretrained_backbone=pretrained,
        backbone_weights=weights,
        freeze_backbone=reader.boolean(("proxy", "freeze_backbone"), default=False),
        views=reader.integer(("proxy", "views"), low=1, default=None),
        feature_cache=reader.boolean(("proxy", "feature_cache"), default=False),
    )
    if proxy.feature_cache and not proxy.freeze_backbone:
        raise reader.fail(
            "proxy.feature_cache holds a frozen backbone's features; add freeze_backbone: true",
            ("proxy", "feature_cache"),
        )
    trained = ("steps", "batch_size", "image_size", "lr", "ema_decay", "scale_range")  # each trial's TrainOptions
    try:
        check_options({name: getattr(proxy, name) for name in trained})
    except OptionError as exc:
        raise reader.fail(exc.named(lambda name: f"proxy.{name}"), ("proxy", exc.field)) from None
    return proxy


def _sampler(reader: Reader) -> SamplerSettings:
    reader.mapping(("sampler",), SAMPLER_KEYS, "`sampler`", optional=True)
    return SamplerSettings(
        reader.choice(("sampler", "name"), SAMPLERS, default=SAMPLERS[0]),
        reader.integer(("sampler", "seed"), low=0, default=0),
    )


def _oneshot(reader: Reader) -> OneShotConfig:
    reader.mapping(("oneshot",), ONESHOT_KEYS, "`oneshot`", optional=True)
    has_val_images = reader.has(("oneshot", "val_images"))
    return OneShotConfig(
        steps=reader.integer(("oneshot", "steps"), low=1, default=OneShotConfig.steps),
        sampling=reader.choice(("oneshot", "sampling"), list(PATH_SAMPLINGS), default=OneShotConfig.sampling),
        bn_batches=reader.integer(("oneshot", "bn_batches"), low=0, default=OneShotConfig.bn_batches),
        val_images=reader.integer(("oneshot", "val_images"), low=1) if has_val_images else None,
    )
