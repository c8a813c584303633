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


# ------------------------------------------------------------------ stabilisers: spectral norm, minibatch discrimination, pack

from gankit.models.layers import MinibatchDiscrimination  # noqa: E402

ROWS, IMAGE = (3,), (1, 8, 8)


def build_D(family, shape, num_classes=0, seed=0, **flags):
    """A small D of either family with the given ModelConfig flags."""
    torch.manual_seed(seed)
    flags.setdefault("d_norm", "none")  # batch norm would mix the batch and blur the tests below
    cfg = ModelConfig(family=family, z_dim=4, g_hidden=8, d_hidden=8, d_depth=1, embed_dim=4, **flags)
    return MODELS.get(family)(cfg, shape, num_classes, "none")[1]


def batch_for(shape, n, num_classes=0, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    return x, (torch.randint(num_classes, (n,), generator=g) if num_classes else None)


def weight_layers(D):
    return [m for m in D.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


@pytest.mark.parametrize("family, shape, conditioning", [("mlp", ROWS, "concat"), ("dcgan", (1, 16, 16), "concat"),
                                                         ("dcgan", (1, 16, 16), "projection")])
def test_spectral_norm_brings_every_weight_to_unit_spectral_norm(family, shape, conditioning):
    D = build_D(family, shape, 3, spectral_norm=True, d_conditioning=conditioning, minibatch_features=2)
    x, y = batch_for(shape, 6, 3)
    with torch.no_grad():
        for _ in range(20):  # each forward pass in train mode runs one power iteration
            D(x, y)
        D.eval()
        layers = weight_layers(D)
        assert len(layers) == (2 if family == "mlp" else 4)  # 1 hidden linear / 3 convolutions, + head
        for layer in layers:
            assert torch.nn.utils.parametrize.is_parametrized(layer, "weight")
            sigma = torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2)
            assert abs(sigma.item() - 1) < 0.05, layer
    embeddings = [m for m in D.modules() if isinstance(m, torch.nn.Embedding)]
    assert embeddings and not any(torch.nn.utils.parametrize.is_parametrized(m) for m in embeddings)


@pytest.mark.parametrize("family, shape", [("mlp", ROWS), ("dcgan", IMAGE)])
def test_a_spectrally_normalised_D_loads_its_own_state_dict(family, shape):
    D = build_D(family, shape, 3, spectral_norm=True)
    x, y = batch_for(shape, 4, 3)
    with torch.no_grad():
        for _ in range(3):
            D(x, y)  # moves the power iteration's u and v away from their initial values
    state = D.state_dict()
    assert any(".parametrizations.weight.original" in k for k in state) and any(k.endswith("._u") for k in state)
    other = build_D(family, shape, 3, seed=1, spectral_norm=True)
    other.load_state_dict(state)
    assert torch.equal(D.eval()(x, y), other.eval()(x, y))


def test_dcgan_D_loads_checkpoints_that_named_its_convolutions_features():
    D = build_D("dcgan", IMAGE)
    old = {k.replace("body.", "features."): v for k, v in D.state_dict().items()}
    assert any(k.startswith("features.") for k in old)
    other = build_D("dcgan", IMAGE, seed=1)
    other.load_state_dict(old)
    x, _ = batch_for(IMAGE, 2)
    assert torch.equal(D(x), other(x))


def test_minibatch_discrimination_of_identical_samples_is_the_number_of_others():
    layer = MinibatchDiscrimination(6, 4)
    o = layer(torch.randn(1, 6).expand(5, 6))
    assert o.shape == (5, 4)
    assert torch.allclose(o, torch.full((5, 4), 4.0))  # c = 1 for each of the B - 1 others
    assert torch.equal(layer(torch.randn(1, 6)), torch.zeros(1, 4))  # a lone sample has no others


def test_minibatch_discrimination_matches_the_papers_double_sum():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(5, 3, kernel_dim=4)
    h = torch.randn(6, 5)
    M = torch.einsum("ba,akc->bkc", h, layer.T)  # [B, K, C]
    expected = torch.zeros(6, 3)
    for i in range(6):
        for j in range(6):
            if i != j:
                expected[i] += torch.exp(-(M[i] - M[j]).abs().sum(1))
    assert torch.allclose(layer(h), expected, atol=1e-5)


def test_minibatch_discrimination_lets_one_sample_see_the_others():
    x, _ = batch_for(ROWS, 4)
    changed = x.clone()
    changed[3] += 1.0
    D = build_D("mlp", ROWS, minibatch_features=3)
    assert D(x)[0] != D(changed)[0]
    plain = build_D("mlp", ROWS)
    assert plain(x)[0] == plain(changed)[0]


@pytest.mark.parametrize("family, shape, num_classes, conditioning", [
    ("mlp", ROWS, 0, "concat"), ("mlp", IMAGE, 3, "concat"), ("dcgan", IMAGE, 0, "concat"),
    ("dcgan", IMAGE, 3, "concat"), ("dcgan", IMAGE, 3, "projection")])
def test_pack_gives_one_logit_per_pack_and_a_wider_first_layer(family, shape, num_classes, conditioning):
    x, y = batch_for(shape, 6, num_classes)
    single = build_D(family, shape, num_classes, d_conditioning=conditioning)
    packed = build_D(family, shape, num_classes, d_conditioning=conditioning, pack=3)
    assert packed(x, y).shape == (2,)
    first, first_single = weight_layers(packed)[0], weight_layers(single)[0]
    assert first.weight.shape[1] == 3 * first_single.weight.shape[1]
    with pytest.raises(ValueError, match="pack = 3 .* B = 4"):
        packed(x[:4], None if y is None else y[:4])


@pytest.mark.parametrize("family, shape, num_classes, conditioning", [
    ("mlp", ROWS, 0, "concat"), ("mlp", ROWS, 3, "concat"), ("dcgan", IMAGE, 0, "concat"),
    ("dcgan", IMAGE, 3, "concat"), ("dcgan", IMAGE, 3, "projection")])
def test_D_sees_the_order_within_a_pack_and_packs_are_judged_independently(family, shape, num_classes, conditioning):
    D = build_D(family, shape, num_classes, d_conditioning=conditioning, pack=2)
    x, y = batch_for(shape, 6, num_classes)
    logits = D(x, y)

    def reordered(order):
        return D(x[order], None if y is None else y[order])

    swapped = reordered([1, 0, 2, 3, 4, 5])  # the first pack's two samples trade places
    assert swapped[0] != logits[0] and torch.equal(swapped[1:], logits[1:])
    assert torch.allclose(reordered([4, 5, 0, 1, 2, 3]), logits[[2, 0, 1]])  # whole packs move with their logits


def test_minibatch_std_works_on_packs():
    D = build_D("mlp", ROWS, minibatch_std=True, pack=2)
    x, _ = batch_for(ROWS, 6)
    assert D(x).shape == (3,) and D.features(x).shape == (3, 8 + 1)


FLAGS = [{}, {"pack": 2}, {"minibatch_features": 3}, {"spectral_norm": True},
         {"pack": 2, "minibatch_features": 3, "spectral_norm": True, "minibatch_std": True}]
MODELS_UNDER_TEST = [("mlp", ROWS, 0, "concat"), ("mlp", IMAGE, 3, "concat"), ("dcgan", IMAGE, 0, "concat"),
                     ("dcgan", (1, 16, 16), 3, "concat"), ("dcgan", (1, 16, 16), 3, "projection")]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(f) or "plain")
