"""Sample one point of a search space with a define-by-run trial: draw, repair, write, check, cost, budget.

``sample_point(space, trial)`` returns a :class:`Candidate` or raises a :class:`Rejected`
(:class:`InvalidPoint` or :class:`OverBudget`); both outcomes are counted in ``stats``. It never imports a
search library: the engine maps a rejection to its own notion (``optuna.TrialPruned``, a Tune result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effdet_graph.builtin import shown_path
from graphspec import SpecError, loads_spec
from graphspec.cost import Cost
from search.sampling.candidate import Candidate, Draft, spec_file_name
from search.sampling.rejection import InvalidPoint, OverBudget, Rejected
from search.sampling.spec_text import render_spec_text, with_header
from search.sampling.stats import SampleStats
from search.sampling.trial import RecordingTrial, TrialLike

if TYPE_CHECKING:
    from search.space.types import SearchSpace
from effdet_graph.model import feature_network_cost


def sample_point(
    space: SearchSpace, trial: TrialLike, stats: SampleStats | None = None, detector_cost: Cost | None = None
) -> Candidate:
    """Sample ``trial``'s point of ``space``; see the module docstring. Same trial values, same candidate.

    ``detector_cost``: the whole detector's cost of this point where it was counted before (Ray's trainable
    rebuilds the candidate its driver sampled); it is used instead of counting again (0.1-1 s).
    """
    stats = SampleStats() if stats is None else stats
    stats.sampled += 1
    recorder = RecordingTrial(trial)
    try:
        candidate = _sample(space, recorder, stats, detector_cost)
    except Rejected as rejection:
        rejection.suggestions = dict(recorder.values)
        if isinstance(rejection, OverBudget):
            stats.rejected_budget += 1
        else:
            stats.rejected_invalid += 1
        raise
    return candidate


def _sample(space: SearchSpace, trial: RecordingTrial, stats: SampleStats, known_cost: Cost | None) -> Candidate:
    draft = space.choices.draw(space.template, trial)
    file_name = spec_file_name(space.name, trial.number)
    body = render_spec_text(
        space.template.data, file_name.removesuffix(".yaml"), _description(space), draft.params, draft.cell
    )
    try:
        spec = loads_spec(body, file_name)
    except SpecError as exc:  # the kinds repair or reject what they can foresee; this is the safety net
        raise InvalidPoint(f"the sampled spec does not load: {exc}") from exc
    if draft.repairs:
        stats.repaired += 1
    cost, channels = feature_network_cost(spec, draft.detector)
    detector_cost = space.budget.enforce(spec, draft.detector, cost, known_cost)
    header = _header(space, trial, draft, channels, cost)
    return Candidate(
        space=space.name,
        space_file=space.file,
        trial_number=trial.number,
        suggestions=dict(trial.values),
        spec_text=with_header(header, body),
        overrides=dict(draft.params),
        detector=draft.detector,
        in_channels=channels,
        cost=cost,
        detector_cost=detector_cost,
        repairs=draft.repairs,
    )


def _description(space: SearchSpace) -> str:
    return f"{space.kind} candidate from {space.name}, template {space.template.spec.name}"


def _header(
    space: SearchSpace, trial: RecordingTrial, draft: Draft, channels: tuple[int, ...], cost: Cost
) -> list[str]:
    """The comment lines at the top of a candidate's spec file."""
    d = draft.detector
    size = f"{d.resolution}x{d.resolution}"
    detector = f"phi {d.phi}, {d.backbone}, head depth {d.head.depth}, {size} input, {d.num_classes} classes"
    values = ", ".join(f"{name}={value}" for name, value in trial.values.items())
    costed = f"{cost.params:,} params, {cost.macs / 1e9:.4f} GMACs (analytic)"
    rebuild = f"effdet-graph build FILE --input-size {d.resolution} --in-channels {','.join(map(str, channels))}"
    return [
        f"Candidate of search space '{space.name}' ({shown_path(space.file)}), trial {trial.number}.",
        f"Template: {shown_path(space.template.path)}. Detector: {detector}.",
        f"Trial values: {values}",
        *(f"Repair: {repair}" for repair in draft.repairs),
        f"Feature network at {size}, in_channels {list(channels)}: {costed}.",
        f"Rebuild: {rebuild}",
    ]
