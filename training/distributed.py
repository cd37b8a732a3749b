"""Processes and devices: one process, or several under torchrun (DistributedDataParallel)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from engine.precision import autocast_dtype, resolve_device, resolve_precision


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank among `world_size` processes, its device and precision."""

    device: torch.device
    precision: str  # fp32, bf16 or fp16
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """The process that writes files and reports events."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return autocast_dtype(self.precision)


def start_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """Choose the device and precision; under torchrun (WORLD_SIZE > 1) join the process group
    (NCCL on CUDA, gloo on CPU), each process on the GPU of its local rank."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank if world_size > 1 else None)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                                device_id=dev if dev.type == "cuda" else None)
    return Runtime(dev, resolve_precision(precision, dev), rank, world_size)


def stop_runtime(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def any_true(rt: Runtime, *flags: bool) -> list[bool]:
    """Each flag OR-ed over all processes (so that every process takes the same branch)."""
    if not rt.distributed:
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=rt.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def sum_all(rt: Runtime, t: torch.Tensor) -> torch.Tensor:
    """`t` summed over all processes."""
    if rt.distributed:
        t = t.to(rt.device)
        dist.all_reduce(t)
    return t


def broadcast_object(rt: Runtime, obj):
    """Rank 0's `obj` on every process."""
    if not rt.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
