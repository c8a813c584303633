"""Model families: shapes at every supported size, conditioning that reaches both networks, clear errors."""

from __future__ import annotations

import pytest
import torch

from gankit.config import ModelConfig
from gankit.errors import GankitError
from gankit.models import MODELS
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, stages, widths


@pytest.mark.parametrize("size, expected", [(8, (4, 1)), (16, (4, 2)), (28, (7, 2)), (32, (4, 3)), (64, (4, 4)),
                                            (128, (4, 5)), (256, (4, 6)), (14, (7, 1))])
def test_dcgan_stages(size, expected):
    assert stages(size) == expected


@pytest.mark.parametrize("size", [7, 30, 100, 3])
def test_unsupported_image_sizes_are_refused(size):
    with pytest.raises(GankitError, match=f"image size {size} is not supported"):
        stages(size)


def test_widths_double_towards_the_smallest_map_and_are_capped():
    assert widths(64, 4) == [512, 256, 128, 64]
    assert widths(64, 5) == [512, 512, 256, 128, 64]  # capped at 8 x width


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 128, 128)])
@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_dcgan_shapes_and_output_range(shape, conditioning):
    torch.manual_seed(0)
    cfg = ModelConfig(family="dcgan", z_dim=16, g_hidden=8, d_hidden=8, g_depth=1, d_depth=1,
                      d_conditioning=conditioning, d_norm="batch")
    G, D = MODELS.get("dcgan")(cfg, shape, 10, "tanh")
    z, y = torch.randn(3, 16), torch.tensor([0, 4, 9])
    x = G(z, y)
    assert x.shape == (3, *shape)
    assert x.abs().max() <= 1
    assert D(x, y).shape == (3,)


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_the_label_reaches_D_and_G(conditioning):
    torch.manual_seed(0)
    G = DCGANGenerator(8, (1, 16, 16), 8, num_classes=3).eval()
    D = DCGANDiscriminator((1, 16, 16), 8, num_classes=3, conditioning=conditioning, norm="none")
    with torch.no_grad():  # an untrained projection embedding is random, so labels change the logit
        D.projection.weight.normal_() if D.projection is not None else None
    z, x = torch.randn(2, 8), torch.randn(2, 1, 16, 16)
    assert not torch.allclose(G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1])))
    assert not torch.allclose(D(x, torch.tensor([0, 0])), D(x, torch.tensor([2, 2])))
    with pytest.raises(ValueError, match="needs labels"):
        D(x)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    cfg = ModelConfig(family="dcgan", z_dim=8, g_hidden=8, d_hidden=8, d_conditioning="projection", d_norm="batch")
    G, D = MODELS.get("dcgan")(cfg, (1, 28, 28), 10, "tanh")
    y = torch.randint(10, (4,))
    D(G(torch.randn(4, 8), y), y).sum().backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dcgan_needs_images():
    with pytest.raises(GankitError, match="needs images"):
        MODELS.get("dcgan")(ModelConfig(family="dcgan"), (2,), 0, "none")


def test_mlp_generates_the_data_shape():
    cfg = ModelConfig(z_dim=4, g_hidden=8, d_hidden=8)
    G, D = MODELS.get("mlp")(cfg, (1, 8, 8), 0, "tanh")
    x = G(torch.randn(5, 4))
    assert x.shape == (5, 1, 8, 8) and D(x).shape == (5,)


def test_unknown_family_names_the_known_ones():
    with pytest.raises(GankitError, match="unknown model family 'vae'; expected one of: dcgan, mlp"):
        MODELS.get("vae")


def test_minibatch_std_is_the_mean_per_feature_spread_of_the_batch():
    from gankit.models.mlp import batch_spread

    h = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    expected = (torch.tensor([0.0, 2.0, 4.0]).var(unbiased=False).sqrt() + 0.0) / 2  # feature 2 is constant
    assert torch.allclose(batch_spread(h), expected.expand(3, 1), atol=1e-4)
    collapsed = torch.ones(5, 3, requires_grad=True)
    assert torch.allclose(batch_spread(collapsed), torch.zeros(5, 1), atol=1e-3)
    batch_spread(collapsed).sum().backward()
    assert torch.isfinite(collapsed.grad).all()  # a fully collapsed batch must not poison D with NaN


def test_minibatch_std_lets_D_tell_a_collapsed_batch_from_a_varied_one():
    torch.manual_seed(0)
    G, D = MODELS.get("mlp")(ModelConfig(d_hidden=8, minibatch_std=True), (2,), 0, "none")
    varied = torch.randn(6, 2)
    collapsed = varied[:1].expand(6, 2)
    # The same sample scores differently depending on the company it keeps: D sees the batch's spread.
    assert D(varied)[0] != D(collapsed)[0]
    plain = MODELS.get("mlp")(ModelConfig(d_hidden=8), (2,), 0, "none")[1]
    assert plain(varied)[0] == plain(collapsed)[0]
