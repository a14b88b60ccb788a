"""The spec language for feature networks: safe YAML -> validated, typed DAG -> analytic cost.

No detector knowledge lives here; :mod:`effdet_graph` compiles a :class:`Spec` to PyTorch.
"""

from graphspec.errors import ConfigError, InputError, Location, SpecError
from graphspec.graph import cell_graph, check_graph, node_depths, schedule
from graphspec.limits import Limits
from graphspec.model import BatchNormStyle, DerivedLevel, EdgeStyle, Node, Spec, level_name
from graphspec.params import declared_params, parse_assignments
from graphspec.parse import build_spec, load_spec, load_spec_document, loads_spec, loads_spec_document
from graphspec.reader import Reader

__all__ = [
    "BatchNormStyle",
    "ConfigError",
    "DerivedLevel",
    "EdgeStyle",
    "InputError",
    "Limits",
    "Location",
    "Node",
    "Reader",
    "Spec",
    "SpecError",
    "build_spec",
    "cell_graph",
    "check_graph",
    "declared_params",
    "level_name",
    "load_spec",
    "load_spec_document",
    "loads_spec",
    "loads_spec_document",
    "node_depths",
    "parse_assignments",
    "schedule",
]
