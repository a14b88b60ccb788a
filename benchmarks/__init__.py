"""The project's benchmarks: speed and memory (the feature network, the whole detector, the training step and
loop, a frozen backbone), the search's overhead and cost-model filtering, and the ranking benchmark (how well
cheap ranking methods order feature-network topologies the way trained detectors do) with the studies built on
it. They use the project as a user would, through ``effdet_graph``'s and ``search``'s public API.

Each ``bench_<name>.py`` is a script, run as a module from the repository root (its docstring says what it
measures, ``--help`` its options)::

    python -m benchmarks.bench_feature_network --quick
    python -m benchmarks.bench_ranking --report-only

:mod:`benchmarks.ranking` is the ranking benchmark's harness (recipes, topologies, the store of runs, the ranking
methods, statistics and reports), with its recipes in ``benchmarks/recipes.yaml`` and the no-fusion control in
``benchmarks/specs/``; :mod:`benchmarks.image_by_image` is the per-image target assignment and loss that the
batched ones are checked and timed against. Results go to ``benchmarks/results/<name>.json``, with the machine
they were measured on; ``README.md`` and ``docs/`` quote them (``tests/test_readme.py`` checks every figure).
The data sets and training runs they make go to a temporary folder or under ``runs/`` (the ranking benchmark's
under ``runs/ranking``).
"""