@pytest.mark.parametrize("family, shape, num_classes, conditioning", MODELS_UNDER_TEST)
def test_features_are_what_the_last_layer_sees(family, shape, num_classes, conditioning, flags):
    flags = dict(flags)
    if family == "dcgan":
        flags.pop("minibatch_std", None)  # an MLP option
    D = build_D(family, shape, num_classes, d_conditioning=conditioning, **flags)
    if flags.get("spectral_norm"):
        D.eval()  # else each call runs one more power iteration and the weights differ slightly between calls
    x, y = batch_for(shape, 4, num_classes)
    pack = flags.get("pack", 1)
    extra = flags.get("minibatch_features", 0) + flags.get("minibatch_std", False)
    width = 8 if family == "mlp" else 8 * (shape[1] // 8) * 4 * 4  # hidden, or the last map C x 4 x 4
    h = D.features(x, y)
    assert h.shape == (4 // pack, width + extra)
    logits = D(x, y)
    assert logits.shape == (4 // pack,)
    assert torch.allclose(logits, D.last_layer(h, y), atol=1e-6)
    if conditioning != "projection":  # else the logit also has the projection term
        assert torch.allclose(logits, D.head(h).squeeze(1), atol=1e-6)


@pytest.mark.parametrize("family, shape, conditioning", [("mlp", ROWS, "concat"), ("dcgan", IMAGE, "projection")])
def test_every_stabiliser_together_trains_and_takes_a_gradient_penalty(family, shape, conditioning):
    D = build_D(family, shape, 3, d_conditioning=conditioning, pack=2, minibatch_features=3, spectral_norm=True)
    x, y = batch_for(shape, 4, 3)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, y).sum(), x, create_graph=True)  # double backward, as WGAN-GP and R1 need
    (grad.square().sum() + D(x, y).sum()).backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
