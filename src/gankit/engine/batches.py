"""Where a step's inputs come from: shuffled epochs of the data, noise and labels, sliced per rank.

Every rank draws the same global batch (same seed, same data order) and takes its slice, so N processes
see what one process would, a slice each.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import distributed
from ..errors import GankitError


class BatchSampler:
    """Shuffled epochs over N rows. Epoch e's order comes from (seed, e), so the state is two integers."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device):
        if batch_size > n:
            raise GankitError(f"data.batch_size = {batch_size} is larger than the data set ({n} rows); "
                              f"expected at most {n}")
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self.epoch, self.pos = 0, 0
        self._order: Tensor | None = None

    def _epoch_order(self) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).to(self.device)

    def next(self) -> Tensor:  # [B] row indices on the device
        if self.pos + self.batch_size > self.n:  # the incomplete tail of an epoch is skipped
            self.epoch, self.pos, self._order = self.epoch + 1, 0, None
        if self._order is None:
            self._order = self._epoch_order()
        idx = self._order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos, self._order = state["epoch"], state["pos"], None


class Batches:
    """The data's fields on the device (``x``, and ``y`` when labels are used), a sampler over their rows, and
    one seeded generator for everything random in a step (noise, labels, augmentations)."""

    def __init__(self, fields: dict[str, Tensor], global_batch: int, seed: int, device: torch.device,
                 world: distributed.World, label_probs: Tensor | None = None):
        self.fields, self.device, self.world = fields, device, world
        self.global_batch = global_batch
        self.size = global_batch // world.size  # this rank's share
        self.sampler = BatchSampler(len(fields["x"]), global_batch, seed, device)
        self.generator = torch.Generator(device=device).manual_seed(seed + 1)
        self.label_probs = label_probs

    def share(self, batch: Tensor) -> Tensor:
        """This rank's rows of a global batch."""
        if not self.world.distributed:
            return batch
        n = len(batch) // self.world.size
        return batch[self.world.rank * n:(self.world.rank + 1) * n]

    def next(self) -> dict[str, Tensor]:
        """This rank's share of the next global batch of the data, as named fields."""
        idx = self.share(self.sampler.next())
        return {name: t[idx] for name, t in self.fields.items()}

    def noise(self, n: int, dim: int) -> Tensor:  # [n, dim] standard normal
        return self.share(torch.randn(n * self.world.size, dim, generator=self.generator, device=self.device))

    def labels(self, n: int) -> Tensor | None:  # [n], drawn with the data's class frequencies
        if self.label_probs is None:
            return None
        return self.share(torch.multinomial(self.label_probs, n * self.world.size, replacement=True,
                                            generator=self.generator))
