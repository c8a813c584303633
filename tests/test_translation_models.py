"""Image-to-image networks: fully convolutional shapes, JSON rebuilds, SRResNet's bicubic start, the
PatchGAN's receptive field by gradient, and the content networks (VGG-19 from a file, the shipped classifier)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from gankit.errors import GankitError
from gankit.models.content import content_loss, content_network
from gankit.models.resnet import ResnetGenerator
from gankit.models.srresnet import SRResNet
from gankit.models.translators import TRANSLATORS, build_translator
from gankit.models.unet import PatchDiscriminator, UNetGenerator, receptive_field

SMALL = {  # CPU-sized settings, family -> (kwargs, two input sizes [H, W])
    "unet": (dict(in_channels=1, out_channels=2, base=8, levels=2), [(28, 28), (16, 24)]),
    "srresnet": (dict(in_channels=1, out_channels=1, channels=8, blocks=2, factor=4), [(7, 7), (16, 12)]),
    "resnet": (dict(in_channels=3, out_channels=1, base=8, blocks=2), [(28, 28), (16, 20)]),
}


@pytest.mark.parametrize("family", SMALL)
def test_generators_are_fully_convolutional(family):
    torch.manual_seed(0)
    kwargs, sizes = SMALL[family]
    G = TRANSLATORS[family](**kwargs)
    for h, w in sizes:
        y = G(torch.rand(2, G.in_channels, h, w) * 2 - 1)
        assert y.shape == (2, G.out_channels, h * G.factor, w * G.factor)
        assert h % G.multiple == 0 and w % G.multiple == 0
    assert (G.factor, G.multiple) == {"unet": (1, 4), "srresnet": (4, 1), "resnet": (1, 4)}[family]


@pytest.mark.parametrize("levels", [3, 8])
def test_unet_depths(levels):
    G = UNetGenerator(3, 3, base=4, levels=levels)
    s = 2 ** levels
    assert G(torch.randn(2, 3, s, 2 * s)).shape == (2, 3, s, 2 * s)
    assert G.up[0][1].in_channels == 4 * min(2 ** (levels - 1), 8)  # widths capped at 8 x base
    assert sum(isinstance(m, torch.nn.Dropout) for m in G.modules()) == min(3, levels - 1)


@pytest.mark.parametrize("cls", [UNetGenerator, ResnetGenerator])
def test_sizes_that_do_not_divide_are_refused(cls):
    G = cls(1, 1, 8)
    with pytest.raises(ValueError, match=f"multiples of {G.multiple}"):
        G(torch.randn(1, 1, 30, 28))


def test_srresnet_takes_any_size_and_checks_its_arguments():
    G = SRResNet(1, 1, channels=8, blocks=1, factor=2)
    assert G(torch.randn(1, 1, 5, 3)).shape == (1, 1, 10, 6)
    with pytest.raises(ValueError, match="factor = 3"):
        SRResNet(1, 1, factor=3)
    with pytest.raises(ValueError, match="in_channels"):
        SRResNet(1, 3)
    assert SRResNet(1, 3, residual=False).out_channels == 3


@pytest.mark.parametrize("family", SMALL)
@pytest.mark.parametrize("norm", [None, "instance"])
def test_build_translator_rebuilds_from_json_config(family, norm):
    torch.manual_seed(0)
    kwargs, sizes = SMALL[family]
    if norm and family != "srresnet":
        kwargs = {**kwargs, "norm": norm}
    G = TRANSLATORS[family](**kwargs).eval()
    config = json.loads(json.dumps(G.config()))
    H = build_translator(family, config).eval()
    assert H.config() == G.config() and type(H) is type(G)
    assert {k: v.shape for k, v in H.state_dict().items()} == {k: v.shape for k, v in G.state_dict().items()}
    H.load_state_dict(G.state_dict())
    x = torch.rand(2, G.in_channels, *sizes[0]) * 2 - 1
    assert torch.equal(H(x), G(x))


def test_build_translator_errors_are_one_line():
    with pytest.raises(GankitError, match="'vgg' is unknown; expected one of unet, srresnet, resnet"):
        build_translator("vgg", {})
    with pytest.raises(GankitError, match="translator 'unet'.*'depth'.*arguments are in_channels"):
        build_translator("unet", dict(in_channels=1, out_channels=1, depth=3))
    with pytest.raises(GankitError, match="translator 'srresnet': factor = 3"):
        build_translator("srresnet", dict(in_channels=1, out_channels=1, factor=3))
    with pytest.raises(GankitError, match="norm = 'layer'"):
        build_translator("resnet", dict(in_channels=1, out_channels=1, norm="layer"))


def test_untrained_srresnet_is_close_to_bicubic():
    torch.manual_seed(0)
    G = SRResNet(1, 1, channels=16, blocks=2, factor=4)
    x = F.avg_pool2d(torch.rand(4, 1, 32, 32) * 2 - 1, 2)  # [4, 1, 16, 16], smoothed
    bicubic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    y = G(x)
    assert (y - bicubic).abs().mean() < 0.02 * bicubic.abs().mean() + 0.01
    assert not torch.equal(y, bicubic)  # but the net contributes


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patch_receptive_field_by_gradient(layers):
    torch.manual_seed(0)
    D = PatchDiscriminator(2, base=4, layers=layers, norm="none").double()
    rf = receptive_field(layers)
    size = 2 ** layers * (rf // 2 ** layers + 4)  # wide enough that the central logit sees no padding
    x = torch.randn(1, 2, size, size, dtype=torch.float64, requires_grad=True)
    logits = D(x)  # [1, 1, h, w]
    assert logits.shape == (1, 1, size // 2 ** layers - 2, size // 2 ** layers - 2)
    centre = logits.shape[2] // 2
    logits[0, 0, centre, centre].backward()
    rows, cols = x.grad[0].abs().sum(0).nonzero(as_tuple=True)
    assert rows.max() - rows.min() + 1 == rf and cols.max() - cols.min() + 1 == rf
    assert len(rows) == rf * rf and 0 < rows.min() and rows.max() < size - 1


def test_patch_discriminator_on_28x28_pairs():
    assert [receptive_field(n) for n in (1, 2, 3, 4)] == [16, 34, 70, 142]
    D = PatchDiscriminator(2, base=8, layers=2, norm="instance", spectral_norm=True)
    assert D(torch.randn(3, 2, 28, 28)).shape == (3, 1, 5, 5) and D.batch_independent
    assert any("parametrizations" in k for k in D.state_dict())
    assert PatchDiscriminator(1, base=8)(torch.randn(2, 1, 28, 28)).shape == (2, 1, 1, 1)


# --- content networks ---

VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]


def _vgg_state(seed=0):
    """Random tensors under torchvision's vgg19().state_dict() names (the features, and one classifier key)."""
    g, state, index, c = torch.Generator().manual_seed(seed), {}, 0, 3
    for v in VGG19:
        if v != "M":
            state[f"features.{index}.weight"] = torch.randn(v, c, 3, 3, generator=g) * (2 / (9 * c)) ** 0.5
            state[f"features.{index}.bias"] = torch.randn(v, generator=g) * 0.01
            c, index = v, index + 2
        else:
            index += 1
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def _vgg54_reference(state, x):
    """conv5_4 before its ReLU, computed layer by layer from the raw tensors; x already ImageNet-normalised."""
    index = 0
    for v in VGG19:
        if v == "M":
            x, index = F.max_pool2d(x, 2), index + 1
        else:
            x = F.conv2d(x, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1)
            index += 2
            x = torch.relu(x) if index < 35 else x
    return x


