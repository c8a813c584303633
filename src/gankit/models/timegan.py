"""TimeGAN's networks (Yoon et al. 2019): the generator that samples (generator, supervisor and recovery in one
module, ``TimeGANGenerator``) and the recurrent stacks of the embedder and the latent discriminator. The game
that trains them is ``gankit.games.timegan``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import GankitError
from . import MODELS
from .rnn import CELLS, RNNGenerator, uniform


class RNNStack(nn.Module):
    """Recurrent layers, then a linear map per step and an activation (the reference's rnn + dense)."""

    def __init__(self, inputs: int, hidden: int, layers: int, outputs: int, activation: str = "sigmoid",
                 cell: str = "gru"):
        super().__init__()
        self.rnn = CELLS[cell](inputs, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, outputs)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:  # [B, T, inputs] -> [B, T, outputs]
        v = self.out(self.rnn(x)[0])
        return torch.sigmoid(v) if self.activation == "sigmoid" else v


class TimeGANGenerator(nn.Module):
    """z [B, 1 + T F] ~ N(0, I) -> x [B, T, F]: recovery(supervisor(generator(Phi(z)))). z_0 draws the length
    (as ``RNNGenerator`` does); ``minmax``: outputs in [-1, 1] (2 sigmoid - 1), else unbounded."""

    def __init__(self, shape: tuple[int, ...], hidden: int = 24, layers: int = 3, cell: str = "gru",
                 out_activation: str = "tanh"):
        super().__init__()
        self.steps, self.features = int(shape[0]), int(shape[1])
        self.shape = (self.steps, self.features)
        self.z_dim = 1 + self.steps * self.features  # the reference's noise: one value per step and feature
        self.bounded = out_activation == "tanh"
        self.generator = RNNStack(self.features, hidden, layers, hidden, "sigmoid", cell)
        self.supervisor = RNNStack(hidden, hidden, layers - 1, hidden, "sigmoid", cell)
        self.recovery = RNNStack(hidden, hidden, layers, self.features, "sigmoid" if self.bounded else "none", cell)
        self.register_buffer("length_cdf", torch.cat([torch.zeros(self.steps - 1), torch.ones(1)]))

    fit_lengths = RNNGenerator.fit_lengths
    lengths = RNNGenerator.lengths

    def latent(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(E_hat, H_hat): the generator's latent sequence and the supervisor's next-step version of it."""
        e_hat = self.generator(uniform(z[:, 1:].view(-1, self.steps, self.features)))
        return e_hat, self.supervisor(e_hat)

    def to_data(self, h: Tensor) -> Tensor:
        """Recovery of latents h [B, T, H] in the networks' units ([-1, 1] for minmax data)."""
        x = self.recovery(h)
        return 2 * x - 1 if self.bounded else x

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # [B, z_dim] -> [B, T, F]
        x = self.to_data(self.latent(z)[1])
        alive = torch.arange(self.steps, device=z.device) < self.lengths(z)[:, None]
        return x * alive[:, :, None].to(x.dtype)


@MODELS.register("timegan")
def build_timegan(cfg, shape: tuple, num_classes: int, out_activation: str):
    """TimeGAN's generator (with its supervisor and recovery) and its latent discriminator."""
    if len(shape) != 2:
        raise GankitError(f"game.name = \"timegan\" reads sequences [T, F]; this data's samples have shape {list(shape)}")
    if cfg.g_depth < 2:
        raise GankitError(f"model.g_depth = {cfg.g_depth}: TimeGAN's supervisor has g_depth - 1 recurrent layers; "
                          f"expected at least 2")
    G = TimeGANGenerator(shape, cfg.g_hidden, cfg.g_depth, cfg.cell, out_activation)
    D = RNNStack(cfg.g_hidden, cfg.g_hidden, cfg.g_depth, 1, "none", cfg.cell)
    return G, D
