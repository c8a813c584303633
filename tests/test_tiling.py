"""Tiled translation equals the whole-image pass where the network's reach fits the overlap, and shows no seam
where it does not; padding to a multiple lets a U-Net take any size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.tiling import pad_to_multiple, translate_tiled


def local_net(radius: int = 3, upscale: int = 1) -> nn.Module:
    torch.manual_seed(0)
    layers = []
    for i in range(radius):
        layers += [nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=1), nn.Tanh()]
    layers.append(nn.Conv2d(4, upscale * upscale, 1))
    if upscale > 1:
        layers.append(nn.PixelShuffle(upscale))
    return nn.Sequential(*layers).double().eval()


@torch.no_grad()
@pytest.mark.parametrize("factor", [1, 2])
def test_tiles_give_the_whole_image_output_when_the_overlap_covers_the_reach(factor):
    net, x = local_net(3, factor), torch.rand(2, 1, 100, 137, dtype=torch.float64)
    tiled = translate_tiled(net, x, factor=factor, tile=32, overlap=12, batch=5)  # reach 3 <= 12 / 4
    assert tiled.shape == (2, 1, 100 * factor, 137 * factor)
    torch.testing.assert_close(tiled, net(x), atol=1e-12, rtol=0)


@torch.no_grad()
def test_a_wider_reach_blends_without_a_seam():
    """Reach 8 with an 8-pixel overlap: the tiled output differs a little from the whole, but smoothly: the
    difference's jumps between neighbouring pixels at the tile edges are no larger than elsewhere."""
    net, x = local_net(8), torch.rand(1, 1, 90, 90, dtype=torch.float64)
    diff = (translate_tiled(net, x, tile=32, overlap=8) - net(x))[0, 0]
    assert diff.abs().max() > 1e-6  # not exact here
    jumps = diff.diff(dim=1).abs()  # [90, 89] horizontal steps of the error
    starts = [0, 24, 48, 58]  # tile origins along x for 90 pixels, tile 32, step 24
    edges = sorted({s - 1 for s in starts[1:]} | {s + 31 for s in starts[:-1]})  # where one tile's edge falls
    at_edges = jumps[:, edges].mean()
    assert at_edges <= 3 * jumps.mean() + 1e-9 and jumps.max() < 0.05


def test_padding_to_a_multiple_round_trips_and_lets_a_unet_take_any_size():
    x = torch.rand(1, 3, 30, 45)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape == (1, 3, 32, 48) and (h, w) == (30, 45) and torch.equal(padded[..., :30, :45], x)
    assert pad_to_multiple(x[..., :2, :2], 8)[0].shape == (1, 3, 8, 8)  # too small to reflect: replicated
    assert pad_to_multiple(x, 1)[0] is x

    def needs_multiple_4(t):  # a two-level U-Net's contract
        assert t.shape[-1] % 4 == 0 and t.shape[-2] % 4 == 0
        return nn.functional.avg_pool2d(t, 3, stride=1, padding=1)

    out = translate_tiled(needs_multiple_4, x, tile=16, overlap=4, multiple=4)
    assert out.shape == x.shape


def test_arguments_are_checked():
    x = torch.rand(1, 1, 40, 40)
    with pytest.raises(ValueError, match="tile = 30"):
        translate_tiled(lambda t: t, x, tile=30, multiple=4)
    with pytest.raises(ValueError, match="overlap = 32"):
        translate_tiled(lambda t: t, x, tile=32, overlap=32)
