"""From a point of a search space to a candidate: define-by-run drawing (:func:`sample_point`, through any object
with Optuna's ``suggest_*`` calls: :mod:`.trial`), repair of what a point leaves dangling (:mod:`.repair`),
rejection of invalid or over-budget points (:mod:`.rejection`, counted in :mod:`.stats`), and the spec file of
each candidate (:mod:`.candidate`, :mod:`.spec_text`)."""

from search.sampling.candidate import Candidate, Draft
from search.sampling.rejection import InvalidPoint, OverBudget, Rejected
from search.sampling.repair import NodeData, drop_dead_nodes, find_cycle, nearest_level
from search.sampling.sample import sample_point
from search.sampling.spec_text import render_spec_text
from search.sampling.stats import SampleStats
from search.sampling.trial import Choice, SeededTrial, TrialLike

__all__ = [
    "sample_point",
    "TrialLike",
    "Choice",
    "SeededTrial",
    "Draft",
    "Candidate",
    "render_spec_text",
    "NodeData",
    "find_cycle",
    "drop_dead_nodes",
    "nearest_level",
    "Rejected",
    "InvalidPoint",
    "OverBudget",
    "SampleStats",
]
