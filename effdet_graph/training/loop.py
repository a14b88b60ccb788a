"""The training loop: focal + Huber loss, SGD with warmup and cosine decay, EMA weights, gradient
clipping, AMP on CUDA, a checkpoint at every epoch end, and exact resumption.

The checkpoint ``OUT/last.pt`` (see :mod:`effdet_graph.io.checkpoint`) holds, besides the model recipe
and weights: ``ema``, ``optimizer``, ``scheduler``, ``scaler`` state, ``step`` (optimizer steps
done), ``epoch`` (epochs completed, ``step // steps_per_epoch``), ``rng`` (global generator states), ``args``
(:meth:`TrainOptions.to_dict`) and ``train_images``. Resuming from it restores all of these and
continues at batch ``step % steps_per_epoch`` of epoch ``epoch``. The last checkpoint's EMA weights
have their BatchNorm statistics recomputed (:mod:`effdet_graph.training.batchnorm`). A model variant's run
(:mod:`effdet_graph.training.variant`) writes its entry too, under ``variant``.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timm.scheduler import CosineLRScheduler
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from effdet_graph.builtin import resolve_spec_path
from effdet_graph.data.checks import check_split, open_split
from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.loading import reraise_worker_errors
from effdet_graph.data.transforms import PaddedCollate, TrainTransform
from effdet_graph.device import resolve_device
from effdet_graph.errors import CheckpointError, DatasetError
from effdet_graph.fpn.compiler import compile_spec
from effdet_graph.io.checkpoint import VARIANT_KEY, load_model_state, read_checkpoint, save_checkpoint
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.model.backbone import IMAGENET, create_backbone, weights_source
from effdet_graph.model.detector import DetectorTrainer, EfficientDet
from effdet_graph.model.padded_targets import DEFAULT_MAX_BOXES, DEFAULT_MAX_IGNORE_BOXES, PaddedTargets
from effdet_graph.training.batchnorm import recompute_bn_statistics
from effdet_graph.training.data import epoch_loader
from effdet_graph.training.distributed import (
    ProcessGroup,
    all_reduce_sum,
    barrier,
    join_process_group,
    leave_process_group,
)
from effdet_graph.training.ema import DetectorEma
from effdet_graph.training.feature_cache import CachedViews, open_feature_cache
from effdet_graph.training.optim import build_optimizer, build_scheduler
from effdet_graph.training.options import RESUME_MUST_MATCH, TrainOptions
from effdet_graph.training.readout import LossReadout
from effdet_graph.training.seeding import kernel_settings, restore_rng_state, rng_state, seed_everything
from effdet_graph.training.step_log import StepLog, open_step_log
from effdet_graph.training.variant import ModelVariant
from graphspec import InputError

__all__ = ["CHECKPOINT_NAME", "TrainResult", "initial_model", "prepare_feature_cache", "train"]

CHECKPOINT_NAME = "last.pt"
#: Recipe entries a resumed run must share with its checkpoint (beyond fitting weights).
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainOptions)}  # of options older checkpoints lack
_RECIPE_MUST_MATCH = ("phi", "backbone", "spec_params", "image_size", "label_to_category")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: the checkpoint, the steps run now and in all, the mean throughput of
    the steps run now (images per second, data loading included, checkpoints not), the last loss, and whether
    this is the process that wrote the checkpoint (rank 0 under ``torchrun``)."""

    checkpoint: Path
    steps_run: int
    total_steps: int
    images_per_s: float
    final_loss: float
    main_process: bool = True


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it, else fp16; no autocast on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _variant_diffs(stored: dict[str, Any] | None, wanted: dict[str, Any] | None) -> list[str]:
    """How a checkpoint's model variant entry differs from this run's (``None``: a plain detector)."""
    if (stored or {}).get("kind") != (wanted or {}).get("kind"):
        kinds = [f"a {entry['kind']}" if entry else "a plain detector" for entry in (stored, wanted)]
        return [f"{VARIANT_KEY}: checkpoint {kinds[0]}, this run {kinds[1]}"]
    stored, wanted = stored or {}, wanted or {}
    return [
        f"{VARIANT_KEY}.{k}: checkpoint {reprlib.repr(stored.get(k))}, this run {reprlib.repr(wanted.get(k))}"
        for k in sorted(stored.keys() | wanted.keys())
        if stored.get(k) != wanted.get(k)
    ]


