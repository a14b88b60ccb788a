"""From a point of a search space to a candidate: define-by-run drawing (:func:`sample_point`), repair of what a
point leaves dangling, rejection of invalid or over-budget points, and the spec file of each candidate."""

from search.sampling.candidate import Candidate, Draft
from search.sampling.rejection import InvalidPoint, OverBudget, Rejected
from search.sampling.sample import sample_point
from search.sampling.stats import SampleStats
from search.sampling.trial import TrialLike

__all__ = ["Candidate", "Draft", "InvalidPoint", "OverBudget", "Rejected", "SampleStats", "TrialLike", "sample_point"]
