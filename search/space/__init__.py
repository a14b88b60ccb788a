"""Search spaces as data: a ``specs/search/*.yaml`` file loaded into a typed :class:`SearchSpace` (its template,
its kind's choices, data set, proxy task, budget and sampler), checked when it loads (:mod:`.loader`,
:mod:`.schema`, :mod:`.template`, :mod:`.detector`, :mod:`.budget`, :mod:`.feasibility`); the kinds of search a
space can ask for are :mod:`search.space.kinds`."""

from search.space.budget import Budget
from search.space.detector import spec_params
from search.space.loader import builtin_space, load_search_space
from search.space.template import Template
from search.space.types import (
    PATH_SAMPLINGS,
    TOPOLOGY_KINDS,
    DatasetConfig,
    OneShotConfig,
    ProxyConfig,
    SamplerSettings,
    SearchSpace,
    topology_choices,
)

__all__ = [
    "SearchSpace",
    "load_search_space",
    "builtin_space",
    "Template",
    "DatasetConfig",
    "ProxyConfig",
    "OneShotConfig",
    "SamplerSettings",
    "Budget",
    "TOPOLOGY_KINDS",
    "PATH_SAMPLINGS",
    "topology_choices",
    "spec_params",
]
