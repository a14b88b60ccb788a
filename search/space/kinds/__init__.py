"""The kinds of search a space file can ask for, one module each: ``read(reader, template, num_classes)``
returns the kind's choices, whose ``draw(template, trial)`` samples one point: BiFPN-style edges
(:mod:`.edges`), NAS-FPN-style cells (:mod:`.cells`) and compound scaling (:mod:`.compound_scaling`)."""

from search.space.kinds.cells import CellChoices, cell_name, fill_name, merge_fields
from search.space.kinds.compound_scaling import CompoundChoices
from search.space.kinds.edges import EdgeChoices, OptionalEdge

__all__ = [
    "EdgeChoices",
    "OptionalEdge",
    "CellChoices",
    "cell_name",
    "fill_name",
    "merge_fields",
    "CompoundChoices",
]
