"""A progress line over benchmark runs, with the time left estimated from the runs done."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """`3h05m`, `4m07s` or `12s`."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Progress:
    """Counts finished runs out of `total` and prints a bar with an estimate of the time left.

    Runs found already finished on disk (`skip`) advance the bar without counting towards
    the speed estimate; the estimate is the wall time per run trained in this invocation
    times the runs left, whatever the number of workers. On a terminal the line is redrawn in
    place; elsewhere (logs, CI) one line is printed per run.

    Args:
        total: Number of runs planned.
        stream: Where to print (default: standard error).
        width: Characters of the bar.

    Example:
        >>> import io
        >>> progress = Progress(2, stream=io.StringIO())
        >>> progress.skip("dense fold1 seed0")
        >>> progress.start("tcp 0.9 fold1 seed0")
        >>> progress.done("tcp 0.9 fold1 seed0")
        >>> progress.finished, progress.eta_seconds()
        (2, 0.0)
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.width = width
        self.finished = 0
        self.trained = 0
        self.failed = 0
        self._first_start: float | None = None
        self._interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

    def skip(self, label: str) -> None:
        """Marks a run already finished on disk."""
        self.finished += 1
        self._print(f"{label}: already done")

    def start(self, label: str) -> None:
        """Marks a run handed to a worker (in this process: started)."""
        if self._first_start is None:
            self._first_start = time.perf_counter()
        self._print(f"{label}: running")

    def done(self, label: str) -> None:
        """Marks the end of a run that trained."""
        self.trained += 1
        self.finished += 1
        self._print(f"{label}: done")

    def fail(self, label: str) -> None:
        """Marks a run that failed (it counts as finished: nothing more will happen to it)."""
        self.failed += 1
        self.finished += 1
        self._print(f"{label}: FAILED")

    def eta_seconds(self) -> float | None:
        """Estimated seconds left: the wall time since the first run started, per run trained,
        times the runs left (so parallel workers count as the speed they give); None before
        the first run trained here."""
        if not self.trained:
            return None
        elapsed = time.perf_counter() - self._first_start
        return elapsed / self.trained * (self.total - self.finished)

    def line(self, message: str) -> str:
        filled = self.width * self.finished // max(self.total, 1)
        eta = self.eta_seconds()
        left = "estimating" if eta is None else f"~{format_duration(eta)} left"
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.finished}/{self.total} "
                f"runs, {left} | {message}")

    def _print(self, message: str) -> None:
        line = self.line(message)
        if self._interactive:
            self.stream.write("\r\033[K" + line)
            if self.finished == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