def _check_resumable(
    path: Path,
    data: dict[str, Any],
    recipe: ModelRecipe,
    options: TrainOptions,
    train_images: int,
    variant: dict[str, Any] | None,
) -> None:
    """The checkpoint must have been written by a run with the same model (and variant entry), data and
    schedule."""
    if data.get("args") is None or "optimizer" not in data:
        raise CheckpointError(f"{path}: holds weights only (no training state); it can be evaluated, not resumed")
    stored, wanted = data["args"], options.to_dict()
    diffs = _variant_diffs(data.get(VARIANT_KEY), variant)
    diffs += [
        f"{k}: checkpoint {data[k]!r}, this run {getattr(recipe, k)!r}"
        for k in _RECIPE_MUST_MATCH
        if data[k] != getattr(recipe, k)
    ]
    if not diffs:  # otherwise those differences explain the rest
        diffs += [
            f"detector.{k}: checkpoint {v!r}, this run {recipe.detector.get(k)!r}"
            for k, v in data["detector"].items()
            if recipe.detector.get(k) != v
        ]
        if data["spec_text"] != recipe.spec_text:
            diffs.append(
                f"spec_text: the spec file {recipe.spec_file} differs from the one trained ({data['spec_file']})"
            )
    diffs += [
        f"{k}: checkpoint {stored.get(k)!r}, this run {wanted[k]!r}"
        for k in RESUME_MUST_MATCH
        if stored.get(k, _DEFAULTS[k]) != wanted[k]
        and not (k == "scale_range" and tuple(stored.get(k)) == tuple(wanted[k]))
    ]
    if data.get("train_images") != train_images:
        diffs.append(f"train_images: checkpoint {data.get('train_images')}, this run {train_images}")
    if diffs:
        raise CheckpointError(
            f"{path}: cannot resume with other settings ({'; '.join(diffs)}); use the options the run was started with"
        )


def train(
    options: TrainOptions,
    progress: bool | None = True,
    on_epoch_end: Callable[[int, int, Path], None] | None = None,
    variant: ModelVariant | None = None,
) -> TrainResult:
    """Run (or resume) training; write ``options.out / CHECKPOINT_NAME`` at every epoch end and at the end.

    With the same options (and the same hardware and thread count) two runs give the same weights, and
    a run resumed from any of its checkpoints continues the same schedule, data order and random streams;
    its weights equal an uninterrupted run's bit for bit on the CPU, and on a GPU with
    ``options.deterministic``. ``progress``: show a tqdm bar (``None``: only when stderr is a terminal).
    ``on_epoch_end(step, total_steps, checkpoint)`` runs after each epoch's checkpoint is written (a search
    measures intermediate AP there); an exception it raises ends the run. ``variant`` trains a model variant
    (:mod:`effdet_graph.training.variant`) in place of the recipe's plain detector: its feature network, told
    each step before the forward pass, its entry in every checkpoint.

    Under ``torchrun`` (:mod:`effdet_graph.training.distributed`) every process runs this function: each
    trains on its slice of every global batch, rank 0 alone writes checkpoints, logs and the progress bar
    and calls ``on_epoch_end``, and every process returns the same :class:`TrainResult`.

    Raises:
        DatasetError: the training split is missing, broken, empty or smaller than a batch.
        CheckpointError: ``options.resume`` is unreadable or from another model, variant or run.
        InputError: bad options, an existing checkpoint in ``options.out`` without ``--resume``, or
            a loss that stopped being finite (lower ``--lr``).
    """
    checkpoint = options.out / CHECKPOINT_NAME
    if options.resume is None and checkpoint.exists():
        raise InputError(
            f"{checkpoint}: a checkpoint is already there; continue it with --resume {checkpoint} "
            "or choose another --out"
        )
    resumed = read_checkpoint(options.resume) if options.resume is not None else None
    if options.check_data:  # every training image opened before anything is written
        check_split(options.data, "train", progress)
    group, device = join_process_group(options.device, options.batch_size)
    if options.sync_bn and group.distributed and device.type != "cuda":
        raise InputError("--sync-bn synchronises BatchNorm over GPU processes (NCCL); on CPUs leave it out")
    try:
        with kernel_settings(options.deterministic):
            return _train(options, resumed, progress, on_epoch_end, group, device, variant)
    finally:
        if group.distributed:
            leave_process_group()


