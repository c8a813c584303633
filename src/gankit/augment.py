"""Augmentations that let D train on little data without leaking into G's samples.

Why: with a few thousand images D memorises the real set, its scores for held-out real images drop
towards those of fakes, and G's gradients turn into noise (Karras et al. 2020 and Zhao et al. 2020
both show FID diverging after D overfits). Augmenting only the real images is no cure: D then learns
that "augmented" means "real", and G learns to reproduce the augmentations (cutout holes, shifted
borders). The fix is to pass *both* real and fake images through the same random family of
transforms, every time D sees them, in D's and in G's step:

    D loss on  D(T(x)), D(T(G(z)))      G loss on  D(T(G(z)))      T ~ the same policy

Because G's loss goes through T, every transform here is differentiable with respect to its input.

1. DiffAugment: Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN
   Training". Policies "color", "translation", "cutout", applied in that order, with each image's
   parameters drawn independently (a per-sample ``torch.Generator`` makes runs reproducible).
2. Instance noise: Sønderby et al. 2017, "Amortised MAP Inference for Image Super-resolution", and
   Arjovsky & Bottou 2017, "Towards Principled Methods for Training GANs". Adding N(0, std^2) to both
   real and fake inputs makes the two distributions overlap, so D cannot separate them perfectly and
   its gradients stay informative; std is annealed to 0 as G's samples approach the data.

All images live in the networks' space (values around [-1, 1]); "zero" below is the value 0 there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

POLICIES = ("color", "translation", "cutout")  # the order in which diff_augment applies them


def parse_policy(text: str) -> list[str]:
    """``"color, translation,cutout"`` -> ``["color", "translation", "cutout"]``; ``""`` -> ``[]``.

    Unknown names are refused rather than dropped, so a typo cannot silently disable augmentation.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        _check_name(name)
    return names


def diff_augment(x: Tensor, policy: Sequence[str], generator: torch.Generator | None = None) -> Tensor:
    """Apply the DiffAugment ``policy`` to images ``x`` [B, C, H, W], with fresh parameters per image.

    Zhao et al. 2020. Transforms run in the fixed order color -> translation -> cutout whatever the
    order of ``policy``, as in the paper. Pass real and fake batches through it alike, in D's and in
    G's step. ``generator`` (on ``x``'s device) makes the draws reproducible.
    """
    if x.dim() != 4:
        raise ValueError(f"DiffAugment needs images [B, C, H, W], got shape {tuple(x.shape)}; rows [B, F] "
                         "have no pixels to shift or cut out, so leave the policy empty for tabular data")
    for name in policy:
        _check_name(name)
    if "color" in policy:
        x = contrast(saturation(brightness(x, generator), generator), generator)
    if "translation" in policy:
        x = translation(x, generator=generator)
    if "cutout" in policy:
        x = cutout(x, generator=generator)
    return x


