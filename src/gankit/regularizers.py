"""Terms that keep D well-behaved, kept apart from the losses so their weights stay visible."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per sample.

    Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (WGAN-GP). Multiply by its weight
    (10 in the paper) and add to D's loss.
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, device=real.device,
                     dtype=real.dtype)  # [B, 1, ...]
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = D(x_hat, y)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


@torch.no_grad()
def clip_weights(module: nn.Module, bound: float) -> None:
    """Clamp every parameter to [-bound, bound] after D's step (Arjovsky et al. 2017, WGAN; bound 0.01)."""
    for p in module.parameters():
        p.clamp_(-bound, bound)
