"""Retraining a search's best candidates stand-alone (``effdet-graph search SPACE --retrain K``).

A search ranks candidates by a proxy (a short training, or weights inherited from a supernet); what a user wants is
the found topology trained on its own. :func:`retrain_best` trains the space's template and the ``K`` best complete
trials that cost no more than the template (params and MACs on the budget's scope), each with seeds 0 to N-1 and the
space's ``proxy`` training for the given steps, through the comparison of ``effdet-graph compare --seeds``: the
same backbone and heads, each row's mean AP, its spread, and the rows it is within noise of. The table goes to
``RESULTS/retrain.txt``, the rows to ``retrain.json``; the runs live in ``RESULTS/retrain/`` and a killed
retraining resumes them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from effdet_graph import DetectorConfig, compare_specs
from effdet_graph.atomic import atomic_output
from effdet_graph.comparison import CompareRow, format_table, rows_to_json
from effdet_graph.training import CHECKPOINT_NAME, train_and_evaluate
from graphspec import Spec, loads_spec
from graphspec.cost import Cost
from search.objective import Objective
from search.reporting.results import TrialRecord, ranked
from search.request import SearchRequest
from search.space.detector import spec_params
from search.space.types import SearchSpace
from search.strategies.proxy import proxy_options

__all__ = ["RETRAIN_DIR", "RETRAIN_JSON", "RETRAIN_TABLE", "SpaceTrainer", "retrain_best", "retrain_choice"]

RETRAIN_DIR = "retrain"
RETRAIN_TABLE = "retrain.txt"
RETRAIN_JSON = "retrain.json"


class SpaceTrainer:
    """A comparison trainer (:class:`~effdet_graph.comparison.table.Trainer`): the space's ``proxy`` training of
    ``detector`` for ``steps`` steps, each run in ``out/<spec>-<steps>steps-seed<N>/`` (resumed when there)."""

    def __init__(
        self,
        space: SearchSpace,
        detector: DetectorConfig,
        data: Path,
        out: Path,
        steps: int,
        device: str | None = None,
        progress: bool | None = None,
    ):
        self.space = space
        self.detector = detector
        self.data = data
        self.out = out
        self.steps = steps
        self.device = device
        self.progress = progress
        self.num_classes = detector.num_classes

    def __call__(self, spec: str | Path, overrides: dict[str, Any], seed: int = 0) -> dict[str, float]:
        out = self.out / f"{Path(spec).stem}-{self.steps}steps-seed{seed}"
        checkpoint = out / CHECKPOINT_NAME
        options = proxy_options(self.space, self.detector, self.data, Path(spec), out, self.steps, seed, self.device)
        options = dataclasses.replace(
            options, overrides=dict(overrides), resume=checkpoint if checkpoint.exists() else None
        )
        return dict(train_and_evaluate(options, progress=self.progress).metrics)


def template_spec(space: SearchSpace, detector: DetectorConfig) -> Spec:
    """The space's template with the parameters its candidates get (EfficientDet-D``phi``'s width and repeats)."""
    template = space.template
    return loads_spec(
        template.path.read_text(encoding="utf-8"), str(template.path), spec_params(template.spec, detector.phi, {})
    )


def retrain_choice(records: Sequence[TrialRecord], objective: Objective, top_k: int, limit: Cost) -> list[TrialRecord]:
    """The ``top_k`` best complete trials (on the objective's first metric) with a spec file and params and MACs
    no more than ``limit``'s."""
    best: list[TrialRecord] = []
    for record in ranked(records, objective):
        if len(best) == top_k or record.state != "complete":
            break
        if record.spec_file is None or record.params is None or record.macs is None:
            continue
        if record.params <= limit.params and record.macs <= limit.macs:
            best.append(record)
    return best


def retrain_best(
    space: SearchSpace,
    detector: DetectorConfig,
    records: Sequence[TrialRecord],
    request: SearchRequest,
    data: Path,
    results_dir: Path,
    steps: int,
) -> list[CompareRow]:
    """Train the template and the ``request.retrain`` best trials no larger than it stand-alone,
    ``request.retrain_seeds`` times each.

    Args:
        space: a topology search space (one detector for every candidate).
        detector: its candidates' detector.
        records: the search's trials.
        request: the search: its objective ranks the trials (its first metric); ``retrain`` trials are retrained,
            ``retrain_seeds`` times each, on its ``device``, showing each training's progress bar by ``progress``.
        data: the data set folder the search used.
        results_dir: the search's results folder: runs in ``retrain/``, the table in ``retrain.txt``, the rows
            (with each seed's metrics) in ``retrain.json``.
        steps: training steps of each (the space's ``proxy`` training otherwise).

    Returns:
        The rows: the template first, then the trials best first.
    """
    template = template_spec(space, detector)
    chosen = retrain_choice(records, request.goal, request.retrain, space.budget.cost(template, detector))
    seeds = request.retrain_seeds
    trainer = SpaceTrainer(space, detector, data, results_dir / RETRAIN_DIR, steps, request.device, request.progress)
    rows = compare_specs(
        [space.template.path, *(Path(str(record.spec_file)) for record in chosen)],
        phi=detector.phi,
        backbone=detector.backbone,
        image_size=space.proxy.image_size or detector.resolution,
        train=trainer,
        seeds=seeds,
        head_depth=detector.head.depth,
        latency_runs=1,
    )
    with atomic_output(results_dir / RETRAIN_JSON) as tmp:
        tmp.write_text(json.dumps({"steps": steps, "seeds": seeds, "rows": rows_to_json(rows)}, indent=1) + "\n")
    with atomic_output(results_dir / RETRAIN_TABLE) as tmp:
        tmp.write_text(format_table(rows) + "\n")
    return rows
