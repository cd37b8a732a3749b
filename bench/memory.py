"""Peak CPU memory of a piece of PyTorch code, sampled after every tensor operation.

glibc's `mallinfo2` reports the bytes the process has allocated (heap and mmap); a dispatch mode reads it
after each aten operation, so the peak covers every operator's outputs (not workspaces freed inside
one operator). Used by the benchmarks only.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable

from torch.utils._python_dispatch import TorchDispatchMode


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2


def allocated_bytes() -> int:
    """Bytes currently allocated through malloc (small blocks in arenas plus mmap'ed blocks)."""
    info = _libc.mallinfo2()
    return info.uordblks + info.hblkhd


class _PeakMode(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.peak = allocated_bytes()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, allocated_bytes())
        return out


def peak_memory(fn: Callable[[], object]) -> tuple[int, object]:
    """Run `fn()`; return (peak bytes allocated above the level before it, its result)."""
    gc.collect()
    base = allocated_bytes()
    with _PeakMode() as mode:
        result = fn()
    return mode.peak - base, result
