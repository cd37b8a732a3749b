"""A steady time-left estimate for a training run, from the step events' elapsed time and iteration.

The trainer's own `eta_s` is measured over the last few steps only, so a validation pause, a data-loader hiccup or a
warm-up step makes it jump back and forth. This estimate uses the speed over a longer recent window and damps
rises, so the shown time mostly counts down."""

from __future__ import annotations

from collections import deque


class EtaEstimate:
    """Feed it `(iteration, iterations, elapsed_s)` per step event; `seconds` is the time left (None until known)."""

    def __init__(self, window_s: float = 60.0, rise: float = 0.15):
        self.window_s = window_s
        self.rise = rise  # a rising estimate moves this fraction of the way per event; falling ones follow at once
        self.reset()

    def reset(self) -> None:
        self._points: deque[tuple[float, int]] = deque()
        self.seconds: float | None = None
        self._shown_at: float | None = None

    def update(self, iteration: int, iterations: int, elapsed_s: float,
               fallback: float | None = None) -> float | None:
        """The time left after this step event; `fallback` (the trainer's own) until two events give a speed."""
        points = self._points
        if points and (iteration < points[-1][1] or elapsed_s < points[-1][0]):
            self.reset()  # a new run
        points.append((elapsed_s, iteration))
        while len(points) > 2 and points[-1][0] - points[1][0] >= self.window_s:
            points.popleft()  # keep at least `window_s` of history
        (t0, i0), (t1, i1) = points[0], points[-1]
        if i1 <= i0 or t1 <= t0:
            if self.seconds is None and fallback is not None:
                self.seconds, self._shown_at = fallback, elapsed_s
            return self.seconds
        raw = (iterations - iteration) * (t1 - t0) / (i1 - i0)
        if self.seconds is None or self._shown_at is None:
            self.seconds = raw
        else:
            counted_down = max(self.seconds - (elapsed_s - self._shown_at), 0.0)
            self.seconds = raw if raw <= counted_down else counted_down + self.rise * (raw - counted_down)
        self._shown_at = elapsed_s
        if iteration >= iterations:
            self.seconds = 0.0
        return self.seconds
