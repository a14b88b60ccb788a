"""The training loop: focal + Huber loss, SGD with warmup and cosine decay, EMA weights, gradient
clipping, AMP on CUDA, a checkpoint at every epoch end, and exact resumption.

The checkpoint ``OUT/last.pt`` (see :mod:`effdet_graph.io.checkpoint`) holds, besides the model recipe
and weights: ``ema``, ``optimizer``, ``scheduler``, ``scaler`` state, ``step`` (optimizer steps
done), ``epoch`` (epochs completed, ``step // steps_per_epoch``), ``rng`` (global generator states), ``args``
(:meth:`TrainOptions.to_dict`) and ``train_images``. Resuming from it restores all of these and
continues at batch ``step % steps_per_epoch`` of epoch ``epoch``. The last checkpoint's EMA weights
have their BatchNorm statistics recomputed (:mod:`effdet_graph.training.batchnorm`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3
from tqdm import tqdm

from effdet_graph.builtin import resolve_spec_path
from effdet_graph.data.transforms import TrainTransform
from effdet_graph.device import resolve_device
from effdet_graph.errors import CheckpointError, DatasetError
from effdet_graph.io.checkpoint import load_model_state, read_checkpoint, save_checkpoint
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.model.detector import DetectorTrainer
from effdet_graph.training.batchnorm import recompute_bn_statistics
from effdet_graph.training.data import epoch_loader, open_split
from effdet_graph.training.optim import build_optimizer, build_scheduler
from effdet_graph.training.options import RESUME_MUST_MATCH, TrainOptions
from effdet_graph.training.seeding import deterministic, restore_rng_state, rng_state, seed_everything
from effdet_graph.training.step_log import open_step_log
from graphspec import InputError

__all__ = ["CHECKPOINT_NAME", "TrainResult", "train"]

CHECKPOINT_NAME = "last.pt"
#: Recipe entries a resumed run must share with its checkpoint (beyond fitting weights).
_RECIPE_MUST_MATCH = ("phi", "backbone", "spec_params", "image_size", "label_to_category")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: the checkpoint, the steps run now and in all, the mean throughput of
    the steps run now (images per second, data loading included, checkpoints not) and the last loss."""

    checkpoint: Path
    steps_run: int
    total_steps: int
    images_per_s: float
    final_loss: float


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it, else fp16; no autocast on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _check_resumable(
    path: Path, data: dict[str, Any], recipe: ModelRecipe, options: TrainOptions, train_images: int
) -> None:
    """The checkpoint must have been written by a run with the same model, data and schedule."""
    if data.get("args") is None or "optimizer" not in data:
        raise CheckpointError(f"{path}: holds weights only (no training state); it can be evaluated, not resumed")
    stored, wanted = data["args"], options.to_dict()
    diffs = [
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
        if stored.get(k) != wanted[k] and not (k == "scale_range" and tuple(stored.get(k)) == tuple(wanted[k]))
    ]
    if data.get("train_images") != train_images:
        diffs.append(f"train_images: checkpoint {data.get('train_images')}, this run {train_images}")
    if diffs:
        raise CheckpointError(
            f"{path}: cannot resume with other settings ({'; '.join(diffs)}); use the options the run was started with"
        )


