import sys

from effdet_graph.cli import main

sys.exit(main())
