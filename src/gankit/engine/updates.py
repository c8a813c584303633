"""One update of one optimizer group, and the pieces around it, usable without the engine.

A user writing their own loop calls ``make_optimizer`` once per group and ``update`` after each loss:

    >>> opt = make_optimizer(D.parameters(), config.train, lr=2e-4, betas=(0.5, 0.999))
    >>> scaler = torch.amp.GradScaler("cpu", enabled=False)
    >>> update(opt, scaler, d_loss, list(D.parameters()))
"""

from __future__ import annotations

import copy
import math
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from .. import distributed
from ..config import TrainConfig
from ..speed import optimizer_options


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig, lr: float, betas: tuple[float, float],
                   device: torch.device = torch.device("cpu")) -> torch.optim.Optimizer:
    """``train.optimizer`` (adam | rmsprop | sgd, momentum = betas[0]) with the fused kernels where they apply."""
    options = optimizer_options(cfg.optimizer, device, cfg.fused_optimizer)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, **options)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **options)
    return torch.optim.SGD(params, lr=lr, momentum=betas[0], **options)


def grad_norm(params: Sequence[nn.Parameter]) -> Tensor:
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return torch.stack(norms).norm() if norms else torch.zeros(())


def update(opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: Tensor, params: Sequence[nn.Parameter],
           measure: bool = False, world: distributed.World | None = None) -> Tensor | None:
    """Backward, the gradients' mean over ranks, and one optimizer step through fp16's loss scaler (a
    pass-through otherwise). Returns the (unscaled) gradient norm of ``params`` when ``measure``."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    distributed.average_gradients(params, world or distributed.current())
    norm = None
    if measure:
        scaler.unscale_(opt)
        norm = grad_norm(params)
    scaler.step(opt)
    scaler.update()
    return norm


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` whose weights will follow its weights as an exponential moving average."""
    ema = copy.deepcopy(module).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * module for weights; buffers (batch-norm statistics) are copied.

    Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training": the average sits
    near the centre of the generator's oscillation around equilibrium, so its samples are steadier.
    """
    torch._foreach_lerp_(list(ema.parameters()), list(module.parameters()), 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), module.buffers()):
        b_ema.copy_(b)


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up over ``warmup_steps``, then the schedule to 0."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = min((step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1), 1.0)
    return 1.0 - progress if cfg.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))


def match_layouts(opt: torch.optim.Optimizer) -> None:
    """Lay loaded optimizer state out as its parameter is (NHWC for channels_last): the fused kernels walk
    parameter and state memory in step, so a state in another layout would be paired with the wrong weights."""
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    opt.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


class HistoricalAverage:
    """lambda ||theta - mean of past theta||^2 (Salimans et al. 2016, "Improved Techniques for Training GANs",
    section 3.3): a pull towards each player's own past, which damps the oscillations of gradient play.

    The mean is the running average over all of a network's updates so far; it is part of the checkpoint.
    """

    def __init__(self, module: nn.Module, weight: float):
        self.weight = weight
        self.mean = [p.detach().clone() for p in module.parameters()]
        self.count = 1  # the initial weights count as the first

    def penalty(self, module: nn.Module) -> Tensor:
        return self.weight * sum((p - m).square().sum() for p, m in zip(module.parameters(), self.mean))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.count += 1
        torch._foreach_lerp_(self.mean, [p.detach() for p in module.parameters()], 1.0 / self.count)
