"""Processes and devices: one process, or several under torchrun (DistributedDataParallel)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)


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


def resolve_device(device: str, local_rank: int | None = None) -> torch.device:
    """"auto" = CUDA when present, else CPU. "cuda" under torchrun means the local rank's GPU."""
    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available on this machine (use --device cpu)")
        index = local_rank if local_rank is not None and dev.index is None else dev.index or 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device cuda:{index}: only {torch.cuda.device_count()} GPU(s) here")
        dev = torch.device("cuda", index)
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r} is not supported for training; use auto, cpu, cuda or cuda:N")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" = bf16 on GPUs that have it (else fp16) and on CPUs with native bf16 (AVX512-BF16/AMX), else
    fp32. An explicit bf16/fp16 the device cannot run is an error."""
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return "bf16" if bf16 else "fp16"
        if precision == "bf16" and not bf16:
            raise ValueError(f"precision bf16: {torch.cuda.get_device_name(device)} lacks bf16; use fp16 or fp32")
        return precision
    if precision == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "fp16":
        raise ValueError("precision fp16 is for GPUs; on a CPU use bf16 or fp32")
    return precision


def cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # older torch
        return False


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