def to_device(images: torch.Tensor | list[torch.Tensor], device: torch.device) -> torch.Tensor | list[torch.Tensor]:
    """A batch of images, or of a feature cache's backbone maps (one tensor per level), on ``device``."""
    if isinstance(images, torch.Tensor):
        return images.to(device, memory_format=torch.channels_last, non_blocking=True)
    return [level.to(device, memory_format=torch.channels_last, non_blocking=True) for level in images]


def backbone_weights(options: TrainOptions) -> str | Path | None:
    """The backbone's starting weights that ``options`` ask for: ImageNet's, a file's, or ``None`` (random)."""
    return IMAGENET if options.pretrained_backbone else options.backbone_weights


def _build_model(
    recipe: ModelRecipe, options: TrainOptions, resuming: bool, variant: ModelVariant | None
) -> EfficientDet:
    """The recipe's detector (the variant's feature network in it, where given), its backbone from ImageNet or
    a weights file when asked (not when resuming: the checkpoint holds every weight)."""
    weights = backbone_weights(options)
    spec, config = recipe.spec(), recipe.config()
    backbone = None
    if weights is not None and not resuming:
        backbone = create_backbone(recipe.backbone, spec.backbone_levels, weights, **config.backbone_args)
    feature_network = compile_spec if variant is None else variant.feature_network
    model = EfficientDet(spec, config, backbone=backbone, feature_network=feature_network)
    return model.freeze_backbone() if options.freeze_backbone else model


def _start(
    options: TrainOptions, resuming: bool, variant: ModelVariant | None
) -> tuple[CocoDetection, ModelRecipe, TrainTransform, EfficientDet]:
    """A run's start: every random number generator seeded with the run's seed, then its training split (its
    model recipe and transform) and its detector (:func:`_build_model`)."""
    seed_everything(options.seed)
    dataset, recipe, transform = _training_split(options)
    return dataset, recipe, transform, _build_model(recipe, options, resuming, variant)


def initial_model(options: TrainOptions) -> EfficientDet:
    """The detector a fresh :func:`train` with ``options`` starts from, before its first step: the weights its
    seed draws (the backbone's from ImageNet or a file where asked, frozen where asked).

    Raises:
        DatasetError: the training split is missing, broken or smaller than a batch.
    """
    return _start(options, False, None)[3]


def _training_split(options: TrainOptions) -> tuple[CocoDetection, ModelRecipe, TrainTransform]:
    """The training split (its transform and views set), the run's model recipe and its training transform.

    Raises:
        DatasetError: the split is missing or broken, or smaller than a batch.
    """
    dataset = open_split(options.data, "train", options.order_seed)
    if len(dataset) < options.batch_size:
        raise DatasetError(
            f"{dataset.annotation_file}: the train split has {len(dataset)} images, fewer than "
            f"--batch-size {options.batch_size}; lower --batch-size"
        )
    recipe = ModelRecipe.create(
        resolve_spec_path(str(options.spec)),
        options.phi,
        options.image_size,
        dataset.label_to_category,
        dataset.class_names,
        options.backbone,
        options.overrides,
        options.head_depth,
    )
    low, high = options.scale_range
    transform = TrainTransform(recipe.image_size, (low, high))
    dataset.transform, dataset.views = transform, options.view_count
    return dataset, recipe, transform


