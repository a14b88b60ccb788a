"""A trained supernet read back from its checkpoint (:mod:`search.strategies.oneshot.training`), and the stand-alone
weights of any of its candidates: the detector a candidate would be, with the supernet's backbone, heads and path
weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from effdet_graph import EfficientDet, ModelRecipe
from effdet_graph.errors import CheckpointError
from effdet_graph.io import VARIANT_KEY, load_model_state, read_checkpoint
from graphspec import InputError, Spec
from search.sampling.candidate import Candidate
from search.space.loader import load_search_space
from search.space.types import SearchSpace
from search.strategies.oneshot.supernet import Supernet, supernet_factory
from search.strategies.oneshot.training import SUPERNET
from search.strategies.oneshot.union import union_spec

_ENTRIES = ("space_file", "space_text", "sampling")
"""The entries of a supernet checkpoint's ``variant`` besides ``kind`` and ``load_with``."""


@dataclass(frozen=True)
class TrainedSupernet:
    """A supernet detector (eval mode, CPU): ``model.fpn`` is the supernet of ``space``; ``recipe`` the union
    detector's; ``sampling`` how its training drew candidates."""

    model: EfficientDet
    space: SearchSpace
    recipe: ModelRecipe
    sampling: str

    @property
    def supernet(self) -> Supernet:
        return cast(Supernet, self.model.fpn)

    def candidate_spec(self, candidate: Candidate) -> Spec:
        """The candidate's spec as the supernet runs it (the run's ``overrides`` set)."""
        return self.supernet.candidate_spec(candidate)

    def candidate_state_dict(self, candidate: Candidate | Spec) -> dict[str, torch.Tensor]:
        """The weights of the candidate's own detector, ``EfficientDet(candidate_spec(candidate),
        recipe.config())``: the supernet's backbone and heads, and its feature network's weights on the
        candidate's path."""
        state = {key: value for key, value in self.model.state_dict().items() if not key.startswith("fpn.")}
        state.update({f"fpn.{key}": value for key, value in self.supernet.candidate_state_dict(candidate).items()})
        return state

    def candidate_detector(self, candidate: Candidate | Spec) -> EfficientDet:
        """The candidate's own detector (given as a candidate or as its spec, loaded with the supernet's
        ``overrides``) with its weights from the supernet (:meth:`candidate_state_dict`), in eval mode: it
        computes what the supernet does with the candidate's path selected.

        Raises:
            SpecError: the spec is no candidate of the supernet's space (the message names the node).
        """
        spec = self.candidate_spec(candidate) if isinstance(candidate, Candidate) else candidate
        model = EfficientDet(spec, self.recipe.config())
        load_model_state(model, self.candidate_state_dict(spec), spec.name)
        return model.eval()


def load_supernet(path: str | Path, use_ema: bool = True, space: SearchSpace | None = None) -> TrainedSupernet:
    """Rebuild the supernet detector of a supernet checkpoint and load its weights (the EMA weights where present
    and ``use_ema``).

    Args:
        path: the checkpoint (``OUT/last.pt`` of :func:`~search.strategies.oneshot.training.train_supernet`).
        use_ema: load the EMA weights rather than the last step's.
        space: the search space it was trained on, where its file is no longer at the path the checkpoint
            records; its candidates (the union spec) must be those trained, its other settings may differ.

    Raises:
        CheckpointError: the file is no supernet checkpoint, its search space file is gone or its candidates have
            changed (the message says which), or its weights do not fit.
    """
    data = read_checkpoint(path)
    variant = data.get(VARIANT_KEY)
    if variant is None or variant["kind"] != SUPERNET:
        held = "a plain detector" if variant is None else f"a {variant['kind']}"
        loader = "effdet_graph.load_checkpoint" if variant is None else variant["load_with"]
        raise CheckpointError(f"{path}: holds {held}, not a supernet; load it with {loader}")
    bad = [key for key in _ENTRIES if not isinstance(variant.get(key), str)]
    if bad:
        raise CheckpointError(
            f"{path}: entry '{VARIANT_KEY}.{bad[0]}' must be a string; the checkpoint is damaged or was not written "
            "by search.strategies.oneshot.train_supernet"
        )
    space = space or _recorded_space(path, variant)
    recipe = ModelRecipe.from_dict(data)
    union = union_spec(space, recipe.spec_overrides)
    if union.text != recipe.spec_text:  # other settings of the space (budget, proxy, oneshot) may change
        raise CheckpointError(
            f"{path}: the candidates of search space {space.file} are not those the supernet was trained on "
            f"(its union spec differs: a changed template, optional edge, fusion or cell choice); pass the space "
            f"it was trained on (its text is the checkpoint's '{VARIANT_KEY}.space_text')"
        )
    model = EfficientDet(
        recipe.spec(str(path)), recipe.config(), feature_network=supernet_factory(union, recipe.spec_overrides)
    )
    weights = data["ema"] if use_ema and data.get("ema") is not None else data["model"]
    load_model_state(model, weights, str(path))
    return TrainedSupernet(model.eval(), space, recipe, variant["sampling"])


def _recorded_space(path: str | Path, variant: dict[str, Any]) -> SearchSpace:
    """The search space at the path the checkpoint records."""
    try:
        return load_search_space(variant["space_file"])
    except InputError as exc:
        raise CheckpointError(
            f"{path}: cannot load the search space the supernet was trained on ({exc}); pass it as `space`"
        ) from None
