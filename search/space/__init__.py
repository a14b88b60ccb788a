"""Search spaces as data: a ``specs/search/*.yaml`` file loaded into a typed :class:`SearchSpace` (its template,
its kind's choices, data set, proxy task, budget and sampler), checked when it loads."""

from search.space.budget import Budget
from search.space.loader import builtin_space, load_search_space
from search.space.types import DatasetConfig, OneShotConfig, ProxyConfig, SamplerSettings, SearchSpace

__all__ = [
    "Budget",
    "DatasetConfig",
    "OneShotConfig",
    "ProxyConfig",
    "SamplerSettings",
    "SearchSpace",
    "builtin_space",
    "load_search_space",
]
