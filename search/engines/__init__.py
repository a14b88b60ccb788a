"""Thin adapters from a search space + objective to a search library (Optuna, Ray Tune).

The space, the sampling and the objective never import these libraries; only the modules here do.
"""
