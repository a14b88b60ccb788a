"""The supernet of a topology search space: a candidate's weights taken out of it and loaded into the candidate's
own compiled network give what the supernet computes with that candidate active, and nothing off the candidate's
path is computed."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from typing import Any

import pytest
import torch

from effdet_graph.fpn.compiler import FusionNode, compile_spec
from graphspec import ConfigError, Spec, SpecError
from search.sampling.candidate import Candidate
from search.sampling.rejection import Rejected
from search.sampling.sample import sample_point
from search.sampling.trial import SeededTrial
from search.space import SearchSpace
from search.strategies.oneshot.supernet import Supernet

TOPOLOGY_SPACES = ("bifpn_edges", "nasfpn_cells")
IN_CHANNELS = (8, 12, 16)  # backbone P3-P5
OVERRIDES = {"width": 16, "repeats": 2}
SIZE = 64


def sampled(space: SearchSpace, count: int, seed: int = 0) -> list[Candidate]:
    """The first ``count`` accepted candidates of a seeded random search of ``space``."""
    rng, found, number = random.Random(seed), [], 0
    while len(found) < count:
        with contextlib.suppress(Rejected):
            found.append(sample_point(space, SeededTrial(rng, number)))
        number += 1
    return found


def features(spec: Spec, batch: int = 1) -> list[torch.Tensor]:
    """Backbone maps for a SIZE x SIZE image: (batch, C_l, SIZE / 2**l, SIZE / 2**l) per backbone level."""
    return [torch.randn(batch, c, SIZE >> level, SIZE >> level) for c, level in zip(IN_CHANNELS, spec.backbone_levels)]


@pytest.fixture(scope="module")
def supernets(spaces: dict[str, SearchSpace]) -> dict[str, Supernet]:
    """A supernet per topology space, every weight and BN statistic random (weights start at 1 otherwise)."""
    torch.manual_seed(0)
    built = {}
    for name in TOPOLOGY_SPACES:
        supernet = Supernet(spaces[name], IN_CHANNELS, OVERRIDES)
        with torch.no_grad():
            for key, value in supernet.state_dict().items():
                if key.endswith("running_var"):
                    value.uniform_(0.5, 1.5)
                elif value.is_floating_point():
                    value.normal_(0.0, 0.5)
        built[name] = supernet
    return built


@pytest.mark.parametrize("name", TOPOLOGY_SPACES)
def test_a_candidate_with_its_weights_from_the_supernet_computes_what_the_supernet_does(spaces, supernets, name):
    supernet = supernets[name].eval()
    torch.manual_seed(1)
    outputs = []
    for candidate in sampled(spaces[name], 4):
        spec = supernet.candidate_spec(candidate)
        alone = compile_spec(spec, IN_CHANNELS).eval()
        alone.load_state_dict(supernet.candidate_state_dict(candidate))  # strict: exactly the keys of the candidate
        x = features(spec)
        with torch.no_grad():
            expected, got = alone(x), supernet(x, supernet.path(candidate))
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e, atol=1e-6, rtol=0)
        outputs.append(got[0])
    assert not torch.allclose(outputs[0], outputs[1])  # the candidates differ, so the agreement means something


@pytest.mark.parametrize("name", TOPOLOGY_SPACES)
def test_only_the_candidates_nodes_and_edges_compute(spaces, supernets, name):
    supernet = supernets[name].eval()
    candidate = sampled(spaces[name], 1, seed=2)[0]
    spec = supernet.candidate_spec(candidate)
    names = supernet.union.names(spec)
    calls: Counter[tuple[Any, ...]] = Counter()
    hooks = []
    for r, cell in enumerate(supernet.network.cells):
        for node_id, node in cell.nodes.items():
            assert isinstance(node, FusionNode)
            hooks.append(node.op.register_forward_hook(lambda *_, key=(r, node_id): calls.update([key])))
            for ref, edge in node.edges.items():
                hooks.append(edge.register_forward_hook(lambda *_, key=(r, node_id, ref): calls.update([key])))
    with torch.no_grad():
        supernet(features(spec), supernet.path(candidate))
    for hook in hooks:
        hook.remove()
    ops = {(r, names.get(node.id, node.id)) for r in range(spec.repeats) for node in spec.nodes}
    edges = {
        (r, names.get(node.id, node.id), names.get(ref, ref))
        for r in range(spec.repeats)
        for node in spec.nodes
        for ref in node.inputs + node.residual
    }
    assert calls == Counter(ops | edges)  # each once, nothing else
    union_edges = sum(len(node.inputs) for node in supernet.union.spec.nodes)
    assert len(edges) < union_edges * spec.repeats


@pytest.mark.parametrize("name", TOPOLOGY_SPACES)
def test_only_the_candidates_weights_get_gradients(spaces, supernets, name):
    supernet = supernets[name].train()
    candidate = sampled(spaces[name], 1, seed=3)[0]
    spec = supernet.candidate_spec(candidate)
    supernet.zero_grad(set_to_none=True)
    sum(out.square().mean() for out in supernet(features(spec, batch=2), supernet.path(candidate))).backward()
    trained = [p for p in supernet.parameters() if p.grad is not None]
    alone = list(compile_spec(spec, IN_CHANNELS).parameters())
    assert len(trained) == len(alone) < len(list(supernet.parameters()))  # one supernet tensor per candidate tensor
    assert sum(p.numel() for p in alone) < sum(p.numel() for p in supernet.parameters())


def test_a_spec_with_other_settings_does_not_run_on_the_supernet(spaces, supernets):
    supernet = supernets["bifpn_edges"]
    candidate = sampled(spaces["bifpn_edges"], 1)[0]
    with pytest.raises(SpecError, match=r"width: 64 here, 16 in union bifpn_edges_union"):
        supernet.path(candidate.spec())  # the candidate's own width, not the supernet's


def test_a_space_that_searches_no_topology_has_no_supernet(spaces):
    with pytest.raises(ConfigError, match=r"needs a topology search space .*'compound' space"):
        Supernet(spaces["compound"], IN_CHANNELS)
