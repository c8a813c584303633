"""InfoGAN's generator: latent codes made from standard-normal slots of z, so any z ~ N(0, I) draws valid codes.

A categorical code of K values is floor(Phi(u) K) of its slot u, a continuous code 2 Phi(u) - 1 ~ U(-1, 1);
``code_slots`` inverts that to fix chosen codes (``gankit sample --code``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import GankitError


def phi(u: Tensor) -> Tensor:  # the standard normal CDF
    return 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))


class InfoGenerator(nn.Module):
    """G(z) for z = [noise, one standard-normal slot per code]: the slots become the codes, then the inner G runs
    on [noise, one-hot categorical codes, continuous codes]."""

    def __init__(self, inner: nn.Module, noise_dim: int, categorical: Sequence[int], continuous: int):
        super().__init__()
        self.inner, self.noise_dim = inner, noise_dim
        self.categorical, self.continuous = tuple(categorical), continuous
        self.z_dim = noise_dim + len(self.categorical) + continuous

    @staticmethod
    def inner_dim(noise_dim: int, categorical: Sequence[int], continuous: int) -> int:
        """The inner G's input: the noise, a one-hot per categorical code, the continuous codes."""
        return noise_dim + sum(categorical) + continuous

    def codes(self, z: Tensor) -> tuple[list[Tensor], Tensor]:  # [n, z_dim] -> categories [n] each, cont [n, C]
        p = phi(z[:, self.noise_dim:].float())
        cats = [torch.floor(p[:, i] * k).clamp(0, k - 1) for i, k in enumerate(self.categorical)]
        return cats, 2.0 * p[:, len(self.categorical):] - 1.0

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        cats, cont = self.codes(z)
        onehots = [(c[:, None] == torch.arange(k, device=z.device)).to(z.dtype)
                   for c, k in zip(cats, self.categorical)]  # comparisons, not one_hot: exports to ONNX
        return self.inner(torch.cat([z[:, :self.noise_dim], *onehots, cont.to(z.dtype)], dim=1), y)


def code_slots(categorical: Sequence[int], continuous: int, values: Sequence[float], n: int) -> Tensor:
    """The standard-normal slots [n, len(values)] that give the codes ``values`` (category indices first, then
    continuous values in [-1, 1]): the inverse of ``InfoGenerator.codes``, at the middle of each category."""
    if len(values) != len(categorical) + continuous:
        raise GankitError(f"--code: {len(values)} value{'s' * (len(values) != 1)} given; expected "
                          f"{len(categorical) + continuous}: this generator has {len(categorical)} categorical code(s) "
                          f"of sizes {list(categorical)}, then {continuous} continuous one(s)")
    p = []
    for v, k in zip(values, categorical):
        if not (float(v).is_integer() and 0 <= v < k):
            raise GankitError(f"--code: categorical value {v!r}: expected an integer in 0..{k - 1}")
        p.append((v + 0.5) / k)
    for v in values[len(categorical):]:
        if not -1 <= v <= 1:
            raise GankitError(f"--code: continuous value {v!r}: expected a number in [-1, 1]")
        p.append(min(max((v + 1) / 2, 1e-6), 1 - 1e-6))
    u = torch.special.ndtri(torch.tensor(p, dtype=torch.float64)).float()
    return u.expand(n, -1).clone()
