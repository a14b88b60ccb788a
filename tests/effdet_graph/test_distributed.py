"""Training on several processes: DistributedDataParallel over gloo on this CPU, as torchrun starts it.

Two checks. The gradient of one step on 2 processes, each with its half of the global batch, equals the
gradient of one process on the whole batch (BatchNorm in eval mode, the only part whose statistics
depend on how the batch is split; atol 1e-6). And ``torchrun --nproc-per-node 2 ... train`` runs end to
end: one checkpoint, written once, that ``eval`` reads; the first step's loss within 5% of a
single-process run of the same global batch (they differ by BatchNorm's per-process batch statistics).
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from effdet_graph.data.checks import open_split
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.data.transforms import ResizePad
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.model.detector import DetectorTrainer
from effdet_graph.training.data import epoch_loader
from effdet_graph.training.distributed import all_reduce_sum
from effdet_graph.training.seeding import seed_everything

TRAIN = [
    "--spec", "bifpn", "--phi", "0", "--backbone", "mobilenetv3_small_050", "--image-size", "128",
    "--set", "width=16", "--set", "repeats=1", "--batch-size", "4", "--lr", "0.01", "--steps", "4",
    "--log-every", "1", "--bn-images", "8",
]  # fmt: skip
GLOBAL_BATCH = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 train and 2 val images of 128 x 128."""
    out = tmp_path_factory.mktemp("ddp") / "shapes"
    make_dataset(out, images=10, seed=3, image_size=128)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe(data: Path) -> ModelRecipe:
    dataset = open_split(data, "train")
    return ModelRecipe.create(
        Path("specs/bifpn.yaml"), 0, 128, dataset.label_to_category, dataset.class_names,
        "mobilenetv3_small_050", {"width": 16, "repeats": 1},
    )  # fmt: skip


def _gradients(data: Path, rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """One step's gradients of this process, on its slice of the first global batch of epoch 0."""
    torch.set_num_threads(1)
    seed_everything(0)
    recipe = _recipe(data)
    model = recipe.build().eval()  # BatchNorm on running statistics, no stochastic depth
    dataset = open_split(data, "train")
    dataset.transform = ResizePad(128)
    images, targets = next(iter(epoch_loader(dataset, 0, GLOBAL_BATCH, 0, rank=rank, world_size=world_size)))
    reduce = all_reduce_sum if world_size > 1 else None
    trainer = DetectorTrainer(model, 128, reduce, world_size)
    step = torch.nn.parallel.DistributedDataParallel(trainer) if world_size > 1 else trainer
    step(images, targets)["loss"].backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _worker(rank: int, world_size: int, port: int, data: Path, out: Path) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        grads = _gradients(data, rank, world_size)
        if rank == 0:
            torch.save(grads, out)
    finally:
        dist.destroy_process_group()


def test_two_processes_compute_the_gradient_of_the_global_batch(data, tmp_path):
    out = tmp_path / "grads.pt"
    mp.spawn(_worker, args=(2, _free_port(), data, out), nprocs=2, join=True)
    distributed, single = torch.load(out, weights_only=True), _gradients(data, 0, 1)
    assert distributed.keys() == single.keys() and len(single) > 100
    for name, grad in single.items():
        torch.testing.assert_close(distributed[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def _log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # about 40 s: three commands, each importing torch
def test_torchrun_trains_on_two_processes_and_writes_one_checkpoint(data, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun is not None, "torchrun comes with torch"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "effdet_graph.cli", "train"]
    multi = subprocess.run(
        [*command, "--data", str(data), *TRAIN, "--out", str(tmp_path / "multi"), "--eval"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert multi.stdout.count("wrote ") == 1 and "val AP " in multi.stdout  # rank 0 alone reports
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == ["last.pt", "log.csv"]

    single = subprocess.run(
        [sys.executable, "-m", "effdet_graph.cli", "train", "--data", str(data), *TRAIN, "--out", str(tmp_path / "1")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    rows_multi, rows_single = _log(tmp_path / "multi" / "log.csv"), _log(tmp_path / "1" / "log.csv")
    assert [r["step"] for r in rows_multi] == [r["step"] for r in rows_single] == ["1", "2", "3", "4"]
    assert [r["lr"] for r in rows_multi] == [r["lr"] for r in rows_single]
    assert float(rows_multi[0]["loss"]) == pytest.approx(float(rows_single[0]["loss"]), rel=0.05)

    evaluated = subprocess.run(
        [sys.executable, "-m", "effdet_graph.cli", "eval", "--data", str(data),
         "--checkpoint", str(tmp_path / "multi" / "last.pt"), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert '"AP"' in evaluated.stdout
