"""pix2pix's networks (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks"): a U-Net generator and a PatchGAN discriminator. Images are in [-1, 1].

U-Net: ``levels`` stride-2 4x4 convolutions down (LeakyReLU 0.2 before each but the first), the mirror
stride-2 4x4 transposed convolutions up (ReLU before each), the decoder layer at each scale taking the
encoder's map of that scale concatenated on channels, tanh out. Widths double per level, capped at
8 x base. levels = 8 is the paper's 256x256 net (down to 1x1); levels = 2 takes 28x28 to 7x7.

PatchGAN: stride-2 4x4 convolutions, then two stride-1 4x4 ones, giving one logit per (overlapping)
patch; ``receptive_field(layers)`` is the patch's side.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import apply_spectral_norm

NORMS = ("batch", "instance", "none")


def norm2d(kind: str, channels: int) -> nn.Module:
    """Batch norm, instance norm without affine parameters (as pix2pix and CycleGAN), or nothing."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm = {kind!r}; expected one of {', '.join(NORMS)}")


def check_size(x: Tensor, multiple: int, owner: str) -> None:
    """Refuse maps whose sides do not divide by ``multiple`` (the skips or the output would misalign)."""
    if x.ndim != 4 or x.shape[2] % multiple or x.shape[3] % multiple:
        raise ValueError(f"{owner} takes [N, C, H, W] with H and W multiples of {multiple}; got {list(x.shape)}")


class UNetGenerator(nn.Module):
    """[N, in_channels, H, W] -> [N, out_channels, H, W] in [-1, 1]; H and W multiples of 2^levels.

    As pix2pix's code, neither the first nor the innermost encoder layer is normalised (a 1x1 map's
    statistics are degenerate), and convolutions followed by batch norm have no bias. Dropout follows
    the ``min(3, levels - 1)`` innermost decoder layers, as the paper's CD512-CD512-CD512 (pix2pix's
    code puts them one layer further out); pix2pix keeps it on at test time as G's only noise, so a
    caller that wants that leaves G in train mode.
    """

    def __init__(self, in_channels: int, out_channels: int, base: int = 64, levels: int = 8,
                 norm: str = "batch", dropout: float = 0.5):
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels = {levels}; the U-Net needs at least 2 down-samplings")
        norm2d(norm, 1)  # validate the name
        self._config = dict(in_channels=in_channels, out_channels=out_channels, base=base, levels=levels,
                            norm=norm, dropout=dropout)
        self.in_channels, self.out_channels, self.factor, self.multiple = in_channels, out_channels, 1, 2 ** levels
        bias = norm != "batch"
        widths = [base * min(2 ** i, 8) for i in range(levels)]  # encoder output channels at each level
        down: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1)]
        for i in range(1, levels):
            inner = i == levels - 1
            down.append(nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=bias or inner),
                                      nn.Identity() if inner else norm2d(norm, widths[i])))
        up: list[nn.Module] = []  # innermost first
        for i in range(levels - 1, 0, -1):
            c_in = widths[i] * (1 if i == levels - 1 else 2)  # decoded map (+ the encoder's skip)
            drop = dropout > 0 and i >= levels - 3
            up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, widths[i - 1], 4, 2, 1, bias=bias),
                                    norm2d(norm, widths[i - 1]), nn.Dropout(dropout) if drop else nn.Identity()))
        up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], out_channels, 4, 2, 1), nn.Tanh()))
        self.down, self.up = nn.ModuleList(down), nn.ModuleList(up)

    def config(self) -> dict:
        """The constructor's arguments, for ``translators.build_translator("unet", ...)``."""
        return dict(self._config)

    def forward(self, x: Tensor) -> Tensor:  # [N, C_in, H, W] -> [N, C_out, H, W]
        check_size(x, self.multiple, type(self).__name__)
        skips = []
        for layer in self.down:
            x = layer(x)  # [N, w_i, H / 2^(i+1), W / 2^(i+1)]
            skips.append(x)
        x = self.up[0](skips.pop())  # innermost: no skip to join
        for layer in self.up[1:]:
            x = layer(torch.cat([skips.pop(), x], dim=1))  # [N, 2 w_i, h, w] -> [N, w_(i-1), 2h, 2w]
        return x


def receptive_field(layers: int) -> int:
    """The side in pixels of the input patch one PatchGAN logit sees: 9 * 2^layers - 2.

    Back from one logit through two stride-1 4x4 convolutions, then ``layers`` stride-2 ones, each
    r -> (r - 1) * stride + 4: layers = 1: 16, 2: 34, 3: 70 (pix2pix's 70x70 PatchGAN), 4: 142, 5: 286.
    Logits near the border see less, as zero padding fills the rest.
    """
    r = 1
    for stride in [1, 1] + [2] * layers:
        r = (r - 1) * stride + 4
    return r


class PatchDiscriminator(nn.Module):
    """[N, in_channels, H, W] -> logits [N, 1, h', w'], one per receptive_field(layers)-wide patch.

    pix2pix judges the pair: its input is the source and the (real or generated) target concatenated
    on channels; SRGAN-style use judges the high-res image alone. Widths base, 2 base, ... capped at
    8 base; no norm on the first layer. Output side: H / 2^layers - 2 (28x28: layers = 2 gives 5x5,
    layers = 3 gives 1x1).
    """

    def __init__(self, in_channels: int, base: int = 64, layers: int = 3, norm: str = "batch",
                 spectral_norm: bool = False):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers = {layers}; the PatchGAN needs at least 1 stride-2 layer")
        norm2d(norm, 1)
        self.in_channels, self.layers, self.norm = in_channels, layers, norm
        self.receptive_field = receptive_field(layers)
        bias = norm != "batch"
        widths = [base * min(2 ** i, 8) for i in range(layers + 1)]
        body: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1  # the last of these keeps the resolution
            body += [nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=bias), norm2d(norm, widths[i]),
                     nn.LeakyReLU(0.2)]
        body.append(nn.Conv2d(widths[layers], 1, 4, 1, 1))
        self.body = nn.Sequential(*body)
        if spectral_norm:
            apply_spectral_norm(self)

    @property
    def batch_independent(self) -> bool:
        """Whether each sample's logits depend on it alone (no batch norm)."""
        return self.norm != "batch"

    def forward(self, x: Tensor) -> Tensor:  # [N, C, H, W] -> [N, 1, H / 2^layers - 2, W / 2^layers - 2]
        return self.body(x)
