"""Distributed set-up for ``torchrun``: one process per device, DDP, rank-0-only decisions.

Started by ``torchrun`` (``WORLD_SIZE`` > 1), the model is wrapped in DistributedDataParallel
(``nccl`` on GPUs, ``gloo`` on CPUs). Every rank draws the same seeded *global* batch and its
distortion parameters and keeps its own disjoint share (rank r takes items r, r + K, ... of K
ranks), so K processes follow the data stream of one process with the same config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..embedding import resolve_device
from ..errors import ConfigError

__all__ = ["Distributed", "init_distributed", "shut_down", "process_rank"]


@dataclass(frozen=True)
class Distributed:
    """This process's place among ``world`` training processes."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def mean(self, value: float, device: torch.device) -> float:
        """Average of a scalar over ranks (identity in one process)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def from_main(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's decision, on every rank."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=device)
        torch.distributed.broadcast(t, 0)
        return bool(t.item())

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` itself in one process, else a DistributedDataParallel wrapper."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process as ``torchrun`` sets them ((0, 1) outside it)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device_name: str, global_batch: tuple[str, int]
                     ) -> tuple[Distributed, torch.device]:
    """This process's rank and device; joins the process group under ``torchrun``.

    ``global_batch`` is (config field, value): it must split evenly between the processes.
    """
    rank, world = process_rank()
    device = resolve_device(device_name)
    if world <= 1:
        return Distributed(), device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    name, value = global_batch
    if value % world:
        raise ConfigError(f"config {name}={value} is not divisible by the {world} processes "
                          "(the global batch is split between them)")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world), device


def shut_down(dist: Distributed, wait: bool = True) -> None:
    """Leave the process group, after every rank has arrived with ``wait`` (not on errors,
    where the other ranks may never arrive)."""
    if dist.world > 1 and torch.distributed.is_initialized():
        if wait:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()