def brightness(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """x + b, b ~ U[-0.5, 0.5] per image (the reference's brightness, in [-1, 1] units)."""
    b = _uniform(x, -0.5, 0.5, generator)  # [B, 1, 1, 1]
    return x + b


def saturation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(x - m) * s + m, m = mean over channels per pixel, s ~ U[0, 2] per image (0 = greyscale)."""
    m = x.mean(dim=1, keepdim=True)  # [B, 1, H, W]
    s = _uniform(x, 0.0, 2.0, generator)  # [B, 1, 1, 1]
    return (x - m) * s + m


def contrast(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(x - m) * c + m, m = mean of the whole image, c ~ U[0.5, 1.5] per image."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)  # [B, 1, 1, 1]
    c = _uniform(x, 0.5, 1.5, generator)  # [B, 1, 1, 1]
    return (x - m) * c + m


def translation(x: Tensor, ratio: float = 1 / 8, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image by integers (dy, dx) ~ U{-r_H..r_H} x U{-r_W..r_W}, r = round(ratio * size).

    out[i, j] = x[i - dy, j - dx], and 0 where that falls outside the image: content moved past the
    border is lost and the uncovered border is zero, as in the reference (zero padding).
    """
    B, _, H, W = x.shape
    ry, rx = _round_half_up(H * ratio), _round_half_up(W * ratio)
    dy = torch.randint(-ry, ry + 1, (B,), generator=generator, device=x.device)
    dx = torch.randint(-rx, rx + 1, (B,), generator=generator, device=x.device)
    return _shift(_shift(x, dy, dim=2), dx, dim=3)


def cutout(x: Tensor, ratio: float = 1 / 2, generator: torch.Generator | None = None) -> Tensor:
    """Zero a round(ratio*H) x round(ratio*W) rectangle centred at a random pixel of each image.

    The centre may sit on the border, so the square may be clipped (as in the reference). Done as
    ``x * mask`` so gradients still reach every pixel outside the square.
    """
    B, _, H, W = x.shape
    inside_rows = _random_window(B, H, _round_half_up(H * ratio), x.device, generator)  # [B, H]
    inside_cols = _random_window(B, W, _round_half_up(W * ratio), x.device, generator)  # [B, W]
    cut = inside_rows[:, :, None] & inside_cols[:, None, :]  # [B, H, W]
    mask = (~cut).to(x.dtype)[:, None]  # [B, 1, H, W]
    return x * mask


def instance_noise(x: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """x + std * N(0, 1), elementwise; ``x`` itself when std == 0 (Sønderby et al. 2017).

    Add to real and fake inputs of D alike; anneal std with :func:`annealed_std`.
    """
    if std < 0:
        raise ValueError(f"instance noise std must be >= 0, got {std}")
    if std == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise


def annealed_std(initial: float, step: int, total: int) -> float:
    """std_t = initial * max(0, 1 - t / total): linear from ``initial`` at step 0 to 0 at ``total``.

    Noise helps early, when real and fake barely overlap, and only blurs D once G is close.
    """
    if total <= 0:
        return 0.0
    return initial * max(0.0, 1.0 - step / total)


def _check_name(name: str) -> None:
    if name not in POLICIES:
        raise ValueError(f"unknown DiffAugment policy {name!r}; allowed: {', '.join(POLICIES)}")


def _round_half_up(v: float) -> int:
    # The reference's int(v + 0.5): round(0.5) would give 0 (banker's rounding) and disable a 4-pixel shift.
    return int(v + 0.5)


def _uniform(x: Tensor, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    u = torch.rand((x.shape[0], 1, 1, 1), generator=generator, device=x.device, dtype=x.dtype)
    return low + (high - low) * u  # [B, 1, 1, 1]


def _shift(x: Tensor, shift: Tensor, dim: int) -> Tensor:
    """Move each image's content by ``shift[b]`` along ``dim`` (2 rows, 3 columns), filling with 0."""
    n = x.shape[dim]
    src = torch.arange(n, device=x.device) - shift[:, None]  # [B, n]: where each output index reads
    valid = (src >= 0) & (src < n)
    view = [x.shape[0], 1, 1, 1]
    view[dim] = n
    index = src.clamp(0, n - 1).view(view).expand_as(x)
    moved = x.gather(dim, index)  # differentiable: its backward scatters gradients to the source pixels
    return torch.where(valid.view(view), moved, torch.zeros((), dtype=x.dtype, device=x.device))


def _random_window(batch: int, n: int, size: int, device: torch.device,
                   generator: torch.Generator | None) -> Tensor:
    """[B, n] bools: a window of ``size`` centred at a random index, clipped by the border.

    The window covers [c - size//2, c - size//2 + size) with centre c ~ U{0..n-1}, plus n for even
    sizes (the reference's range), so a square of even side can hang off either border by half.
    """
    centre = torch.randint(0, n + 1 - size % 2, (batch, 1), generator=generator, device=device)
    start = centre - size // 2
    i = torch.arange(n, device=device)  # [n]
    return (i >= start) & (i < start + size)