def prepare_feature_cache(options: TrainOptions, progress: bool | None = True) -> Path:
    """Build the feature cache that a training with ``options`` (``feature_cache`` set) would train on, unless
    it is stored already, and return its folder: runs that share one cache (a search's trials) then open it
    instead of waiting while the first of them builds it. The backbone is the run's own (its weights, or its
    seed's random ones), so the cache is the one the run looks up.

    Raises:
        DatasetError: the training split is missing, broken or smaller than a batch.
        InputError: the cache cannot be written (one line naming the file).
    """
    if not options.feature_cache:
        raise ValueError("prepare_feature_cache needs options with feature_cache set")
    dataset, recipe, transform = _training_split(options)
    device = resolve_device(options.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        seed_everything(options.seed)
        backbone = _build_model(recipe, options, False, None).backbone.to(device).to(memory_format=torch.channels_last)
    views = options.view_count or 1
    return open_feature_cache(dataset, backbone, recipe.backbone, transform, views, device, progress).path


@dataclass
class _Run:
    """A run's parts that stay put from its first step to its last: what each step, each log row and each
    checkpoint use."""

    options: TrainOptions
    recipe: ModelRecipe
    dataset: CocoDetection
    model: EfficientDet
    step_fn: torch.nn.Module  # images, targets -> losses: the trainer, in DDP and compiled where asked
    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    ema: DetectorEma
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    device: torch.device
    group: ProcessGroup
    variant: ModelVariant | None
    variant_entry: dict[str, Any] | None
    backbone_source: str
    steps_per_epoch: int
    total_steps: int
    params: list[torch.nn.Parameter]  # clipped every step; the list is made once

    @property
    def checkpoint(self) -> Path:
        """``OUT/last.pt``."""
        return self.options.out / CHECKPOINT_NAME


@dataclass
class _Reporting:
    """Where the losses go: their running readout, the step log (rank 0 only) and the progress bar."""

    readout: LossReadout
    log: StepLog | None
    bar: tqdm
    check_finite: bool  # a loss scaler skips non-finite steps itself; without one the readout checks


def _train(
    options: TrainOptions,
    resumed: dict[str, Any] | None,
    progress: bool | None,
    on_epoch_end: Callable[[int, int, Path], None] | None,
    group: ProcessGroup,
    device: torch.device,
    variant: ModelVariant | None,
) -> TrainResult:
    """:func:`train` once the process group is joined: build the run, restore a resumed one's state, loop."""
    run, items = _build_run(options, resumed, progress, group, device, variant)
    step = 0 if resumed is None or options.resume is None else _restore(run, resumed, options.resume)
    return _loop(run, items, step, progress, on_epoch_end)


def _build_run(
    options: TrainOptions,
    resumed: dict[str, Any] | None,
    progress: bool | None,
    group: ProcessGroup,
    device: torch.device,
    variant: ModelVariant | None,
) -> tuple[_Run, CocoDetection | CachedViews]:
    """The run (its model on ``device``, step module, optimizer, schedule, EMA and loss scaler) and what its
    loader draws from."""
    amp_dtype = _amp_dtype(device)
    dataset, recipe, transform, model = _start(options, resumed is not None, variant)
    steps_per_epoch = len(dataset) // options.batch_size
    source = weights_source(recipe.backbone, backbone_weights(options))
    if resumed is not None:
        source = resumed.get("backbone_weights", source)
    variant_entry = None if variant is None else variant.entry()
    if options.sync_bn and group.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device).to(memory_format=torch.channels_last).train()  # faster convs, CPU and GPU
    items = _loader_items(options, dataset, model, recipe, transform, device, group, progress)
    step_fn = _step_module(model, recipe, options, group, device, variant)
    optimizer = build_optimizer(model, options.lr, options.momentum, options.weight_decay, device)
    total_steps = options.total_steps(steps_per_epoch)
    run = _Run(
        options=options,
        recipe=recipe,
        dataset=dataset,
        model=model,
        scheduler=build_scheduler(optimizer, total_steps, options.warmup(total_steps)),
        ema=DetectorEma(model, decay=options.ema_decay, use_warmup=True, foreach=True),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
        optimizer=optimizer,
        step_fn=step_fn,
        amp_dtype=amp_dtype,
        device=device,
        params=list(model.parameters()),
        group=group,
        variant=variant,
        variant_entry=variant_entry,
        backbone_source=source,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
    )
    return run, items


