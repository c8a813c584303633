"""The FID Inception-v3 against numbers derived independently of gankit's code, and its weight loading.

The expected sizes come from the reference architecture (torchvision's Inception3 and pytorch-fid's
``fid_inception_v3``) and torchvision's documented parameter count, not from running gankit; the real
weights file is not available here, so loading is checked on random tensors with its key layout.
"""

from __future__ import annotations

import pickle

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.inception import (
    INCEPTION_ENV, FIDInceptionV3, _tf_avg_pool, convert_to_safetensors, load_fid_inception,
)

# torchvision documents 27,161,264 parameters for Inception3 with 1000 classes and the aux classifier.
# The aux classifier holds conv0 768*128 + BN 2*128, conv1 128*768*5*5 + BN 2*768, fc 768*1000 + 1000;
# the FID network has none of it and 1008 classes instead of 1000.
AUX = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
N_PARAMETERS = 27_161_264 - AUX + 8 * (2048 + 1)
# 94 conv-BN units: stem 5, Mixed_5b-d 3 x 7, Mixed_6a 4, Mixed_6b-e 4 x 10, Mixed_7a 6, Mixed_7b-c 2 x 9.
N_CONV_BN = 5 + 3 * 7 + 4 + 4 * 10 + 6 + 2 * 9
# The BN running means and variances: 2 x the output channels of every conv.
N_RUNNING = 34_432

