"""The FID Inception-v3: the network every published FID is computed with, on weights the user provides.

FID is only comparable across papers when it is computed with one specific network: the Inception-v3 of
TensorFlow's 2015-12-05 graph, used by the original TTUR code (Heusel et al. 2017, "GANs trained by a two
time-scale update rule converge to a local Nash equilibrium") and ported to PyTorch by pytorch-fid, whose
state_dict ``pt_inception-2015-12-05-6726825d.pth`` this module loads with strict key and shape checks.
It differs from torchvision's Inception3 in ways that change the numbers, so each is kept here:
- 1008 logits (the graph's class count), no auxiliary classifier;
- the pool branches of the A, C and first E blocks average without counting the zero padding
  (TensorFlow's ``avg_pool`` with SAME padding), and the last E block (Mixed_7c) max-pools instead;
- BatchNorm eps = 1e-3; input resized to 299x299 bilinearly (align_corners=False), [0, 1] -> [-1, 1].
Layer names follow torchvision's (``Mixed_6b.branch7x7_2.conv.weight``) so that the file loads as it is.

Nothing is downloaded: gankit never reaches the network. The weights are read with
``torch.load(weights_only=True)`` (no arbitrary unpickling) or from a safetensors file with the same keys.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GankitError

INCEPTION_ENV = "GANKIT_INCEPTION_WEIGHTS"
WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_NAME}"
FEATURE_DIM, NUM_LOGITS, INPUT_SIZE = 2048, 1008, 299


class _Conv(nn.Module):
    """Conv (no bias) -> BatchNorm(eps=1e-3, as in the TF graph) -> ReLU; keys ``conv.*`` and ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average that, like TF's SAME padding, ignores the padded zeros at the borders."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg-1x1, 224 + pool_ch channels out."""

    def __init__(self, cin: int, pool_ch: int):
        super().__init__()
        self.branch1x1 = _Conv(cin, 64, 1)
        self.branch5x5_1 = _Conv(cin, 48, 1)
        self.branch5x5_2 = _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(cin, pool_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class _BlockB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | max/2, 384 + 96 + cin channels out."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _BlockC(nn.Module):
    """17x17 block (Mixed_6b-e) with 7x7 convolutions factorised into 1x7 and 7x1; 768 channels out."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        row, col = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = _Conv(cin, 192, 1)
        self.branch7x7_1 = _Conv(cin, c7, 1)
        self.branch7x7_2 = _Conv(c7, c7, **row)
        self.branch7x7_3 = _Conv(c7, 192, **col)
        self.branch7x7dbl_1 = _Conv(cin, c7, 1)
        self.branch7x7dbl_2 = _Conv(c7, c7, **col)
        self.branch7x7dbl_3 = _Conv(c7, c7, **row)
        self.branch7x7dbl_4 = _Conv(c7, c7, **col)
        self.branch7x7dbl_5 = _Conv(c7, 192, **row)
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = conv(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_tf_avg_pool(x))], 1)


class _BlockD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max/2, 320 + 192 + cin out."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = _Conv(cin, 192, 1)
        self.branch3x3_2 = _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(cin, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _BlockE(nn.Module):
    """8x8 block (Mixed_7b/c) whose 3x3 branches split into parallel 1x3 and 3x1; 2048 channels out.

    ``max_pool``: the 2015 graph max-pools in Mixed_7c's pool branch (where the paper averages); FID
    reproduces the graph, not the paper.
    """

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _Conv(cin, 320, 1)
        self.branch3x3_1 = _Conv(cin, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(cin, 448, 1)
        self.branch3x3dbl_2 = _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([
            self.branch1x1(x),                                          # 320
            self.branch3x3_2a(s), self.branch3x3_2b(s),                 # 384 + 384
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d),           # 384 + 384
            self.branch_pool(pooled),                                   # 192
        ], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the 2015-12-05 TF graph: pixels in [0, 1] -> (pool features, 1008 logits).

    Randomly initialised; use ``load_fid_inception`` for the real weights. Call it in eval mode (BatchNorm
    on running statistics, so features do not depend on the batch) and under ``torch.no_grad()``.
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b = _BlockA(192, pool_ch=32)
        self.Mixed_5c = _BlockA(256, pool_ch=64)
        self.Mixed_5d = _BlockA(288, pool_ch=64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, c7=128)
        self.Mixed_6c = _BlockC(768, c7=160)
        self.Mixed_6d = _BlockC(768, c7=160)
        self.Mixed_6e = _BlockC(768, c7=192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_LOGITS)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pool before fc, [N, 2048]: the activations FID's Gaussians are fitted to."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise GankitError(f"Inception input has shape {list(x.shape)}; expected [N, 1 or 3, H, W] in [0, 1]")
        x = x.float().expand(-1, 3, -1, -1)  # grey -> RGB by repetition, as image folders are read
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1                                         # [N, 3, 299, 299] in [-1, 1]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # [N, 64, 147, 147]
        x = F.max_pool2d(x, kernel_size=3, stride=2)          # [N, 64, 73, 73]
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))         # [N, 192, 71, 71]
        x = F.max_pool2d(x, kernel_size=3, stride=2)          # [N, 192, 35, 35]
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))    # [N, 288, 35, 35]
        x = self.Mixed_6a(x)                                  # [N, 768, 17, 17]
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # [N, 768, 17, 17]
        x = self.Mixed_7a(x)                                  # [N, 1280, 8, 8]
        x = self.Mixed_7c(self.Mixed_7b(x))                   # [N, 2048, 8, 8]
        return x.mean(dim=(2, 3))                             # [N, 2048]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features [N, 2048], logits [N, 1008]); softmax of the logits gives the Inception Score's p(y|x)."""
        feats = self.features(x)
        return feats, self.fc(feats)


def load_fid_inception(path: str | Path | None = None) -> FIDInceptionV3:
    """The FID network with the user's weights from ``path``, else from $GANKIT_INCEPTION_WEIGHTS; in eval
    mode with frozen parameters. Any problem with the file is a one-line ``GankitError`` naming it."""
    path = path or os.environ.get(INCEPTION_ENV)
    if not path:
        raise GankitError(
            f"FID comparable with papers needs the TF Inception weights, which gankit never downloads: on a machine "
            f"with internet get {WEIGHTS_NAME} from {WEIGHTS_URL}, then pass its path as eval.inception_weights "
            f"in the config or set {INCEPTION_ENV}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise GankitError(f"{path}: Inception weights file not found (expected {WEIGHTS_NAME}, from {WEIGHTS_URL})")
    model = FIDInceptionV3()
    model.load_state_dict(_checked(_read_tensors(path), model, path))
    return model.eval().requires_grad_(False)


def _read_tensors(path: Path) -> dict:
    """The file's name -> tensor dict; a safetensors file by its suffix, otherwise a torch.save'd state_dict."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise GankitError(f"{path}: not a readable safetensors file ({e}); expected {WEIGHTS_NAME}") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError, RuntimeError, EOFError, ... depending on how the file is broken
            raise GankitError(f"{path}: cannot be read as tensors ({_reason(e)}); expected {WEIGHTS_NAME}") from None
    if not isinstance(state, dict):
        raise GankitError(f"{path}: holds a {type(state).__name__}, not a state_dict; expected {WEIGHTS_NAME}")
    odd = [f"{k!r}: {type(v).__name__}" for k, v in state.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if odd:
        raise GankitError(f"{path}: a state_dict holds only tensors, this one has {', '.join(odd[:3])}; "
                          f"expected {WEIGHTS_NAME}")
    return state


def _reason(e: Exception) -> str:
    """A one-line cause; torch's own weights_only message spans lines and suggests the unsafe way out."""
    found = re.search(r"GLOBAL (\S+)", str(e))
    if found:
        return f"it pickles {found.group(1)}; only tensors are loaded, since unpickling objects can run code"
    return "not a file written by torch.save"


def _checked(state: dict, model: nn.Module, path: Path) -> dict:
    """``state`` without BatchNorm's step counters (unused in eval; older ports lack them), after checking
    that its keys and shapes are exactly the model's: a near-miss network would give FIDs unlike anyone's."""
    def listed(items: list[str]) -> str:
        return ", ".join(items[:3]) + (f", ... ({len(items)} in all, showing first 3)" if len(items) > 3 else "")

    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {list(state[k].shape)} (expected {list(s)})" for k, s in expected.items()
             if k in state and state[k].shape != s]
    for what, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            raise GankitError(f"{path}: not the FID Inception weights ({WEIGHTS_NAME}): {what} {listed(items)}")
    return state  # a plain dict (no _metadata), so BatchNorm fills in the counters and strict loading passes


def convert_to_safetensors(src: str | Path, dst: str | Path) -> Path:
    """Check ``src`` (a .pth) and write the same tensors to ``dst`` as safetensors, which load without pickle."""
    from safetensors.torch import save

    from ..fileio import atomic_write

    src = Path(src)
    state = _checked(_read_tensors(src), FIDInceptionV3(), src)
    atomic_write(Path(dst), save({k: v.contiguous() for k, v in state.items()}))
    return Path(dst)
