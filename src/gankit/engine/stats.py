"""Named statistics of a log window, summed on the device and read back once per log (one host sync).

A game logs whatever it wants: ``ctx.log("d_loss", loss)`` adds to a window sum and the record shows the
window's mean; ``ctx.log(name, value, last=True)`` keeps the latest value instead (gradient norms). Names
ending in ``_loss`` are watched: a NaN/Inf there is divergence.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .. import distributed


def watched(name: str) -> bool:
    return name.endswith("_loss")


class Statistics:
    def __init__(self, device: torch.device, last: tuple[str, ...] = ()):
        self.device = device
        self.last_names = last  # in the record when measured in the window (a group idle in a stage is left out)
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        nan = torch.full((), float("nan"), device=self.device)
        self.last: dict[str, Tensor] = {name: nan for name in self.last_names}
        self.measured: set[str] = set()

    def add(self, name: str, value: Tensor, last: bool = False) -> None:
        value = value.detach().reshape(())
        if last:
            self.last[name] = value
            self.measured.add(name)
            return
        if name in self.sums:
            self.sums[name] += value
            self.counts[name] += 1
        else:
            self.sums[name] = torch.zeros((), device=self.device) + value
            self.counts[name] = 1

    def add_many(self, names: tuple[str, ...], values: Tensor) -> None:
        """Several window sums in one addition (few, batched ops per step): ``values`` [len(names)]."""
        key = "\0".join(names)
        if key in self.sums:
            self.sums[key] += values.detach()
            for name in names:
                self.counts[name] += 1
        else:
            self.sums[key] = torch.zeros(len(names), device=self.device) + values.detach()
            for name in names:
                self.counts[name] = 1

    def sync(self) -> None:
        """Wait until the device has computed this window's sums (for timing)."""
        self._flat().sum().item()

    def _names(self) -> list[str]:
        return [name for key in self.sums for name in key.split("\0")]

    def finite(self) -> bool:
        """Whether the watched sums of this window are finite (a host sync: used at checkpoints)."""
        flat = self._flat()
        names = self._names()
        keep = [i for i, name in enumerate(names) if watched(name)]
        return not keep or bool(torch.isfinite(flat[keep]).all())

    def _flat(self) -> Tensor:
        if not self.sums:
            return torch.zeros(0, device=self.device)
        return torch.cat([s.reshape(-1) for s in self.sums.values()])

    def read(self, world: distributed.World) -> tuple[dict[str, float], bool]:
        """The window's means and last values, and whether every watched sum is finite; resets the window."""
        flat = self._flat()
        if world.distributed:  # the mean over ranks: every rank logs, and judges divergence, alike
            flat = distributed.sum_over_ranks(flat) / world.size
        names = self._names()
        values = torch.cat([flat, torch.stack(list(self.last.values())) if self.last else flat[:0]]
                           ).tolist()  # the one host sync of a log interval
        record: dict[str, Any] = {}
        finite = True
        for name, value in zip(names, values):
            finite = finite and (math.isfinite(value) or not watched(name))
            record[name] = value / self.counts[name]
        record.update((name, value) for name, value in zip(self.last, values[len(names):]) if name in self.measured)
        self.reset()
        return record, finite
