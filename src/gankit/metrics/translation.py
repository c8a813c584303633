"""Image-to-image scores on pixels in [0, 1], [N, C, H, W]: PSNR, SSIM, the SR papers' Y channel and border crop,
and bicubic upsampling, the baseline every super-resolution paper reports.

SSIM is Wang, Bovik, Sheikh and Simoncelli (2004), "Image quality assessment: from error visibility to
structural similarity", with their 11x11 Gaussian window (sigma 1.5), K1 = 0.01 and K2 = 0.03: the same as
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)``, which filters the whole image and then crops (win - 1) / 2 = 5 pixels from each side of the SSIM
map; the crop leaves exactly the pixels whose window lies inside the image, so 'valid' filtering here gives the
same map without any padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SIGMA, RADIUS = 1.5, 5  # scipy's gaussian_filter with truncate = 3.5: radius int(3.5 * 1.5 + 0.5) = 5
K1, K2 = 0.01, 0.03


def rgb_to_y(x: Tensor) -> Tensor:
    """ITU-R BT.601 luma as MATLAB's rgb2ycbcr gives it, which the SR evaluation scripts (SRGAN, EDSR) use:
    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 1]; grey images are returned as they are."""
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def shave(x: Tensor, border: int) -> Tensor:
    """Crop ``border`` pixels from every side (the SR convention: border = the scale factor)."""
    return x[..., border:x.shape[-2] - border, border:x.shape[-1] - border] if border > 0 else x


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """[N] per image: 10 log10(range^2 / MSE), the MSE over C, H and W; +inf for identical images."""
    mse = (x.double() - y.double()).square().flatten(1).mean(1)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def mean_psnr(values: Tensor, cap: float = 100.0) -> float:
    """The mean over images, an identical image's infinite PSNR counted as ``cap`` dB."""
    return float(values.clamp(max=cap).mean())


def _window() -> Tensor:  # [11] the normalised 1-D Gaussian, float64
    t = torch.arange(-RADIUS, RADIUS + 1, dtype=torch.float64)
    w = torch.exp(-t * t / (2 * SIGMA * SIGMA))
    return w / w.sum()


def _blur(x: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filtering of [M, 1, H, W] float64."""
    w = _window().to(x.device)
    x = F.conv2d(x, w.view(1, 1, 1, -1))
    return F.conv2d(x, w.view(1, 1, -1, 1))


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """[N] per image: the mean SSIM over the map's valid pixels and over channels. Images need sides >= 11."""
    if min(x.shape[-2:]) < 2 * RADIUS + 1:
        raise ValueError(f"ssim: images of {list(x.shape[-2:])} pixels; expected sides of at least {2 * RADIUS + 1}")
    n, c = x.shape[:2]
    a = x.double().reshape(n * c, 1, *x.shape[-2:])
    b = y.double().reshape(n * c, 1, *y.shape[-2:])
    stats = _blur(torch.cat([a, b, a * a, b * b, a * b], 1).reshape(-1, 1, *a.shape[-2:]))
    mu_a, mu_b, aa, bb, ab = stats.reshape(n * c, 5, *stats.shape[-2:]).unbind(1)
    var_a, var_b, cov = aa - mu_a * mu_a, bb - mu_b * mu_b, ab - mu_a * mu_b
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1).reshape(n, c).mean(1)


def sr_scores(output: Tensor, target: Tensor, factor: int) -> dict[str, float]:
    """The SR convention: PSNR and SSIM on the Y channel with ``factor`` pixels shaved from each side (means over
    the images), and PSNR on all channels (``psnr_rgb``, also shaved)."""
    out, ref = shave(output.clamp(0, 1), factor), shave(target, factor)
    y_out, y_ref = rgb_to_y(out), rgb_to_y(ref)
    return {"psnr": mean_psnr(psnr(y_out, y_ref)), "ssim": float(ssim(y_out, y_ref).mean()),
            "psnr_rgb": mean_psnr(psnr(out, ref))}


def bicubic_upsample(x: Tensor, factor: int) -> Tensor:
    """[N, C, H, W] -> [N, C, H * factor, W * factor]: bicubic interpolation (a = -0.75), clamped to [0, 1]."""
    return F.interpolate(x.float(), scale_factor=factor, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)


__all__ = ["bicubic_upsample", "mean_psnr", "psnr", "rgb_to_y", "shave", "sr_scores", "ssim"]