def _loader_items(
    options: TrainOptions,
    dataset: CocoDetection,
    model: EfficientDet,
    recipe: ModelRecipe,
    transform: TrainTransform,
    device: torch.device,
    group: ProcessGroup,
    progress: bool | None,
) -> CocoDetection | CachedViews:
    """What the loader draws from: the split's images, or with ``feature_cache`` the backbone's maps of their
    views (built by ``model``'s backbone where not stored yet)."""
    if not options.feature_cache:
        return dataset
    shown = None if progress is None else progress and group.is_main
    views = options.view_count or 1
    cache = open_feature_cache(dataset, model.backbone, recipe.backbone, transform, views, device, shown)
    return CachedViews(cache, options.order_seed)


def _step_module(
    model: EfficientDet,
    recipe: ModelRecipe,
    options: TrainOptions,
    group: ProcessGroup,
    device: torch.device,
    variant: ModelVariant | None,
) -> torch.nn.Module:
    """``images, targets -> losses``: the detector's :class:`DetectorTrainer`, wrapped in
    ``DistributedDataParallel`` under torchrun and compiled with ``--compile``."""
    # Under torchrun the loss is normalised by the positives of the global batch, as one process would.
    reduce_positives = all_reduce_sum if group.distributed else None
    trainer = DetectorTrainer(model, recipe.image_size, reduce_positives, group.world_size).to(device)
    step_fn: torch.nn.Module = trainer
    if group.distributed:
        step_fn = DistributedDataParallel(
            trainer,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=variant is not None,  # a variant's step may leave parameters out (a supernet's)
        )
    if options.compile:
        step_fn = torch.compile(step_fn, mode="reduce-overhead" if device.type == "cuda" else None)  # type: ignore[assignment]
    return step_fn


def _restore(run: _Run, resumed: dict[str, Any], path: Path) -> int:
    """Check that ``resumed`` (the checkpoint read from ``path``) is this run's, load its state, and return the
    steps it had done."""
    _check_resumable(path, resumed, run.recipe, run.options, len(run.dataset), run.variant_entry)
    load_model_state(run.model, resumed["model"], str(path))
    load_model_state(run.ema.module, resumed["ema"], str(path))
    run.optimizer.load_state_dict(resumed["optimizer"])
    run.scheduler.load_state_dict(resumed["scheduler"])
    run.scaler.load_state_dict(resumed["scaler"])
    restore_rng_state(resumed["rng"])
    return int(resumed["step"])


def _save(run: _Run, step: int) -> None:
    """Write the run's checkpoint after ``step`` steps."""
    save_checkpoint(
        run.checkpoint,
        run.recipe,
        run.model.state_dict(),
        ema=run.ema.module.state_dict(),
        optimizer=run.optimizer.state_dict(),
        scheduler=run.scheduler.state_dict(),
        scaler=run.scaler.state_dict(),
        step=step,
        epoch=step // run.steps_per_epoch,
        rng=rng_state(),
        args=run.options.to_dict(),
        train_images=len(run.dataset),
        backbone_weights=run.backbone_source,
        **({} if run.variant_entry is None else {VARIANT_KEY: run.variant_entry}),
    )


def _collate(run: _Run) -> PaddedCollate:
    """The loader's collate function: targets padded to a fixed box count on a GPU or for a compiled step
    (static shapes: no recompiles, CUDA graphs; an image with more boxes keeps its largest, where effdet keeps
    its first); to the batch's largest count on the CPU, where padding rows cost real time."""
    static = run.device.type == "cuda" or run.options.compile
    return PaddedCollate(
        DEFAULT_MAX_BOXES if static else None,
        DEFAULT_MAX_IGNORE_BOXES if static else None,
        overflow="largest",
        num_classes=run.recipe.num_classes,
    )


def _open_reporting(run: _Run, step: int, progress: bool | None) -> _Reporting:
    """The readout, and on rank 0 the step log and the progress bar, continuing after ``step``."""
    is_main = run.group.is_main
    log = open_step_log(run.options.log, run.options.out, step) if is_main else None
    bar = tqdm(
        total=run.total_steps,
        initial=step,
        desc="train",
        unit="step",
        disable=(None if progress is None else not progress) if is_main else True,
        dynamic_ncols=True,
    )
    readout = LossReadout(run.options.batch_size, run.group.world_size)
    return _Reporting(readout, log, bar, check_finite=not run.scaler.is_enabled())


