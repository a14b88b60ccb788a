"""The compiled BiFPN detector against the effdet package: exact parameter counts for D0-D7x and
identical outputs after converting an effdet state_dict."""

from __future__ import annotations

import pytest
import torch

from effdet_graph.errors import CheckpointError
from effdet_graph.io.convert import convert_effdet_state_dict, load_effdet_checkpoint
from effdet_graph.model.detector import build_detector

effdet = pytest.importorskip("effdet")

PHIS = {0: "d0", 1: "d1", 2: "d2", 3: "d3", 4: "d4", 5: "d5", 6: "d6", 7: "d7", 8: "d7x"}


def _spec_for(phi: int) -> str:
    return "specs/bifpn_p3p8.yaml" if phi == 8 else "specs/bifpn.yaml"


def _effdet_model(name: str) -> torch.nn.Module:
    return effdet.create_model(f"tf_efficientdet_{name}", pretrained=False, pretrained_backbone=False)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("phi", [0, 1, 2, 3])
def test_parameter_counts_equal_effdet(phi):
    assert _count(build_detector(_spec_for(phi), phi)) == _count(_effdet_model(PHIS[phi]))


@pytest.mark.slow
@pytest.mark.parametrize("phi", [4, 5, 6, 7, 8])
def test_parameter_counts_equal_effdet_large(phi):
    assert _count(build_detector(_spec_for(phi), phi)) == _count(_effdet_model(PHIS[phi]))


@pytest.mark.parametrize("phi", [0, 1])
def test_converted_effdet_weights_give_identical_outputs(phi):
    torch.manual_seed(phi)
    reference = _effdet_model(PHIS[phi]).eval()
    # Random BN statistics, so that a BN mapped to the wrong level or node would show.
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    ours = build_detector(_spec_for(phi), phi).eval()
    ours.load_state_dict(convert_effdet_state_dict(reference.state_dict(), ours), strict=False)
    size = 512 + 128 * phi  # effdet fixes its upsampling sizes to the model resolution
    images = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ref_class, ref_box = reference(images)
        our_class, our_box = ours(images)
    for got, want in zip(our_class + our_box, ref_class + ref_box):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_checkpoint_for_another_phi_is_reported_by_name(tmp_path):
    path = tmp_path / "d1.pth"
    torch.save(_effdet_model("d1").state_dict(), path)
    with pytest.raises(CheckpointError, match=r"d1\.pth does not fit d0 .*another phi.*shape mismatches"):
        load_effdet_checkpoint(build_detector("specs/bifpn.yaml", 0), path)


def test_checkpoint_for_another_topology_is_reported(tmp_path):
    path = tmp_path / "d0.pth"
    torch.save(_effdet_model("d0").state_dict(), path)
    with pytest.raises(CheckpointError, match=r"spec 'fpn'.*(unexpected|missing) keys: "):
        load_effdet_checkpoint(build_detector("specs/fpn.yaml", 0), path)


def test_corrupt_and_missing_checkpoints(tmp_path):
    model = build_detector("specs/bifpn.yaml", 0)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"corrupt\.pth: not a PyTorch checkpoint .*it looks like text"):
        load_effdet_checkpoint(model, corrupt)
    with pytest.raises(CheckpointError, match=r"nope\.pth: checkpoint not found"):
        load_effdet_checkpoint(model, tmp_path / "nope.pth")
    random_bytes = tmp_path / "random.pth"
    random_bytes.write_bytes(bytes(range(128, 256)))  # refused by the safe unpickler, not a zip archive
    with pytest.raises(CheckpointError) as info:
        load_effdet_checkpoint(model, random_bytes)
    message = str(info.value)  # what the file is, without torch's advice to turn safe loading off
    assert message.startswith(f"{random_bytes}: not a PyTorch checkpoint (torch.save writes a zip archive)")
    assert "weights_only" not in message and "\n" not in message


def test_checkpoint_loading_never_unpickles_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"x": Exploit()}, path)
    with pytest.raises(CheckpointError):
        load_effdet_checkpoint(build_detector("specs/bifpn.yaml", 0), path)
    assert not marker.exists()
