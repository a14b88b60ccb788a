"""The ground-truth set: the no-fusion control, the built-in topologies and topologies sampled from a search
space, as spec texts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.ranking import ROOT

CONTROL_SPEC = ROOT / "benchmarks" / "specs" / "nofusion.yaml"
CONTROL_NAME = CONTROL_SPEC.stem
BUILTIN_TOPOLOGIES = ("fpn", "panet", "simplified_panet", "bifpn", "qufpn", "nasfpn", "fc_fpn")
BUILTIN_SET = frozenset((*BUILTIN_TOPOLOGIES, CONTROL_NAME))
SEARCH_SPACE = "bifpn_edges"
#: The space's detector when the sampled members were drawn (their spec files' header names it, and a stored run
#: is keyed by the whole text): the runs train the recipe's detector, so the space's later move to
#: EfficientNet-Lite0 must not rename them.
SAMPLED_BACKBONE = "tf_efficientnet_b0"


#: The families of the set whose topology effect the report tests and within which it scores the ranking methods:
#: ``all``, and the members of the ``bifpn_edges`` space (the sampled topologies and BiFPN, the space's template
#: with none of its choices changed).
FAMILIES = ("all", SEARCH_SPACE)


@dataclass(frozen=True)
class Topology:
    """One topology of the set: its name, complete spec file text, and where it came from."""

    name: str
    spec_text: str
    source: str

    @property
    def spec_hash(self) -> str:
        """A short hash of the spec text."""
        return hashlib.sha256(self.spec_text.encode()).hexdigest()[:16]

    def in_family(self, family: str) -> bool:
        """Whether the topology belongs to ``family`` (:data:`FAMILIES`)."""
        if family == "all":
            return True
        if family == SEARCH_SPACE:
            return self.name == "bifpn" or self.source.startswith(f"{SEARCH_SPACE} draw ")
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")

    def spec(self) -> Any:
        """The loaded :class:`graphspec.Spec`."""
        from graphspec import loads_spec

        return loads_spec(self.spec_text, f"{self.name}.yaml")


def sampled_topologies(count: int, seed: int = 0, max_draws: int = 1000) -> list[Topology]:
    """``count`` distinct topologies of the ``bifpn_edges`` space, drawn at random with ``seed``.

    Rejected points (invalid or over budget) and repeats of a topology already drawn are skipped; trial numbers
    count every draw, so a name (``bifpn_edges_trialNNNN``) says which draw it was.
    """
    from effdet_graph import detector_config
    from search.sampling import Rejected, SeededTrial, sample_point
    from search.space import builtin_space, load_search_space
    from search.space.kinds import EdgeChoices

    space = load_search_space(builtin_space(SEARCH_SPACE))
    choices = space.choices
    assert isinstance(choices, EdgeChoices)
    detector = detector_config(choices.detector.phi, SAMPLED_BACKBONE, choices.detector.num_classes)
    space = dataclasses.replace(space, choices=dataclasses.replace(choices, detector=detector))
    rng = random.Random(seed)
    topologies: list[Topology] = []
    seen: set[str] = set()
    for number in range(max_draws):
        if len(topologies) == count:
            break
        try:
            candidate = sample_point(space, SeededTrial(rng, number))
        except Rejected:
            continue
        spec = candidate.spec()
        shape = json.dumps(
            [[n.id, n.level, list(n.inputs), n.fusion] for n in spec.nodes] + [sorted(spec.outputs.items())],
            default=str,
        )
        if shape in seen:
            continue
        seen.add(shape)
        name = candidate.file_name.removesuffix(".yaml")
        topologies.append(Topology(name, candidate.spec_text, f"{SEARCH_SPACE} draw {number} (seed {seed})"))
    if len(topologies) < count:
        raise RuntimeError(f"only {len(topologies)} of {count} topologies after {max_draws} draws")
    return topologies


def ground_truth_set(samples: int = 10, sample_seed: int = 0) -> list[Topology]:
    """The sampled topologies, the built-in ones and the no-fusion control."""
    from effdet_graph.builtin import specs_dir

    fixed = [CONTROL_SPEC] + [specs_dir() / f"{name}.yaml" for name in BUILTIN_TOPOLOGIES]
    return [Topology(path.stem, path.read_text(encoding="utf-8"), shown(path)) for path in fixed] + sampled_topologies(
        samples, sample_seed
    )


def shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_specs(topologies: Iterable[Topology], folder: Path) -> dict[str, Path]:
    """Write each topology's spec file to ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for topology in topologies:
        path = folder / f"{topology.name}.yaml"
        if not path.exists() or path.read_text(encoding="utf-8") != topology.spec_text:
            path.write_text(topology.spec_text, encoding="utf-8")
        paths[topology.name] = path
    return paths
