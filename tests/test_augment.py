"""DiffAugment and instance noise: differentiable, seeded, and each transform does what its formula says."""

from __future__ import annotations

import pytest
import torch

from gankit.augment import (annealed_std, brightness, contrast, cutout, diff_augment, instance_noise,
                            parse_policy, saturation, translation)

POLICY_CASES = [["color"], ["translation"], ["cutout"], ["color", "translation", "cutout"]]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 8, c: int = 3, h: int = 16, w: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand((b, c, h, w), generator=gen(seed)) * 2 - 1  # [B, C, H, W] in [-1, 1]


@pytest.mark.parametrize("policy", POLICY_CASES)
def test_gradients_reach_the_input(policy):
    x = images().requires_grad_(True)
    weights = torch.rand(x.shape, generator=gen(2))  # avoid a sum whose gradient is trivially constant
    (diff_augment(x, policy, gen()) * weights).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", POLICY_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_and_dtype_kept_and_input_untouched(policy, dtype):
    x = images().to(dtype)
    before = x.clone()
    out = diff_augment(x, policy, gen())
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.equal(x, before)


@pytest.mark.parametrize("policy", POLICY_CASES)
def test_seeded_and_per_sample(policy):
    x = images(b=1).expand(16, -1, -1, -1).contiguous()  # 16 copies of one image
    a, b = diff_augment(x, policy, gen(3)), diff_augment(x, policy, gen(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, policy, gen(4)))
    distinct = {tuple(row.tolist()) for row in a.flatten(1)}
    assert len(distinct) > 1  # each copy drew its own parameters


def test_policy_order_is_fixed():
    x = images()
    assert torch.equal(diff_augment(x, ["cutout", "color"], gen()), diff_augment(x, ["color", "cutout"], gen()))


def test_empty_policy_is_identity():
    x = images()
    assert diff_augment(x, [], gen()) is x


def test_translation_moves_content_by_at_most_an_eighth_with_zero_border():
    B, H, W, r = 64, 16, 16, 2  # r = round(16 / 8)
    x = torch.zeros(B, 2, H, W)
    x[:, 0, 7, 9] = 1.0  # channel 0: one bright pixel, to read the shift back
    x[:, 1] = torch.rand((B, H, W), generator=gen(5)) + 1  # channel 1: content that never equals 0
    out = translation(x, generator=gen(6))
    shifts = set()
    for b in range(B):
        (pos,) = out[b, 0].nonzero().tolist()
        dy, dx = pos[0] - 7, pos[1] - 9
        assert abs(dy) <= r and abs(dx) <= r
        shifts.add((dy, dx))
        expected = torch.zeros(H, W)  # content past the border is lost, the uncovered border is 0
        expected[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
            x[b, 1, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
        assert torch.equal(out[b, 1], expected)
    assert {dy for dy, _ in shifts} == set(range(-r, r + 1))
    assert {dx for _, dx in shifts} == set(range(-r, r + 1))


def test_cutout_zeros_one_square_of_half_the_side():
    B, H, W = 64, 16, 16
    side = 8
    out = cutout(torch.ones(B, 3, H, W), generator=gen(7))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])  # same hole in all channels
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= side * side).all()
    assert (zeros == side * side).any()  # at least one square fully inside
    for b in range(B):  # the hole is one axis-aligned rectangle
        rows, cols = (out[b, 0] == 0).nonzero().unbind(1)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h <= side and w <= side and zeros[b] == h * w
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_cutout_uses_odd_sides_too():
    out = cutout(torch.ones(64, 1, 10, 6), generator=gen(8))  # sides round(5) x round(3)
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros <= 15).all() and (zeros == 15).any()


def test_brightness_shifts_a_constant_image_by_at_most_a_half():
    x = torch.tensor([0.2, -0.4, 0.6]).view(1, 3, 1, 1).expand(64, 3, 8, 8).contiguous()
    delta = brightness(x, gen(9)) - x
    per_image = delta.mean(dim=(1, 2, 3))
    assert torch.allclose(delta, per_image.view(-1, 1, 1, 1).expand_as(delta), atol=1e-6)  # one shift per image
    assert (per_image.abs() <= 0.5).all()
    assert per_image.std() > 0.1  # drawn per sample, spread over the interval


def test_saturation_leaves_grey_unchanged():
    grey = torch.rand((16, 1, 8, 8), generator=gen(10)).expand(16, 3, 8, 8) * 2 - 1
    assert torch.allclose(saturation(grey, gen(11)), grey, atol=1e-6)


def test_saturation_factor_in_0_2():
    x = images(b=64)
    m = x.mean(dim=1, keepdim=True)
    factor = ((saturation(x, gen(12)) - m) / (x - m)).flatten(1).median(dim=1).values
    assert (factor >= -1e-4).all() and (factor <= 2 + 1e-4).all()


def test_contrast_leaves_constant_unchanged():
    x = torch.tensor([0.3, -0.7, 0.1]).view(1, 3, 1, 1).expand(16, 3, 8, 8)
    x = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)  # constant over channels and pixels
    assert torch.allclose(contrast(x, gen(13)), x, atol=1e-6)


def test_contrast_factor_in_half_to_three_halves():
    x = images(b=64)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    factor = ((contrast(x, gen(14)) - m) / (x - m)).flatten(1).median(dim=1).values
    assert (factor >= 0.5 - 1e-4).all() and (factor <= 1.5 + 1e-4).all()


def test_parse_policy():
    assert parse_policy(" color , translation,cutout ") == ["color", "translation", "cutout"]
    assert parse_policy("") == [] and parse_policy("  ") == []
    with pytest.raises(ValueError, match=r"'colour'.*color, translation, cutout"):
        parse_policy("colour,cutout")


def test_diff_augment_refuses_unknown_policy_and_rows():
    with pytest.raises(ValueError, match="'flip'"):
        diff_augment(images(), ["flip"])
    with pytest.raises(ValueError, match=r"DiffAugment needs images \[B, C, H, W\]"):
        diff_augment(torch.zeros(8, 2), ["color"])


def test_annealed_std():
    assert annealed_std(0.1, 0, 100) == pytest.approx(0.1)
    assert annealed_std(0.1, 50, 100) == pytest.approx(0.05)
    assert annealed_std(0.1, 100, 100) == 0.0
    assert annealed_std(0.1, 200, 100) == 0.0


def test_instance_noise_std_and_identity():
    x = images(b=100, c=1, h=25, w=40)  # 100k values
    out = instance_noise(x, 0.3, gen(15))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert abs((out - x).std().item() - 0.3) < 0.05 * 0.3
    assert torch.equal(instance_noise(x, 0.3, gen(15)), out)
    assert instance_noise(x, 0.0) is x
    with pytest.raises(ValueError):
        instance_noise(x, -1.0)


def test_instance_noise_is_differentiable():
    x = images().requires_grad_(True)
    instance_noise(x, 0.1, gen()).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
