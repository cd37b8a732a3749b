"""Device and numeric precision, one policy for inference (`engine.Predictor`) and training.

`"auto"` device: CUDA when present (under torchrun, the local rank's GPU), else the CPU. `"auto"`
precision: bf16 on GPUs that have it, else fp16; bf16 on CPUs that run it natively (AMX or AVX512-BF16),
else fp32. fp16 is for GPUs: asked for on a CPU it is refused, as is bf16 on a GPU without it.
"""

from __future__ import annotations

import contextlib
from functools import cache

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """The device `device` names: "auto", "cpu", "cuda" or "cuda:N" (a `torch.device` too). Under torchrun
    (`local_rank` given) "auto" and "cuda" mean the local rank's GPU. `ValueError` for a device this
    machine lacks or that SegAssist does not run on."""
    name = device.strip().lower() if isinstance(device, str) else device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but this machine has no usable CUDA GPU "
                             f"(use 'cpu')")
        index = local_rank if local_rank is not None and dev.index is None else dev.index
        if index is not None:
            if index >= torch.cuda.device_count():
                raise ValueError(f"device cuda:{index}: only {torch.cuda.device_count()} CUDA device(s) present")
            dev = torch.device("cuda", index)
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return dev


@cache
def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AMX tiles or AVX512-BF16), where bf16 autocast
    is faster than fp32 rather than emulated."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without these probes
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision `precision` ("auto", "fp32", "bf16", "fp16") means on `device`: "fp32", "bf16" or
    "fp16"; `ValueError` for one the device cannot run."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return "bf16" if bf16 else "fp16"
        if precision == "bf16" and not bf16:
            raise ValueError(f"precision 'bf16' is not supported by {torch.cuda.get_device_name(device)}; "
                             f"use fp16 or fp32")
        return precision
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    if precision == "fp16":
        raise ValueError("precision 'fp16' is for GPUs; on a CPU use bf16 or fp32")
    return precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision; None for fp32."""
    return _DTYPES.get(precision)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for a resolved `precision` on `device` (a no-op context for fp32)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
