"""Search over feature networks and compound scaling: search spaces as data, define-by-run sampling with
repair / rejection, and params / MACs budgets checked before any training.

Imports go one way: ``search`` uses :mod:`graphspec` and :mod:`effdet_graph`, never the reverse; it does not
import Optuna or Ray (any object with Optuna's ``suggest_*`` calls drives :func:`sample_point`).
"""

from search.budget import Budget, enforce_budget, feature_network_cost, whole_detector_cost
from search.candidate import Candidate, Draft
from search.detector import DetectorSettings
from search.rejection import InvalidPoint, OverBudget, Rejected
from search.sample import sample_point
from search.space import SearchSpace, builtin_space, load_search_space
from search.stats import SampleStats
from search.trial import TrialLike

__all__ = [
    "Budget",
    "Candidate",
    "DetectorSettings",
    "Draft",
    "InvalidPoint",
    "OverBudget",
    "Rejected",
    "SampleStats",
    "SearchSpace",
    "TrialLike",
    "builtin_space",
    "enforce_budget",
    "feature_network_cost",
    "load_search_space",
    "sample_point",
    "whole_detector_cost",
]
