"""How a search scores its candidates, behind one interface (:class:`~search.strategies.base.SearchStrategy`),
registered by name in :data:`STRATEGIES`: ``proxy`` trains each one briefly (:mod:`search.strategies.proxy`);
``oneshot`` trains a weight-sharing supernet once and scores candidates with the weights they inherit
(:mod:`search.strategies.oneshot`)."""

from search.registry import Registry
from search.strategies.base import SearchStrategy
from search.strategies.proxy import ProxyTask, prepare_dataset, proxy_options

STRATEGIES: Registry[SearchStrategy] = Registry("strategy", "--strategy")
"""The strategies ``--strategy`` picks from; another registers with ``STRATEGIES.register(name, "module:Class")``."""
STRATEGIES.register("proxy", "search.strategies.proxy:ProxyStrategy")
STRATEGIES.register("oneshot", "search.strategies.oneshot.strategy:OneShotStrategy")

__all__ = ["STRATEGIES", "SearchStrategy", "ProxyTask", "proxy_options", "prepare_dataset"]
