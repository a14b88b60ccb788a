"""Search over feature networks and compound scaling, grouped by stage:

- :mod:`search.space`: search spaces as data (types, loader, schema, template, feasibility, the space kinds);
- :mod:`search.sampling`: a point of a space to a candidate (define-by-run drawing, repair, rejection, spec text);
- :mod:`search.strategies`: how candidates are scored (proxy training, the one-shot supernet);
- :mod:`search.engines`: the Optuna and Ray Tune engines, registered by name;
- :mod:`search.reporting`: trial records, leaderboard, best specs, retraining;
- :mod:`search.run` (one search, start to finish), :mod:`search.cli` (the command and the scripts),
  :mod:`search.objective` (what is optimised).

Imports go one way: ``search`` uses :mod:`graphspec` and :mod:`effdet_graph`, never the reverse. ``import search``
imports nothing else (neither torch nor a search library); the sampling never imports Optuna or Ray (any object
with Optuna's ``suggest_*`` calls drives :func:`search.sampling.sample_point`).
"""
