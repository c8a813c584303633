"""The feature ("content") network of SRGAN's perceptual loss (Ledig et al. 2017), built locally, never
downloaded: content loss = mean over the map of (phi(fake) - phi(real))^2.

Two kinds of phi, both frozen and always in eval mode, taking images in [-1, 1]:
- "fashion-mnist" or "digits": the conv trunk of gankit's shipped classifier (``metrics.classifier``),
  three conv-BN-ReLU-maxpool blocks; 28x28 -> [N, 64, 3, 3]. Grey images only.
- a path to a VGG-19 .safetensors file with torchvision's ``vgg19().state_dict()`` names: the 16-conv
  feature stack cut after ``features.34`` (conv5_4) and before its ReLU, i.e. torchvision's
  ``vgg19().features[:35]``. SRGAN's VGG54 took conv5_4 after the ReLU; ESRGAN (Wang et al. 2018) showed
  the features before it are denser and keep brightness better. Four max-pools come before conv5_4, so
  H x W -> [N, 512, H/16, W/16]: images need sides of at least 16.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GankitError

# torchvision's VGG-19 ("E") feature layers: convolution widths, "M" = 2x2 max-pool.
VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG54_CUT = 35  # features[:35] ends with conv5_4 (features.34), before its ReLU (features.35)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def vgg19_features(cut: int = VGG54_CUT) -> nn.Sequential:
    """The first ``cut`` layers of VGG-19's feature stack, indexed as torchvision's (``features.N``)."""
    layers: list[nn.Module] = []
    channels = 3
    for v in VGG19:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers[:cut])


class ContentNetwork(nn.Module):
    """phi: [N, channels, H, W] in [-1, 1] -> a feature map [N, F, h, w]; frozen and always in eval mode
    (``train()`` is ignored, so batch norm keeps its running statistics inside a training model)."""

    def __init__(self, features: nn.Module, channels: int, imagenet: bool, name: str):
        super().__init__()
        self.features, self.channels, self.imagenet, self.name = features, channels, imagenet, name
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "ContentNetwork":
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:  # [N, C, H, W] -> [N, F, h, w]
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"content network {self.name} takes [N, {self.channels}, H, W]; got {list(x.shape)}")
        if self.imagenet:
            x = (x + 1) / 2  # pixels in [0, 1]
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)  # grey -> RGB
            x = (x - self.mean) / self.std
        # The classifier's trunk was trained on (p - 0.5) / 0.5 for pixels p in [0, 1]: exactly x in [-1, 1].
        return self.features(x)


def content_network(spec: str, channels: int) -> ContentNetwork:
    """The frozen feature network named by ``spec``: "fashion-mnist", "digits" or a VGG-19 .safetensors path."""
    from ..metrics.classifier import KNOWN, load_classifier

    if spec in KNOWN:
        model = load_classifier(spec)
        if channels != model.in_channels:
            raise GankitError(f"content network {spec!r} is the {spec} classifier, which takes "
                              f"{model.in_channels}-channel images; these have {channels}")
        return ContentNetwork(model.conv, channels, imagenet=False, name=spec)
    if channels not in (1, 3):
        raise GankitError(f"content network {spec}: VGG-19 takes 1- or 3-channel images; these have {channels}")
    features = vgg19_features()
    features.load_state_dict(_vgg_weights(Path(spec), features))
    return ContentNetwork(features, channels, imagenet=True, name=spec)


def _vgg_weights(path: Path, features: nn.Sequential) -> dict[str, Tensor]:
    """The ``features.*`` tensors that ``features`` needs, read from ``path`` and checked key by key.

    Read with ``safe_open`` one tensor at a time (no code runs, as with ``load_file``), so a full VGG-19
    file's 470 MB of classifier weights are never loaded."""
    from safetensors import SafetensorError, safe_open

    expected = ("a VGG-19 .safetensors file with torchvision's vgg19().state_dict() key names, "
                "or one of fashion-mnist, digits")
    if not path.is_file():
        raise GankitError(f"{path}: not found; expected {expected}")
    out = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            for key, param in features.state_dict().items():
                name = f"features.{key}"
                if name not in keys:
                    raise GankitError(f"{path}: key {name!r} is missing; expected a tensor of shape "
                                      f"{list(param.shape)} (torchvision's vgg19().state_dict() names)")
                tensor = f.get_tensor(name)
                if tensor.shape != param.shape:
                    raise GankitError(f"{path}: key {name!r} has shape {list(tensor.shape)}; expected "
                                      f"{list(param.shape)} (VGG-19)")
                out[key] = tensor.float()
    except (SafetensorError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GankitError(f"{path}: not a safetensors file ({reason}); expected {expected}") from None
    return out


def content_loss(net: nn.Module, fake: Tensor, real: Tensor) -> Tensor:
    """SRGAN's content loss: mean((phi(fake) - phi(real))^2) over batch, channels and positions; the
    gradient flows to ``fake`` only. (SRGAN rescaled VGG features by 1/12.75; the loss weight covers it.)"""
    with torch.no_grad():
        target = net(real)
    return F.mse_loss(net(fake), target)