def test_vgg_content_network_from_a_safetensors_file(tmp_path):
    state, path = _vgg_state(), tmp_path / "vgg19.safetensors"
    save_file(state, str(path))
    torch.manual_seed(0)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    grey = content_network(str(path), 1)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    phi = grey(x)
    assert phi.shape == (2, 512, 1, 1) and (phi < 0).any()  # before the ReLU
    torch.testing.assert_close(phi, _vgg54_reference(state, ((x + 1) / 2).expand(-1, 3, -1, -1).sub(mean).div(std)))
    rgb = content_network(str(path), 3)
    assert rgb(torch.rand(2, 3, 32, 32)).shape == (2, 512, 2, 2)
    assert not rgb.train().training and not any(p.requires_grad for p in rgb.parameters())
    fake = x.clone().requires_grad_(True)
    assert content_loss(grey, x, x).item() == 0
    loss = content_loss(grey, fake, torch.rand(2, 1, 16, 16))
    loss.backward()
    assert loss.item() > 0 and fake.grad.abs().sum() > 0


def test_vgg_content_network_errors_name_the_file_and_key(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(GankitError, match=f"{missing}: not found; expected a VGG-19 .safetensors"):
        content_network(str(missing), 3)
    junk = tmp_path / "vgg.pth"
    junk.write_bytes(b"\x80\x02not a safetensors file at all")
    with pytest.raises(GankitError, match=f"{junk}: not a safetensors file"):
        content_network(str(junk), 3)
    partial = tmp_path / "partial.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(partial))
    with pytest.raises(GankitError, match=rf"{partial}: key 'features.0.bias' is missing; expected .*\[64\]"):
        content_network(str(partial), 3)
    wrong = tmp_path / "vgg16ish.safetensors"
    save_file({"features.0.weight": torch.zeros(32, 3, 3, 3)}, str(wrong))
    with pytest.raises(GankitError, match=r"key 'features.0.weight' has shape \[32, 3, 3, 3\]; expected \[64, 3, 3, 3\]"):
        content_network(str(wrong), 3)
    with pytest.raises(GankitError, match="1- or 3-channel"):
        content_network(str(wrong), 2)


def test_classifier_content_network():
    net = content_network("fashion-mnist", 1)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1, torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    assert net(a).shape == (4, 64, 3, 3)
    assert content_loss(net, a, a.clone()).item() == 0
    assert content_loss(net, a, b).item() > 0
    assert not net.train().training  # batch norm keeps its running statistics
    with pytest.raises(GankitError, match="takes 1-channel images; these have 3"):
        content_network("digits", 3)
