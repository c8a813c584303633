"""The fast settings of a training step, chosen per device: mixed precision, fused optimizer kernels, cheap
dropout masks on CPU.

Each is a config switch (``train.precision``, ``train.fused_optimizer``, ``train.fast_dropout``); "auto"
picks what measured faster on that kind of device (bench/train_speed.py prints the figures the
README's table quotes).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from .errors import GankitError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype forward passes run in (None: fp32).

    auto: bf16 on a CUDA GPU that has it and on a CPU with hardware bf16; fp32 otherwise. Weights, optimizer
    state and losses stay fp32 (autocast), so only matrix products and convolutions round to bf16.
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    if precision == "fp16" and device.type == "cpu":
        raise GankitError("train.precision = \"fp16\" runs on CUDA only; on a CPU use \"bf16\" or \"fp32\"")
    return DTYPES[precision]


def autocast(dtype: torch.dtype | None, device: torch.device):
    """A context that runs forward passes in ``dtype`` (a no-op for None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def optimizer_options(optimizer: str, device: torch.device, fused: bool) -> dict[str, Any]:
    """Keyword arguments that select the fused kernel (one kernel for all of a network's parameters) or, where
    there is none, the multi-tensor 'foreach' one; switched off, the per-tensor loop (``foreach=False``)."""
    if not fused:
        return {"foreach": False}
    if optimizer in ("adam", "sgd") and device.type in ("cpu", "cuda"):
        return {"fused": True}
    return {"foreach": True}


SMALL_MODEL_PARAMETERS = 500_000  # below this (G and D together, no convolutions), one CPU thread is faster...
SMALL_STEP_WORK = 50_000_000  # ...unless parameters x batch size reach this: CTGAN's networks at batch 350 train
# 1.2-1.4x faster on two threads than on one (diabetes, 600 steps, 2-core Xeon), ring8's MLP does not


def has_convolutions(*modules: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for module in modules for m in module.modules())


def step_threads(threads: int, device: torch.device, *modules: nn.Module, batch_size: int = 0) -> int | None:
    """Intra-op CPU threads for the training step (None: leave PyTorch's setting alone).

    0 (auto): one thread for small MLPs on a CPU, whose 512x128 products and element-wise ops are too
    small to split: there, threading overhead cost more than the second core gave (bench/train_speed.py:
    255,000 samples/s on one thread against 245,000 on two); but a small model on large batches (CTGAN's
    networks, 420,000 parameters at batch 350) has products big enough to split. Decided from the model and the
    batch size alone, so a run and its resumption compute alike.
    """
    if device.type != "cpu":
        return None
    if threads:
        return threads
    parameters = sum(p.numel() for m in modules for p in m.parameters())
    small = parameters < SMALL_MODEL_PARAMETERS and parameters * batch_size < SMALL_STEP_WORK
    return 1 if small and not has_convolutions(*modules) else None


@contextmanager
def thread_limit(threads: int | None):
    """Run the body with ``threads`` intra-op threads, then restore the previous count (setting it is ~0.2 us)."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class FastDropout(nn.Dropout):
    """nn.Dropout whose masks cost a fifth: 16 random bits per element, four from each 64-bit draw.

    PyTorch's CPU dropout draws one Bernoulli number per element (``bernoulli_``), which took a third
    of the DCGAN tutorial's training step here. The keep probability is exact to 1/65,536 and the
    surviving values are scaled by its inverse, so the layer stays unbiased. Random numbers come from
    the global generator, as nn.Dropout's do (checkpoints keep its state).
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:
            return x * 0.0
        keep_below = round((1.0 - self.p) * 65536) - 32768  # keep where a uniform int16 is below this
        scale = 65536 / (keep_below + 32768)
        if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            x = x.contiguous()
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-2 ** 63, None)
        keep = bits.view(torch.int16)[:n] < keep_below
        # The mask's order is arbitrary, so lay it out as x is laid out (NCHW or NHWC): a plain elementwise product.
        mask = keep.as_strided(x.shape, x.stride()).to(x.dtype).mul_(scale)
        return x * mask


def use_fast_dropout(*modules: nn.Module) -> int:
    """Turn the nn.Dropout layers of ``modules`` into FastDropout (in place; same parameters, same state dict).
    Returns how many there were."""
    count = 0
    for module in modules:
        for m in module.modules():
            if type(m) is nn.Dropout:
                m.__class__ = FastDropout
                count += 1
    return count
