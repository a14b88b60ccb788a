"""Search engines behind one interface (:class:`~search.engines.base.SearchEngine`), registered by name.

The space, the sampling and the objective never import a search library; only the engine modules here do,
and only when their engine is used: ``optuna`` (TPE / NSGA-II studies in a database, in this process or in
workers sharing it) and ``ray`` (Ray Tune with OptunaSearch and ASHA, locally or on a cluster).
"""

from search.engines.base import (
    MakeEvaluate,
    SearchEngine,
    TrialResources,
    engine_class,
    engine_names,
    register_engine,
)

register_engine("optuna", "search.engines.optuna_engine:OptunaEngine")
register_engine("ray", "search.engines.ray_engine:RayEngine")

__all__ = ["MakeEvaluate", "SearchEngine", "TrialResources", "engine_class", "engine_names", "register_engine"]
