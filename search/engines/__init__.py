"""Search engines behind one interface (:class:`~search.engines.base.SearchEngine`), registered by name in
:data:`ENGINES`.

The space, the sampling and the objective never import a search library; only the engine modules here do,
and only when their engine is used: ``optuna`` (TPE / NSGA-II studies in a database, in this process or in
workers sharing it) and ``ray`` (Ray Tune with OptunaSearch and ASHA, locally or on a cluster).
"""

from search.engines.base import SearchEngine
from search.registry import Registry

ENGINES: Registry[SearchEngine] = Registry("engine", "--engine")
"""The engines ``--engine`` picks from; another registers with ``ENGINES.register(name, "package.module:Class")``."""
ENGINES.register("optuna", "search.engines.optuna_engine:OptunaEngine")
ENGINES.register("ray", "search.engines.ray_engine:RayEngine")

__all__ = ["ENGINES", "SearchEngine"]
