"""SRGAN's generator, SRResNet (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using
a GAN"): low-res [N, C, h, w] in [-1, 1] -> high-res [N, C', factor h, factor w].

9x9 conv + PReLU -> ``blocks`` residual blocks (conv3 - BN - PReLU - conv3 - BN, + skip) -> conv3 (+ BN)
+ a skip over the whole trunk -> log2(factor) x (conv3 to 4 x channels, PixelShuffle(2), PReLU) -> 9x9
conv. Batch norm is off by default: ESRGAN (Wang et al. 2018) found it brings artefacts and hurts.

``residual``: the output is bicubic(x) + net(x), so the net learns only the detail bicubic misses (as
VDSR did, Kim et al. 2016); with the last conv initialised small, the untrained net is nearly bicubic,
which converges much faster on a CPU. The output is left unclamped (bicubic overshoots [-1, 1] a
little at edges, and a clamp would zero the gradient there); clamp it for pictures and metrics.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

FACTORS = (2, 4, 8)


class ResidualBlock(nn.Module):
    """x + (conv3 - BN? - PReLU - conv3 - BN?)(x), at constant width."""

    def __init__(self, channels: int, norm: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not norm), nn.BatchNorm2d(channels) if norm else nn.Identity(),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=not norm), nn.BatchNorm2d(channels) if norm else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """[N, in_channels, h, w] -> [N, out_channels, factor h, factor w]; any h, w (multiple = 1).

    The paper's net is channels = 64, blocks = 16, factor = 4, with batch norm and no bicubic residual;
    channels = 32, blocks = 6 is a CPU-sized one. ``residual`` needs in_channels == out_channels.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 64, blocks: int = 16, factor: int = 4,
                 norm: bool = False, residual: bool = True):
        super().__init__()
        if factor not in FACTORS:
            raise ValueError(f"factor = {factor}; SRResNet upsamples by one of {', '.join(map(str, FACTORS))}")
        if residual and in_channels != out_channels:
            raise ValueError(f"residual = True adds the bicubic-upsampled input to the output, so in_channels "
                             f"({in_channels}) must equal out_channels ({out_channels})")
        self._config = dict(in_channels=in_channels, out_channels=out_channels, channels=channels, blocks=blocks,
                            factor=factor, norm=norm, residual=residual)
        self.in_channels, self.out_channels, self.factor, self.multiple = in_channels, out_channels, factor, 1
        self.residual = residual
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 9, 1, 4), nn.PReLU(channels))
        self.trunk = nn.Sequential(*[ResidualBlock(channels, norm) for _ in range(blocks)],
                                   nn.Conv2d(channels, channels, 3, 1, 1, bias=not norm),
                                   nn.BatchNorm2d(channels) if norm else nn.Identity())
        upsample: list[nn.Module] = []
        for _ in range(factor.bit_length() - 1):  # log2(factor) stages of 2x
            upsample += [nn.Conv2d(channels, 4 * channels, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(channels)]
        self.upsample = nn.Sequential(*upsample)
        self.tail = nn.Conv2d(channels, out_channels, 9, 1, 4)
        if residual:  # start near bicubic: the net's correction is ~0.1 of its default scale
            self.tail.weight.data.mul_(0.1)
            self.tail.bias.data.zero_()

    def config(self) -> dict:
        """The constructor's arguments, for ``translators.build_translator("srresnet", ...)``."""
        return dict(self._config)

    def forward(self, x: Tensor) -> Tensor:  # [N, C_in, h, w] -> [N, C_out, factor h, factor w]
        h = self.head(x)  # [N, channels, h, w]
        h = h + self.trunk(h)  # the skip over all residual blocks
        out = self.tail(self.upsample(h))  # [N, C_out, factor h, factor w]
        if self.residual:
            out = out + F.interpolate(x, scale_factor=self.factor, mode="bicubic", align_corners=False)
        return out
