"""The shipped metric classifiers: they load, have the promised shapes, ignore batch size, and still classify."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.classifier import KNOWN, SmallCNN, classifier_info, load_classifier

SIZES = {"fashion-mnist": 28, "digits": 8}


@pytest.mark.parametrize("name", KNOWN)
def test_loads_with_metadata(name):
    model, info = load_classifier(name), classifier_info(name)
    assert isinstance(model, SmallCNN) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert info["config"]["image_size"] == SIZES[name] and len(info["classes"]) == 10
    assert info["n_parameters"] == sum(p.numel() for p in model.parameters())
    assert info["file_bytes"] < 1_000_000 and info["train_script"] == "scripts/train_classifiers.py"


@pytest.mark.parametrize("name", KNOWN)
def test_shapes_and_batch_size_independence(name):
    model, s = load_classifier(name), SIZES[name]
    x = torch.rand(64, 1, s, s, generator=torch.Generator().manual_seed(0))
    feats, logits = model.features(x), model(x)
    assert feats.shape == (64, 128) and logits.shape == (64, 10)
    assert (feats >= 0).all()  # taken after the ReLU
    torch.testing.assert_close(torch.cat([model.features(c) for c in x.split(16)]), feats, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.head(feats), logits)  # eval mode: dropout is off


def test_wrong_input_shape_is_one_line_error():
    with pytest.raises(GankitError, match=r"expected \[N, 1, 8, 8\]"):
        load_classifier("digits").features(torch.rand(2, 3, 8, 8))
    with pytest.raises(GankitError, match=r"expected \[N, 1, 28, 28\]"):
        load_classifier("fashion-mnist").features(torch.rand(2, 28, 28))


def test_digits_net_sees_enlarged_images_as_native_ones():
    """digits-dcgan trains on digits enlarged to 16x16; the net must score them as it scores the 8x8 originals."""
    from sklearn.datasets import load_digits

    from gankit.data.dataset import resize

    net = load_classifier("digits")
    x = torch.from_numpy(load_digits().images[:200] / 16).float().unsqueeze(1)
    native, enlarged = net(x), net(resize(x, 16))
    torch.testing.assert_close(enlarged, native, atol=1e-4, rtol=1e-4)


def test_digits_accuracy_on_recorded_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    split = classifier_info("digits")["test_split"]
    d = load_digits()
    y = d.target
    _, x_te, _, y_te = train_test_split(d.images / 16, y, test_size=split["test_size"],
                                        random_state=split["random_state"], stratify=y if split["stratify"] else None)
    x = torch.from_numpy(x_te.astype(np.float32)).unsqueeze(1)
    with torch.no_grad():
        acc = (load_classifier("digits")(x).argmax(1).numpy() == y_te).mean()
    assert acc >= 0.97


def test_fashion_mnist_accuracy_on_test_images():
    from gankit.data.idx import FASHION_DIR, read_split

    if not FASHION_DIR.is_dir():
        pytest.skip(f"{FASHION_DIR} missing (apt-get install dataset-fashion-mnist)")
    images, labels, _ = read_split(FASHION_DIR, "test", "")
    x = torch.from_numpy(images[:2000].astype(np.float32) / 255).unsqueeze(1)
    with torch.no_grad():
        acc = (load_classifier("fashion-mnist")(x).argmax(1).numpy() == labels[:2000]).mean()
    assert acc >= 0.88


def test_unknown_name_lists_known_ones():
    with pytest.raises(GankitError, match="known: fashion-mnist, digits") as err:
        load_classifier("nope")
    assert "nope.safetensors" in str(err.value) and "\n" not in str(err.value)
