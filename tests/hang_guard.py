"""A guard against a test hanging (a FIFO opened for reading blocks until a writer comes): the block is
interrupted after `seconds` with `Hung`, a BaseException, so that no `except OSError` or `except
Exception` in the code under test can swallow it and block again."""

from __future__ import annotations

import signal
from contextlib import contextmanager


class Hung(BaseException):
    """The guarded block was still running when its time was up."""


@contextmanager
def hang_guard(seconds: float = 20):
    def expired(*_):
        raise Hung(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
