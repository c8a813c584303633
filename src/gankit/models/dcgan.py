"""DCGAN-family convolutional G and D for images (Radford et al. 2015, "Unsupervised Representation
Learning with Deep Convolutional GANs").

G: z (+ label embedding) -> linear projection to [C0, s0, s0] -> transposed convolutions (kernel 4,
stride 2) with batch norm and ReLU, each doubling the resolution and halving the width -> tanh.
D: the mirror image: strided convolutions with LeakyReLU(0.2) (batch norm after the first) -> one logit.
Square images of side s0 * 2^n with s0 <= 7 and n >= 1: 8, 16, 32, 64, 128, 256 (s0 = 4) and
14, 28, 56 (s0 = 7, the MNIST family).

Conditioning: G always concatenates a label embedding to z (Mirza & Osindero 2014). D either
concatenates label maps to its input (``concat``: the embedding broadcast over the image) or uses a
projection discriminator (``projection``, Miyato & Koyama 2018): logit = psi(h) + <embed(y), h>
with h the sum-pooled last features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import GankitError
from . import MODELS
from .layers import MinibatchDiscrimination, apply_spectral_norm, pack_samples
from .mlp import _Conditioned


def stages(size: int) -> tuple[int, int]:
    """(s0, n): the side of the first feature map and the number of 2x up/down-samplings."""
    s0, n = size, 0
    while s0 > 7 and s0 % 2 == 0:
        s0, n = s0 // 2, n + 1
    if n == 0 or s0 > 7:
        raise GankitError(f"image size {size} is not supported by the DCGAN models; expected s * 2^n with s <= 7 "
                          f"and n >= 1: 8, 16, 32, 64, 128, 256 or 14, 28, 56")
    return s0, n


def widths(width: int, n: int) -> list[int]:
    """Channels at each resolution, widest at the smallest map: width * 2^(n-1), ..., width (capped at 8 x width)."""
    return [width * min(2 ** (n - 1 - i), 8) for i in range(n)]


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


class DCGANGenerator(_Conditioned):
    def __init__(self, z_dim: int, shape: tuple[int, int, int], width: int = 64, depth: int = 0,
                 num_classes: int = 0, embed_dim: int = 16, out_activation: str = "tanh"):
        super().__init__(num_classes, embed_dim)
        channels, height, width_px = shape
        if height != width_px:
            raise GankitError(f"image shape {shape}: the DCGAN models need square images")
        self.z_dim, self.shape = z_dim, tuple(shape)
        self.s0, n = stages(height)
        chans = widths(width, n)
        self.project = nn.Linear(z_dim + (embed_dim if num_classes else 0), chans[0] * self.s0 * self.s0)
        layers: list[nn.Module] = [nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            for _ in range(depth):
                layers += [nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(chans[-1], channels, 4, 2, 1))
        layers.append(nn.Tanh() if out_activation == "tanh" else nn.Identity())
        self.net = nn.Sequential(*layers)
        self.c0 = chans[0]

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # [B, z_dim] -> [B, C, H, W]
        h = self.project(self._with_label(z, y)).view(-1, self.c0, self.s0, self.s0)  # [B, C0, s0, s0]
        return self.net(h)


class DCGANDiscriminator(nn.Module):
    """x (+ label maps) -> strided convolutions -> the flattened last map h -> one logit (+ projection).

    Options, all off by default: ``minibatch_features`` K appends K minibatch-discrimination features
    to h; ``pack`` m judges packs of m images stacked along channels (with their label maps for
    ``concat``; for ``projection`` the m samples' projection terms are summed, all against the pack's
    one feature map); ``spectral_norm`` normalises every convolution and linear layer. ``features``
    gives the input of the last layer, for feature matching.
    """

    def __init__(self, shape: tuple[int, int, int], width: int = 64, depth: int = 0, num_classes: int = 0,
                 embed_dim: int = 16, conditioning: str = "concat", norm: str = "batch", minibatch_features: int = 0,
                 pack: int = 1, spectral_norm: bool = False):
        super().__init__()
        channels, height, _ = shape
        s0, n = stages(height)
        chans = widths(width, n)[::-1]  # narrow at full resolution, widest at s0
        self.num_classes, self.conditioning, self.pack = num_classes, conditioning, pack
        concat = num_classes and conditioning == "concat"
        self.label_maps = nn.Embedding(num_classes, embed_dim) if concat else None
        layers: list[nn.Module] = [nn.Conv2d(pack * (channels + (embed_dim if concat else 0)), chans[0], 4, 2, 1),
                                   nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(chans, chans[1:]):
            for _ in range(depth):
                layers += [nn.Conv2d(c_in, c_in, 3, 1, 1), _norm(norm, c_in), nn.LeakyReLU(0.2, True)]
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), _norm(norm, c_out), nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers)
        self.last_channels, self.last_size = chans[-1], chans[-1] * s0 * s0
        self.minibatch = (MinibatchDiscrimination(self.last_size, minibatch_features)
                          if minibatch_features else None)
        self.head = nn.Linear(self.last_size + minibatch_features, 1)
        self.projection = (nn.Embedding(num_classes, chans[-1])
                           if num_classes and conditioning == "projection" else None)
        if spectral_norm:
            apply_spectral_norm(self)
        self.register_load_state_dict_pre_hook(_rename_old_keys)

    @property
    def batch_independent(self) -> bool:
        """Whether each sample's score depends on it alone (no batch norm, packs or minibatch features), so
        real and fake batches may share one pass."""
        return (self.pack == 1 and self.minibatch is None
                and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules()))

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # [B, C, H, W] -> [B/m, F]
        if self.num_classes and y is None:
            raise ValueError(f"{type(self).__name__} is conditional ({self.num_classes} classes) and needs labels y")
        if self.label_maps is not None:
            maps = self.label_maps(y)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])  # [B, E, H, W]
            x = torch.cat([x, maps], dim=1)  # [B, C + E, H, W]
        x = pack_samples(x, self.pack, type(self).__name__)  # [B/m, m*(C + E), H, W]
        h = self.body(x).flatten(1)  # [B/m, C_last * s0 * s0]
        if self.minibatch is None:
            return h
        return torch.cat([h, self.minibatch(h)], dim=1)  # [B/m, C_last * s0 * s0 + K]

    def last_layer(self, h: Tensor, y: Tensor | None = None) -> Tensor:  # [B/m, F] -> [B/m]
        logit = self.head(h).squeeze(1)
        if self.projection is not None:  # + sum over the pack of <embed(y), sum-pooled last map>
            pooled = h[:, :self.last_size].unflatten(1, (self.last_channels, -1)).sum(2)  # [B/m, C_last]
            label = self.projection(y).view(-1, self.pack, self.last_channels).sum(1)  # [B/m, C_last]
            logit = logit + (label * pooled).sum(1)
        return logit

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # [B, C, H, W] -> [B/m]
        return self.last_layer(self.features(x, y), y)


def _rename_old_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Load checkpoints from before ``features`` became a method: the convolutions were ``features.*``."""
    old = prefix + "features."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + "body." + key[len(old):]] = state_dict.pop(key)


@MODELS.register("dcgan")
def build_dcgan(cfg: ModelConfig, shape: tuple, num_classes: int, out_activation: str):
    if len(shape) != 3:
        raise GankitError(f"model.family = \"dcgan\" needs images [C, H, W]; this data has rows of shape {tuple(shape)}")
    G = DCGANGenerator(cfg.z_dim, shape, cfg.g_hidden, cfg.g_depth, num_classes, cfg.embed_dim, out_activation)
    D = DCGANDiscriminator(shape, cfg.d_hidden, cfg.d_depth, num_classes, cfg.embed_dim, cfg.d_conditioning,
                           cfg.d_norm if cfg.d_norm != "auto" else "batch", cfg.minibatch_features, cfg.pack,
                           cfg.spectral_norm)
    return G, D
