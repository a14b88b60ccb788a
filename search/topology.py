"""Search feature-network topologies with Ray Tune: NAS-FPN-style merging cells (``--space nasfpn_cells``,
the default) or BiFPN-style optional edges and per-node fusion (``--space bifpn_edges``).

Locally (starts a local Ray, makes the built-in synthetic data set, small budget; minutes on a laptop):

    python search/topology.py [--space bifpn_edges] [--trials 8] [--smoke-test]

On a GPU cluster (the same script; Ray's launcher runs it on the head node, which joins the cluster):

    ray up search/cluster.yaml
    ray submit search/cluster.yaml search/topology.py -- --trials 64 --storage s3://BUCKET/effdet-graph

Needs: this project installed (``pip install -e '.[search]'``). Results: ``runs/search/<space>/``.
"""

from __future__ import annotations

import sys

from search.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("nasfpn_cells", __doc__, spaces=("nasfpn_cells", "bifpn_edges")))
