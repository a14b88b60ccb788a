"""Export a compiled feature network to ONNX (``.onnx``) or a ``torch.export`` program (``.pt2``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from effdet_graph.atomic import atomic_output
from graphspec import InputError

EXPORT_SUFFIXES = (".onnx", ".pt2")


class TensorArgs(nn.Module):
    """Adapt ``forward(list[Tensor]) -> list[Tensor]`` to ``forward(*Tensor) -> tuple[Tensor, ...]``,
    the calling convention exporters expect."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, *features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.network(list(features)))


def export_network(network: nn.Module, features: list[torch.Tensor], path: str | Path) -> None:
    """Trace ``network`` on ``features`` and write it to ``path`` (format chosen by the suffix).

    Raises:
        InputError: the suffix names no export format.
    """
    path = Path(path)
    if path.suffix not in EXPORT_SUFFIXES:
        raise InputError(f"{path}: unknown export format '{path.suffix}'; use one of {', '.join(EXPORT_SUFFIXES)}")
    module = TensorArgs(network).eval()
    args = tuple(features)
    with atomic_output(path) as tmp:
        if path.suffix == ".pt2":
            torch.export.save(torch.export.export(module, args), tmp)
        else:
            names = [f"P{i}" for i in range(len(args))]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(module, args, dynamo=True, input_names=names, verbose=False)
            if program is None:  # only the legacy exporter (dynamo=False) returns None
                raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNXProgram")
            program.save(str(tmp))
