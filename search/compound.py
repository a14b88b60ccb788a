"""Search EfficientDet's compound-scaling coefficients (alpha, beta, gamma, then phi) with Ray Tune.

Locally (starts a local Ray, makes the built-in synthetic data set, small budget; minutes on a laptop):

    python search/compound.py [--trials 8] [--smoke-test]

On a GPU cluster (the same script; Ray's launcher runs it on the head node, which joins the cluster):

    ray up search/cluster.yaml
    ray submit search/cluster.yaml search/compound.py -- --trials 64 --storage s3://BUCKET/effdet-graph

Needs: this project installed (``pip install -e '.[search]'``). Results: ``runs/search/compound/``
(leaderboard.csv, best/, pareto.png, trials/), or under ``--storage`` on a cluster.
"""

from __future__ import annotations

import sys

from search.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("compound", __doc__))
