"""The spec language for feature networks: safe YAML -> validated, typed DAG -> analytic cost.

No detector knowledge lives here; :mod:`effdet_graph` compiles a :class:`Spec` to PyTorch.
"""

from graphspec.errors import InputError, Location, SpecError
from graphspec.graph import cell_graph, check_graph, node_depths, schedule
from graphspec.model import BatchNormStyle, DerivedLevel, EdgeStyle, Node, Spec, level_name
from graphspec.params import parse_assignments
from graphspec.parse import load_spec, loads_spec

__all__ = [
    "BatchNormStyle",
    "DerivedLevel",
    "EdgeStyle",
    "InputError",
    "Location",
    "Node",
    "Spec",
    "SpecError",
    "cell_graph",
    "check_graph",
    "level_name",
    "load_spec",
    "loads_spec",
    "node_depths",
    "parse_assignments",
    "schedule",
]