SHAPES = {  # a sample across every block type, from the reference layer configs
    "Conv2d_1a_3x3.conv.weight": [32, 3, 3, 3],
    "Conv2d_1a_3x3.bn.running_var": [32],
    "Conv2d_2b_3x3.conv.weight": [64, 32, 3, 3],
    "Conv2d_3b_1x1.conv.weight": [80, 64, 1, 1],
    "Conv2d_4a_3x3.conv.weight": [192, 80, 3, 3],
    "Mixed_5b.branch5x5_2.conv.weight": [64, 48, 5, 5],
    "Mixed_5b.branch_pool.conv.weight": [32, 192, 1, 1],
    "Mixed_5d.branch_pool.conv.weight": [64, 288, 1, 1],
    "Mixed_6a.branch3x3.conv.weight": [384, 288, 3, 3],
    "Mixed_6b.branch7x7_2.conv.weight": [128, 128, 1, 7],
    "Mixed_6b.branch7x7dbl_2.conv.weight": [128, 128, 7, 1],
    "Mixed_6e.branch7x7dbl_5.conv.weight": [192, 192, 1, 7],
    "Mixed_7a.branch3x3_2.conv.weight": [320, 192, 3, 3],
    "Mixed_7a.branch7x7x3_4.conv.weight": [192, 192, 3, 3],
    "Mixed_7b.branch1x1.conv.weight": [320, 1280, 1, 1],
    "Mixed_7b.branch3x3dbl_1.conv.weight": [448, 1280, 1, 1],
    "Mixed_7c.branch3x3dbl_3a.conv.weight": [384, 384, 1, 3],
    "Mixed_7c.branch3x3dbl_3b.bn.running_mean": [384],
    "Mixed_7c.branch_pool.conv.weight": [192, 2048, 1, 1],
    "fc.weight": [1008, 2048],
    "fc.bias": [1008],
}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A .pth in the layout of pt_inception-2015-12-05-6726825d.pth, with random values everywhere."""
    torch.manual_seed(1)
    state = {k: torch.randn(v.shape) if v.is_floating_point() else v
             for k, v in FIDInceptionV3().state_dict().items()}
    path = tmp_path_factory.mktemp("inception") / "pt_inception.pth"
    torch.save(state, path)
    return path, state


def test_parameter_count_and_keys(model):
    assert N_PARAMETERS == 23_850_960
    assert sum(p.numel() for p in model.parameters()) == N_PARAMETERS
    state = model.state_dict()
    assert sum(v.numel() for k, v in state.items() if "running" in k) == N_RUNNING
    assert sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked")) == 23_885_392
    assert len(state) == 6 * N_CONV_BN + 2  # conv.weight, bn.{weight,bias,running_*,num_batches_tracked}; fc
    assert not any("Aux" in k for k in state)
    assert {k: list(state[k].shape) for k in SHAPES} == SHAPES
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_fid_specific_pooling(model):
    """TF averages only over real pixels, so a constant map stays constant at the borders; Mixed_7c max-pools."""
    x = torch.full((1, 2, 5, 5), 3.0)
    assert torch.equal(_tf_avg_pool(x), x)
    assert model.Mixed_7c.max_pool and not model.Mixed_7b.max_pool


@torch.no_grad()
def test_shapes_grey_and_batch_independence(model):
    torch.manual_seed(2)
    grey = torch.rand(2, 1, 28, 28)
    feats, logits = model(grey)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(feats).all() and torch.isfinite(logits).all()
    assert torch.allclose(model.features(grey[1:]), feats[1:], rtol=1e-4, atol=1e-6)  # eval mode: no batch stats
    assert torch.allclose(model.features(grey.repeat(1, 3, 1, 1)), feats, rtol=1e-4, atol=1e-6)


def test_bad_input_shape(model):
    with pytest.raises(GankitError, match=r"\[2, 4, 8, 8\]"):
        model(torch.rand(2, 4, 8, 8))


def test_load_from_path_and_env(weights, monkeypatch):
    path, state = weights
    loaded = load_fid_inception(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert torch.equal(loaded.state_dict()["Mixed_7c.branch3x3dbl_3a.conv.weight"],
                       state["Mixed_7c.branch3x3dbl_3a.conv.weight"])
    monkeypatch.setenv(INCEPTION_ENV, str(path))
    assert torch.equal(load_fid_inception().fc.weight, state["fc.weight"])


def test_load_without_batch_counters_and_safetensors(weights, tmp_path):
    """Older ports have no num_batches_tracked; a safetensors copy loads the same tensors."""
    path, state = weights
    old = tmp_path / "old.pth"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, old)
    assert torch.equal(load_fid_inception(old).fc.bias, state["fc.bias"])
    st = convert_to_safetensors(path, tmp_path / "inception.safetensors")
    assert torch.equal(load_fid_inception(st).Conv2d_1a_3x3.bn.running_mean, state["Conv2d_1a_3x3.bn.running_mean"])


def test_missing_key_and_wrong_shape(weights, tmp_path):
    _, state = weights
    bad = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != "Mixed_7c.branch_pool.conv.weight"}, bad)
    with pytest.raises(GankitError, match=r"missing keys Mixed_7c\.branch_pool\.conv\.weight") as err:
        load_fid_inception(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    torch.save({**state, "fc.weight": torch.zeros(1000, 2048)}, bad)
    with pytest.raises(GankitError, match=r"wrong shapes fc\.weight \[1000, 2048\] \(expected \[1008, 2048\]\)"):
        load_fid_inception(bad)


def test_no_path_no_env(monkeypatch):
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    with pytest.raises(GankitError, match=INCEPTION_ENV) as err:
        load_fid_inception()
    message = str(err.value)
    assert "eval.inception_weights" in message and "pt_inception-2015-12-05-6726825d.pth" in message
    assert "\n" not in message


class Payload:
    """Stands for an arbitrary pickled object, which weights_only loading must refuse."""


@pytest.mark.parametrize("content, reason", [
    (b"this is not a checkpoint\n", "not a file written by torch.save"),
    (pickle.dumps(Payload(), protocol=2), "it pickles test_inception.Payload"),
    (None, "this one has 'fc.weight': int"),
], ids=["text", "pickled-object", "non-tensor"])
def test_unreadable_files(tmp_path, content, reason):
    path = tmp_path / "weights.pth"
    if content is None:
        torch.save({"fc.weight": 3}, path)  # loads under weights_only, but holds no tensor
    else:
        path.write_bytes(content)
    with pytest.raises(GankitError, match="weights.pth") as err:
        load_fid_inception(path)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_absent_and_broken_safetensors(tmp_path):
    with pytest.raises(GankitError, match="absent.pth: Inception weights file not found"):
        load_fid_inception(tmp_path / "absent.pth")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(GankitError, match="bad.safetensors: not a readable safetensors file"):
        load_fid_inception(tmp_path / "bad.safetensors")
