"""CycleGAN's generator (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"; the architecture of Johnson et al. 2016, "Perceptual Losses for Real-Time Style
Transfer"): images in [-1, 1] -> images in [-1, 1] of the same size.

Reflection-padded 7x7 conv -> ``downsamplings`` stride-2 3x3 convs, doubling the width -> ``blocks``
residual blocks (reflection padding) -> stride-2 transposed convs back up -> reflection-padded 7x7 conv
-> tanh. Each conv but the last is followed by the norm and ReLU. CycleGAN uses blocks = 9 at 256x256
and 6 at 128x128.
"""

from __future__ import annotations

from torch import Tensor, nn

from .unet import check_size, norm2d


class ReflectionResidualBlock(nn.Module):
    """x + (pad - conv3 - norm - ReLU - pad - conv3 - norm)(x)."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        bias = norm != "batch"
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm2d(norm, channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm2d(norm, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """[N, in_channels, H, W] -> [N, out_channels, H, W] in [-1, 1]; H and W multiples of 2^downsamplings
    and at least twice that (reflection padding needs the smallest map to be 2 pixels wide).

    Widths base, 2 base, ... capped at 8 base. 28x28 with downsamplings = 2: 28 -> 14 -> 7 -> 14 -> 28.
    """

    def __init__(self, in_channels: int, out_channels: int, base: int = 64, blocks: int = 9, downsamplings: int = 2,
                 norm: str = "instance"):
        super().__init__()
        norm2d(norm, 1)  # validate the name
        self._config = dict(in_channels=in_channels, out_channels=out_channels, base=base, blocks=blocks,
                            downsamplings=downsamplings, norm=norm)
        self.in_channels, self.out_channels, self.factor = in_channels, out_channels, 1
        self.multiple = 2 ** downsamplings
        bias = norm != "batch"
        widths = [base * min(2 ** i, 8) for i in range(downsamplings + 1)]
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, base, 7, bias=bias),
                                   norm2d(norm, base), nn.ReLU()]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=bias), norm2d(norm, c_out), nn.ReLU()]
        layers += [ReflectionResidualBlock(widths[-1], norm) for _ in range(blocks)]
        for c_in, c_out in zip(widths[::-1], widths[-2::-1]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1, bias=bias), norm2d(norm, c_out),
                       nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(base, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def config(self) -> dict:
        """The constructor's arguments, for ``translators.build_translator("resnet", ...)``."""
        return dict(self._config)

    def forward(self, x: Tensor) -> Tensor:  # [N, C_in, H, W] -> [N, C_out, H, W]
        check_size(x, self.multiple, type(self).__name__)
        return self.net(x)
