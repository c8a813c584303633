"""Several training processes under torchrun: one process group, each rank a slice of every global batch.

    torchrun --nproc_per_node=2 -m gankit train ring8      (or: gankit train ring8 --nproc 2)

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; ``init`` joins the group (NCCL on CUDA, gloo on the CPU).
Gradients are averaged across ranks after each backward pass, one flattened all-reduce per update,
rather than through a DistributedDataParallel wrapper: a GAN alternates which network learns, the G step
backpropagates through a frozen D, and gradient penalties differentiate twice, none of which DDP's
per-forward bookkeeping expects (it is how StyleGAN2-ADA trains across GPUs for the same reasons). The
result is what DDP computes: every rank holds the same weights after every update.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .errors import GankitError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: str = "auto") -> World:
    """Join torchrun's process group (once) and return this process's place in it; a single process: World()."""
    if not launched():
        return World()
    cuda = torch.cuda.is_available() and device != "cpu"
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if cuda and world.local_rank >= torch.cuda.device_count():  # NCCL cannot put two ranks on one GPU
        raise GankitError(f"process {world.local_rank} of this machine has no GPU of its own ({torch.cuda.device_count()} "
                          f"visible); start at most that many per machine, or set train.device = \"cpu\" for gloo")
    if not dist.is_initialized():
        global _owned
        _owned = True
        if cuda:
            torch.cuda.set_device(world.local_rank)
        # a rank that dies makes torchrun stop the others; the timeout bounds a hang on a lost peer
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=10))
    return world


_owned = False  # this module made the process group, so it takes it down


def shutdown() -> None:
    """Take down the process group ``init`` made, once every rank is done with it. Left to the interpreter's exit,
    gloo's worker threads were torn down under it and a rank could abort (SIGABRT, "terminate called without an
    active exception") after a run that had finished. Called only on success: after a rank's error the others may
    be inside a collective, and a barrier would hang them."""
    global _owned
    if _owned and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _owned = False


def current() -> World:
    """This process's place in an initialised process group (World() when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def average_gradients(params: Iterable[nn.Parameter], world: World) -> None:
    """Replace each gradient by its mean over the ranks: one all-reduce of all of them, flattened."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or not world.distributed:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_state(module: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank."""
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, 0)


def sum_over_ranks(t: Tensor) -> Tensor:
    dist.all_reduce(t)
    return t


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on any (a stop request must stop all ranks at the same step)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def digests(*modules: nn.Module) -> list[list[float]]:
    """Each rank's fingerprint of the modules' weights (the sum and the sum of squares of each, in float64)."""
    weights = [p.detach().double() for m in modules for p in m.parameters()]
    mine = torch.stack([torch.stack([w.sum(), w.square().sum()]) for w in weights]).flatten()  # on the device
    gathered = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    return [g.cpu().tolist() for g in gathered]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
