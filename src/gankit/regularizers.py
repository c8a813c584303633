"""Terms that keep D well-behaved, kept apart from the losses so their weights stay visible.

The gradient penalties differentiate D's scores with respect to its input, with ``create_graph=True`` so the
penalty can itself be backpropagated into D's weights. Their inputs are detached from G's graph. A D may judge
packs of m samples (PacGAN) and return B/m scores for B inputs: the gradient of ``scores.sum()`` still has one
row per input sample, and the penalties average per-SAMPLE gradient norms over the B samples.

Under fp16 autocast the inner gradient needs the loss scale too (``scale``, the GradScaler's current factor):
D's input gradients are often below fp16's smallest number, and would come back as zeros, a penalty of
nothing, as PyTorch's AMP notes on gradient penalties warn. They are computed scaled and divided after.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def per_sample_uniform(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One weight ~ U[0, 1] per sample, shaped [B, 1, ...] to broadcast over x's other dimensions."""
    return torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=x.device, dtype=x.dtype)


def input_gradients(D: nn.Module, x: Tensor, y: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """grad_x sum(D(x, y)), flattened to one row per input sample: [B, N]; differentiable in D's weights.
    ``scale``: differentiate scale * sum(D) and divide by it (fp16's loss scaling, see above)."""
    x = x.detach().requires_grad_(True)
    out = D(x, y).sum()
    if scale is None:
        (grad,) = torch.autograd.grad(out, x, create_graph=True)
        return grad.flatten(1)  # [B, N]
    (grad,) = torch.autograd.grad(out * scale, x, create_graph=True)
    return (grad / scale).flatten(1)


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None,
                     generator: torch.Generator | None = None, scale: Tensor | None = None) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per sample.

    Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (WGAN-GP). Multiply by its weight
    (10 in the paper) and add to D's loss.
    """
    eps = per_sample_uniform(real, generator)  # [B, 1, ...]
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return (input_gradients(D, x_hat, y, scale).norm(dim=1) - 1.0).square().mean()


def r1_penalty(D: nn.Module, real: Tensor, y: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """R1 = E_x[||grad_x D(x)||_2^2] on real samples.

    Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?". The paper's regularizer
    is gamma/2 * R1: the caller multiplies by gamma/2 and adds it to D's loss.
    """
    return input_gradients(D, real, y, scale).square().sum(dim=1).mean()


def r2_penalty(D: nn.Module, fake: Tensor, y: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """R2 = E_z[||grad_x D(G(z))||_2^2]: R1 on generated samples (Mescheder et al. 2018); weight gamma/2 too."""
    return r1_penalty(D, fake, y, scale)


def dragan_penalty(D: nn.Module, real: Tensor, y: Tensor | None = None,
                   generator: torch.Generator | None = None, c: float = 0.5, scale: Tensor | None = None) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] in a neighbourhood of the real data (DRAGAN).

    x_p = x + c std(x) u with u ~ U[0, 1] elementwise and std over the whole batch, then
    x_hat = alpha x + (1 - alpha) x_p with alpha ~ U[0, 1] per sample (u is drawn first, then alpha).
    Kodali et al. 2017, "On Convergence and Stability of GANs". Multiply by its weight (10 in the paper).
    """
    x = real.detach()
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_p = x + c * x.std() * u
    alpha = per_sample_uniform(x, generator)  # [B, 1, ...]
    x_hat = alpha * x + (1 - alpha) * x_p
    return (input_gradients(D, x_hat, y, scale).norm(dim=1) - 1.0).square().mean()


@torch.no_grad()
def clip_weights(module: nn.Module, bound: float) -> None:
    """Clamp every parameter to [-bound, bound] after D's step (Arjovsky et al. 2017, WGAN; bound 0.01)."""
    for p in module.parameters():
        p.clamp_(-bound, bound)
