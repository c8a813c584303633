"""Pictures of generated images: pixel mapping, grid layout, class rows, the fixed batch, GIFs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gankit.config import DataConfig
from gankit.data import load_data
from gankit.sampling import (PER_CLASS, fixed_batch, generator_grid, image_grid, read_frames, save_gif, to_image,
                             to_pixels)


def test_minmax_values_map_to_the_full_pixel_range():
    # Normalised -1 is black, 1 is white, (x + 1) / 2 * 255 rounded half up; outside is clipped, NaN is black.
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, -3.0, 3.0, float("nan")]).view(1, 1, 1, 8)
    assert to_pixels(x).ravel().tolist() == [0, 64, 128, 191, 255, 0, 255, 0]


def test_digits_grey_levels_0_to_16_become_0_to_255():
    from sklearn.datasets import load_digits

    data = load_data(DataConfig(name="digits"))
    raw = load_digits().images[:50]  # [50, 8, 8], grey levels 0..16
    pixels = to_pixels(data.x[:50])  # [50, 8, 8, 1]
    assert pixels.shape == (50, 8, 8, 1) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[..., 0], np.floor(raw / 16 * 255 + 0.5))
    assert pixels.max() == 255 and pixels.min() == 0


def test_channels_go_last_and_value_range_none_stretches_the_batch():
    x = torch.stack([torch.full((2, 2), v) for v in (2.0, 3.0, 4.0)]).unsqueeze(0)  # [1, 3, 2, 2], RGB
    pixels = to_pixels(x, value_range=None)
    assert pixels.shape == (1, 2, 2, 3)
    assert pixels[0, 0, 0].tolist() == [0, 128, 255]


def cells(n: int, h: int = 2, w: int = 2) -> np.ndarray:
    """n grey images whose pixels tell which image and which position they are: 10 * i + (0, 1, 2, 3)."""
    return np.stack([10 * (i + 1) + np.arange(h * w).reshape(h, w) for i in range(n)]).astype(np.uint8)[..., None]


def test_grid_layout_padding_and_an_incomplete_row():
    grid = np.asarray(image_grid(cells(3), nrow=2, padding=1, pad_value=5, min_width=0))
    expected = np.array([
        [5, 5, 5, 5, 5, 5, 5],
        [5, 10, 11, 5, 20, 21, 5],
        [5, 12, 13, 5, 22, 23, 5],
        [5, 5, 5, 5, 5, 5, 5],
        [5, 30, 31, 5, 5, 5, 5],
        [5, 32, 33, 5, 5, 5, 5],
        [5, 5, 5, 5, 5, 5, 5],
    ])
    np.testing.assert_array_equal(grid, expected)
    # Enlarged by a whole factor (3 = ceil(20 / 7)) with nearest-neighbour: each pixel becomes a 3x3 block.
    big = np.asarray(image_grid(cells(3), nrow=2, padding=1, pad_value=5, min_width=20))
    np.testing.assert_array_equal(big, np.kron(expected, np.ones((3, 3), int)))


def test_grid_of_8x8_digits_is_viewable_size_and_rgb_stays_rgb():
    grid = image_grid(np.zeros((64, 8, 8, 1), np.uint8))  # 8 per row: 8 * (8 + 1) + 1 = 73 px, enlarged 8x
    assert grid.mode == "L" and grid.size == (584, 584)
    rgb = image_grid(np.array([[[[255, 0, 0], [0, 255, 0]]]], np.uint8), padding=0, min_width=0)  # [1, 1, 2, 3]
    assert rgb.mode == "RGB" and np.asarray(rgb).tolist() == [[[255, 0, 0], [0, 255, 0]]]
    assert to_image(np.zeros((3, 5, 1), np.uint8)).size == (5, 3)
    with pytest.raises(ValueError, match="expected uint8"):
        image_grid(np.zeros((4, 8, 8, 2), np.uint8))


def test_fixed_batch_is_seeded_and_has_one_run_of_labels_per_class():
    z, y = fixed_batch(z_dim=4, num_classes=3, seed=7)
    assert z.shape == (3 * PER_CLASS, 4) and y.tolist() == [0] * PER_CLASS + [1] * PER_CLASS + [2] * PER_CLASS
    assert torch.equal(z, fixed_batch(4, 3, seed=7)[0]) and not torch.equal(z, fixed_batch(4, 3, seed=8)[0])
    z, y = fixed_batch(z_dim=4, seed=7)
    assert z.shape == (64, 4) and y is None


class ClassColour(nn.Module):
    """A conditional 'generator' whose image of class k is flat grey k / (K - 1) (normalised to [-1, 1])."""

    def __init__(self, num_classes: int, side: int = 4):
        super().__init__()
        self.k, self.side, self.modes = num_classes, side, []

    def forward(self, z, y=None):
        self.modes.append(self.training)
        level = (y.float() / (self.k - 1)) * 2 - 1 if y is not None else z[:, 0].tanh()
        return level.view(-1, 1, 1, 1).expand(-1, 1, self.side, self.side)


def test_conditional_grid_has_one_named_row_per_class():
    G, names = ClassColour(3).train(), ["zero", "one", "two"]
    z, y = fixed_batch(z_dim=2, num_classes=3, seed=0)
    grid = np.asarray(generator_grid(G, z, y, names))
    assert G.modes == [False] and G.training  # drawn in eval mode, training mode given back
    native = PER_CLASS * 5 + 1  # cells of 4 px plus 1 px padding
    scale = math.ceil(512 / native)
    margin = grid.shape[1] - native * scale
    assert grid.shape[0] == (3 * 5 + 1) * scale and margin > 0
    for row in range(3):
        top = (1 + 5 * row) * scale
        band = grid[top:top + 4 * scale]
        for col in range(PER_CLASS):
            left = margin + (1 + 5 * col) * scale
            assert (band[:, left:left + 4 * scale] == round(row / 2 * 255)).all()
        assert (band[:, :margin] == 255).sum() > 10  # the class name, white on the dark margin


def test_unconditional_grid_is_8_by_8():
    G = ClassColour(2)
    grid = generator_grid(G, *fixed_batch(z_dim=2, seed=0))
    assert grid.size == ((8 * 5 + 1) * 13, (8 * 5 + 1) * 13)  # 41 px enlarged 13x to reach 512


def test_gif_has_every_frame_loops_forever_and_holds_the_last(tmp_path):
    frames = [Image.fromarray(np.full((6, 8), 40 * i, np.uint8)) for i in range(4)]
    path = save_gif(frames, tmp_path / "a.gif", duration=[100, 100, 100, 900])
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.info["loop"] == 0 and gif.size == (8, 6)
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            assert np.asarray(gif.convert("L"))[0, 0] == 40 * i
    assert durations == [100, 100, 100, 900]


def test_read_frames_keeps_first_and_last_when_thinning(tmp_path):
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((2, 2), i, np.uint8)).save(paths[-1])
    frames = read_frames(paths, max_frames=3)
    assert [np.asarray(f)[0, 0] for f in frames] == [0, 3, 6]
