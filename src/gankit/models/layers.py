"""Discriminator pieces shared by the model families: spectral normalisation, minibatch discrimination
and PacGAN packing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Divide the weight of every Linear and Conv2d inside ``module`` by its largest singular value.

    Spectral normalisation (Miyato et al. 2018, "Spectral Normalization for GANs"): W / sigma(W),
    sigma estimated by one power iteration per forward pass in train mode (conv weights as
    [out, in * kh * kw] matrices). Embeddings and other parameters are left alone. The weights then
    live under ``<layer>.parametrizations.weight.original`` in the state dict, next to the power
    iteration's vectors ``_u`` and ``_v``.
    """
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            spectral_norm(layer)
    return module


class MinibatchDiscrimination(nn.Module):
    """How close each sample is to the rest of the batch, as K more features: [B, A] -> [B, K].

    Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.2: with a learned tensor
    T [A, K, C], M_i = h_i T [K, C], c_b(i, j) = exp(-||M_i,b - M_j,b||_1) and
    o(x_i)_b = sum_{j != i} c_b(i, j). A generator that collapses makes o large, which D learns to
    spot. ``kernel_dim`` C = 5 as in the paper's small experiments. A single sample gives o = 0.
    Memory grows as B^2 K C (the pairwise differences are kept so double backward, for gradient
    penalties, works).
    """

    def __init__(self, in_features: int, kernels: int, kernel_dim: int = 5):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        # Scaled like a linear layer's weights, so M starts at the scale of h and c is neither 0 nor 1.
        self.T = nn.Parameter(torch.randn(in_features, kernels, kernel_dim) / in_features ** 0.5)

    def forward(self, h: Tensor) -> Tensor:
        M = (h @ self.T.flatten(1)).view(-1, self.kernels, self.kernel_dim)  # [B, K, C]
        distance = (M[:, None] - M[None, :]).abs().sum(3)  # [B, B, K], L1 over C
        others = 1 - torch.eye(h.shape[0], dtype=h.dtype, device=h.device)[:, :, None]  # [B, B, 1], j != i
        return (torch.exp(-distance) * others).sum(1)  # [B, K]


def pack_samples(v: Tensor, pack: int, owner: str = "D") -> Tensor:
    """Put each run of ``pack`` consecutive samples side by side along dim 1: [B, F, ...] -> [B/m, m*F, ...].

    PacGAN (Lin et al. 2018, "PacGAN: The power of two samples in GANs"): D judges m samples at once,
    so a generator whose samples look alike is easier to reject. Sample k of a pack takes features
    k*F .. (k+1)*F - 1 (for images: channels), in batch order.
    """
    batch = v.shape[0]
    if batch % pack:
        raise ValueError(f"{owner} has pack = {pack} but got a batch of B = {batch} samples; "
                         f"B must be a multiple of pack")
    if pack == 1:
        return v
    return v.reshape(batch // pack, pack * v.shape[1], *v.shape[2:])