def _loop(
    run: _Run,
    items: CocoDetection | CachedViews,
    step: int,
    progress: bool | None,
    on_epoch_end: Callable[[int, int, Path], None] | None,
) -> TrainResult:
    """Train from ``step`` to the run's last step, epoch by epoch, a checkpoint at each epoch's end."""
    reporting = _open_reporting(run, step, progress)
    collate = _collate(run)
    start_step = step
    try:
        for epoch in range(step // run.steps_per_epoch, math.ceil(run.total_steps / run.steps_per_epoch)):
            loader = _epoch_loader(run, items, collate, epoch, step)
            reporting.readout.start()
            for images, targets in reraise_worker_errors(loader):
                losses = _optimizer_step(run, images, targets, step)
                step += 1
                run.ema.update(run.model, step=step)
                _report(run, reporting, losses, step, epoch)
            _end_epoch(run, step, on_epoch_end)
    finally:
        reporting.bar.close()
        if reporting.log is not None:
            reporting.log.close()
    steps_run = step - start_step
    readout = reporting.readout
    return TrainResult(
        run.checkpoint,
        steps_run,
        run.total_steps,
        readout.images_per_s(steps_run),
        readout.last_loss,
        main_process=run.group.is_main,
    )


def _epoch_loader(
    run: _Run, items: CocoDetection | CachedViews, collate: PaddedCollate, epoch: int, step: int
) -> DataLoader:
    """The batches of ``epoch`` this process loads, from the one after ``step`` to the run's last."""
    return epoch_loader(
        items,
        epoch,
        run.options.batch_size,
        run.options.order_seed,
        first_batch=step - epoch * run.steps_per_epoch,
        end_batch=run.total_steps - epoch * run.steps_per_epoch,
        workers=run.options.workers,
        rank=run.group.rank,
        world_size=run.group.world_size,
        pin_memory=run.device.type == "cuda",
        collate=collate,
    )


def _optimizer_step(
    run: _Run, images: torch.Tensor | list[torch.Tensor], targets: PaddedTargets, step: int
) -> dict[str, torch.Tensor]:
    """Optimizer step ``step`` (0-based) on one batch: forward under autocast, scaled backward, clipped
    gradients, update; returns the losses (on the device, not read back)."""
    run.scheduler.step_update(step)
    images = to_device(images, run.device)
    targets = targets.to(run.device, non_blocking=True)
    if run.variant is not None:
        run.variant.before_step(run.model, step)
    with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
        losses = run.step_fn(images, targets)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(losses["loss"]).backward()
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.params, run.options.clip_norm, foreach=True)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return losses


def _report(run: _Run, reporting: _Reporting, losses: dict[str, torch.Tensor], step: int, epoch: int) -> None:
    """Add a step's losses to the readout; every ``--log-every`` steps, at each epoch's end and at the last step
    read them back, log their mean and show it on the bar."""
    reporting.readout.add(losses)
    if step % run.options.log_every == 0 or step == run.total_steps or step % run.steps_per_epoch == 0:
        lr = run.optimizer.param_groups[0]["lr"]
        row = reporting.readout.read(step, epoch, lr, check_finite=reporting.check_finite)
        if reporting.log is not None:
            reporting.log.write(row)
        reporting.bar.set_postfix(
            loss=f"{row['loss']:.3f}", lr=f"{lr:.3g}", img_s=f"{row['images_per_s']:.1f}", refresh=False
        )
    reporting.bar.update()


def _end_epoch(run: _Run, step: int, on_epoch_end: Callable[[int, int, Path], None] | None) -> None:
    """After an epoch: the final BatchNorm statistics at the last step, then rank 0's checkpoint and
    ``on_epoch_end``; every process waits for them."""
    if step == run.total_steps and run.options.bn_images:  # every process: SyncBatchNorm's collectives must meet
        options = run.options
        recompute_bn_statistics(
            run.ema.module, run.dataset, run.recipe.image_size, options.bn_images, options.workers, run.device
        )
    if run.group.is_main:
        _save(run, step)
        if on_epoch_end is not None:
            on_epoch_end(step, run.total_steps, run.checkpoint)
    barrier()