def train(
    options: TrainOptions, progress: bool | None = True, on_epoch_end: Callable[[int, int, Path], None] | None = None
) -> TrainResult:
    """Run (or resume) training; write ``options.out / CHECKPOINT_NAME`` at every epoch end and at the end.

    With the same options (and the same hardware and thread count) two runs give the same weights, and
    a run resumed from any of its checkpoints ends with the weights of an uninterrupted one.
    ``progress``: show a tqdm bar (``None``: only when stderr is a terminal). ``on_epoch_end(step,
    total_steps, checkpoint)`` runs after each epoch's checkpoint is written (a search measures
    intermediate AP there); an exception it raises ends the run.

    Raises:
        DatasetError: the training split is missing, broken, empty or smaller than a batch.
        CheckpointError: ``options.resume`` is unreadable or from another model or run.
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
    with deterministic():
        return _train(options, resumed, progress, on_epoch_end)


def _train(
    options: TrainOptions,
    resumed: dict[str, Any] | None,
    progress: bool | None,
    on_epoch_end: Callable[[int, int, Path], None] | None,
) -> TrainResult:
    checkpoint = options.out / CHECKPOINT_NAME
    seed_everything(options.seed)
    device = resolve_device(options.device)
    amp_dtype = _amp_dtype(device)

    dataset = open_split(options.data, "train", options.seed)
    steps_per_epoch = len(dataset) // options.batch_size
    if steps_per_epoch == 0:
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
    dataset.transform = TrainTransform(recipe.image_size, (low, high))
    model = recipe.build().to(device).to(memory_format=torch.channels_last).train()  # faster convs, CPU and GPU
    trainer = DetectorTrainer(model, recipe.image_size).to(device)
    optimizer = build_optimizer(model, options.lr, options.momentum, options.weight_decay)
    total_steps = options.total_steps(steps_per_epoch)
    scheduler = build_scheduler(optimizer, total_steps, options.warmup(total_steps))
    ema = ModelEmaV3(model, decay=options.ema_decay, use_warmup=True)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    step = 0
    if resumed is not None and options.resume is not None:
        _check_resumable(options.resume, resumed, recipe, options, len(dataset))
        load_model_state(model, resumed["model"], str(options.resume))
        load_model_state(ema.module, resumed["ema"], str(options.resume))
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        scaler.load_state_dict(resumed["scaler"])
        restore_rng_state(resumed["rng"])
        step = int(resumed["step"])

    def save() -> None:
        save_checkpoint(
            checkpoint,
            recipe,
            model.state_dict(),
            ema=ema.module.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            scaler=scaler.state_dict(),
            step=step,
            epoch=step // steps_per_epoch,
            rng=rng_state(),
            args=options.to_dict(),
            train_images=len(dataset),
        )

    log = open_step_log(options.log, options.out, step)
    bar = tqdm(
        total=total_steps,
        initial=step,
        desc="train",
        unit="step",
        disable=None if progress is None else not progress,
        dynamic_ncols=True,
    )
    start_step, busy, loss_value = step, 0.0, math.nan
    try:
        for epoch in range(step // steps_per_epoch, math.ceil(total_steps / steps_per_epoch)):
            loader = epoch_loader(
                dataset,
                epoch,
                options.batch_size,
                options.seed,
                first_batch=step - epoch * steps_per_epoch,
                end_batch=total_steps - epoch * steps_per_epoch,
                workers=options.workers,
            )
            last = time.perf_counter()
            for images, targets in loader:
                scheduler.step_update(step)
                lr = optimizer.param_groups[0]["lr"]
                images = images.to(device, memory_format=torch.channels_last, non_blocking=True)
                targets = [{k: t[k].to(device) for k in ("boxes", "labels", "ignore_boxes")} for t in targets]
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    losses = trainer(images, targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(losses["loss"]).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip_norm)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                ema.update(model, step=step)
                values = {k: v.item() for k, v in losses.items()}
                if not math.isfinite(values["loss"]) and not scaler.is_enabled():
                    raise InputError(
                        f"the loss became {values['loss']} at step {step} (lr {lr:.4g}); "
                        "lower --lr or raise --warmup-steps"
                    )
                now = time.perf_counter()
                rate = options.batch_size / (now - last)
                busy += now - last
                last, loss_value = now, values["loss"]
                log.write({"step": step, "epoch": epoch, "lr": lr, **values, "images_per_s": rate})
                bar.set_postfix(loss=f"{values['loss']:.3f}", lr=f"{lr:.3g}", img_s=f"{rate:.1f}", refresh=False)
                bar.update()
            if step == total_steps and options.bn_images:
                recompute_bn_statistics(
                    ema.module, dataset, recipe.image_size, options.bn_images, options.workers, device
                )
            save()
            if on_epoch_end is not None:
                on_epoch_end(step, total_steps, checkpoint)
    finally:
        bar.close()
        log.close()
    run = step - start_step
    return TrainResult(checkpoint, run, total_steps, run * options.batch_size / busy if run else 0.0, loss_value)
