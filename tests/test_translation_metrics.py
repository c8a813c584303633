"""PSNR, SSIM and the SR conventions against scikit-image's own implementations and the closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gankit.metrics.translation import bicubic_upsample, psnr, rgb_to_y, shave, sr_scores, ssim


def as_tensor(image: np.ndarray) -> torch.Tensor:  # [H, W] or [H, W, 3] in [0, 1] -> [1, C, H, W]
    t = torch.from_numpy(image.astype(np.float64))
    return (t[None] if t.dim() == 2 else t.permute(2, 0, 1))[None]


def pairs():
    rng = np.random.default_rng(0)
    camera = data.camera()[200:228, 100:128] / 255.0  # a real 28x28 grey crop
    astronaut = data.astronaut()[60:124, 180:260] / 255.0  # a real 64x80 colour crop
    for image in (camera, astronaut, rng.random((28, 28)), rng.random((64, 80, 3))):
        noisy = np.clip(image + rng.normal(0, 0.08, image.shape), 0, 1)
        blurred = (image + np.roll(image, 1, 0) + np.roll(image, 1, 1)) / 3
        yield image, noisy
        yield image, blurred


@pytest.mark.parametrize("k", range(8))
def test_ssim_and_psnr_equal_scikit_images(k):
    a, b = list(pairs())[k]
    colour = a.ndim == 3
    expected = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, channel_axis=2 if colour else None)
    assert float(ssim(as_tensor(a), as_tensor(b))) == pytest.approx(expected, abs=1e-10)
    assert float(psnr(as_tensor(a), as_tensor(b))) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0))


def test_scores_are_per_image_and_psnr_has_its_closed_form():
    x = torch.rand(3, 1, 20, 20, dtype=torch.float64)
    y = x + 0.1 * torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64).view(3, 1, 1, 1)  # MSE 0.01, 0.01, 0.0025
    torch.testing.assert_close(psnr(x, y), torch.tensor([20.0, 20.0, 26.0206], dtype=torch.float64), atol=1e-4,
                               rtol=0)
    assert psnr(x, x).isinf().all() and torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(ssim(x, y)[:1], ssim(x[:1], y[:1]))  # each image alone, whatever its batch
    with pytest.raises(ValueError, match="at least 11"):
        ssim(x[..., :8, :8], y[..., :8, :8])


def test_luma_is_bt601_in_studio_range_and_shave_crops_each_side():
    colours = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).view(3, 3, 1, 1)
    y = rgb_to_y(colours).flatten()
    torch.testing.assert_close(y, torch.tensor([235.0, 16.0, 16 + 65.481]) / 255)
    grey = torch.rand(2, 1, 5, 5)
    assert rgb_to_y(grey) is grey
    assert shave(torch.zeros(1, 1, 20, 30), 4).shape == (1, 1, 12, 22) and shave(grey, 0) is grey


def test_sr_scores_shave_the_border_and_bicubic_is_the_baseline():
    image = torch.from_numpy(data.astronaut()[:128, :128] / 255.0).permute(2, 0, 1)[None].float()
    low = torch.nn.functional.interpolate(image, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1)
    up = bicubic_upsample(low, 4)
    assert up.shape == image.shape and 0 <= up.min() and up.max() <= 1
    scores = sr_scores(up, image, 4)
    y_up, y_ref = rgb_to_y(shave(up, 4)), rgb_to_y(shave(image, 4))
    assert scores["psnr"] == pytest.approx(peak_signal_noise_ratio(y_ref.numpy(), y_up.numpy(), data_range=1), abs=1e-4)
    assert 20 < scores["psnr"] < 35 and 0.5 < scores["ssim"] < 1 and scores["psnr_rgb"] < scores["psnr"] + 3
    spoiled = up.clone()
    spoiled[..., :4, :] = 1 - spoiled[..., :4, :]  # a wrong border changes nothing: it is shaved
    assert sr_scores(spoiled, image, 4)["psnr"] == pytest.approx(scores["psnr"])
