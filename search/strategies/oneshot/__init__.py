"""One-shot (weight-sharing) search over feature-network topologies: a supernet holds every node, edge and merge
of a topology search space, and runs one candidate's path at a time (:mod:`search.strategies.oneshot.supernet`); it
is trained inside EfficientDet by the training loop, one sampled candidate per step
(:mod:`search.strategies.oneshot.training`, :mod:`search.strategies.oneshot.sampling`), and read back with its
candidates' weights (:mod:`search.strategies.oneshot.checkpoint`)."""

from search.strategies.oneshot.checkpoint import TrainedSupernet, load_supernet
from search.strategies.oneshot.evaluation import InheritedWeights, evaluate_inherited, load_inherited
from search.strategies.oneshot.sampling import FairSampler, UniformSampler, make_sampler
from search.strategies.oneshot.strategy import SUPERNET_DIR, OneShotStrategy, train_space_supernet
from search.strategies.oneshot.supernet import Supernet
from search.strategies.oneshot.training import train_supernet
from search.strategies.oneshot.union import UnionSpec, union_spec

__all__ = [
    "OneShotStrategy",
    "SUPERNET_DIR",
    "train_space_supernet",
    "union_spec",
    "UnionSpec",
    "Supernet",
    "train_supernet",
    "make_sampler",
    "UniformSampler",
    "FairSampler",
    "load_supernet",
    "TrainedSupernet",
    "evaluate_inherited",
    "load_inherited",
    "InheritedWeights",
]
