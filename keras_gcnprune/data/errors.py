"""Reporting bad skeleton files: refuse with the path and reason, or skip with a count."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

ON_ERROR_CHOICES = ("raise", "skip")


class SkeletonFileError(ValueError):
    """A skeleton file that cannot give a valid sequence.

    Args:
        path: The offending file.
        reason: What is wrong with it (truncated, wrong joint count, NaN values, empty, ...).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class BadFileLog:
    """Applies the user's choice for bad files while a loader reads a dataset.

    Args:
        on_error: `"raise"` stops at the first bad file with a `SkeletonFileError`; `"skip"`
            leaves it out, records `(path, reason)` and warns once with the count at the end.
    """

    def __init__(self, on_error: str = "raise") -> None:
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}.")
        self.on_error = on_error
        self.skipped: list[tuple[str, str]] = []

    def report(self, error: SkeletonFileError) -> None:
        if self.on_error == "raise":
            raise error
        self.skipped.append((error.path, error.reason))

    def finish(self, dataset_name: str) -> list[tuple[str, str]]:
        if self.skipped:
            examples = "; ".join(f"{path}: {reason}" for path, reason in self.skipped[:3])
            warnings.warn(
                f"{dataset_name}: skipped {len(self.skipped)} bad file(s), e.g. {examples}",
                stacklevel=3,
            )
        return self.skipped


def check_values(path: str | Path, sequence: np.ndarray, what: str = "") -> np.ndarray:
    """Refuses empty sequences and coordinates that are not finite in float32 (a value such as
    1e39 is finite in float64 and infinite after the cast); returns the float32 sequence.

    Args:
        path: The file the sequence comes from, for the error.
        sequence: The coordinates, any float dtype.
        what: Which sequence of the file, for files holding several (e.g. `"sequence 3"`).
    """
    where = f"{what}: " if what else ""
    if sequence.size == 0 or len(sequence) == 0:
        raise SkeletonFileError(path, f"{where}no frames (empty file or sequence)")
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.asarray(sequence).astype(np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        frame = int(np.argwhere(bad)[0][0])
        raise SkeletonFileError(
            path, f"{where}{int(bad.sum())} NaN, infinite or beyond-float32 values (first in "
                  f"frame {frame})"
        )
    return values


def without_zero_frames(path: str | Path, frames: np.ndarray, what: str) -> np.ndarray:
    """The frames with any nonzero coordinate (an all-zero frame is a tracker that found
    nothing), checked as `check_values` does.

    Raises:
        SkeletonFileError: every frame is zero (`what` says what that means for the source).
    """
    kept = frames[np.any(frames != 0, axis=(1, 2))]
    if not len(kept):
        raise SkeletonFileError(path, f"all {len(frames)} frames are zero ({what})")
    return check_values(path, kept)


def parse_number_rows(path: Path, expected: int, what: str) -> np.ndarray:
    """Reads a text file of numbers (comma or space separated), `expected` per line.

    Raises:
        SkeletonFileError: empty file, unreadable numbers, or a line of the wrong length (a
            shorter last line is reported as a truncated file).
    """
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise SkeletonFileError(path, f"cannot read file ({error})") from error
    if not lines:
        raise SkeletonFileError(path, "empty file")
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError as error:
            raise SkeletonFileError(path, f"line {number} is not numeric ({error})") from error
        if len(values) != expected:
            truncated = number == len(lines) and len(values) < expected
            raise SkeletonFileError(
                path,
                ("truncated: last line" if truncated else f"line {number}")
                + f" has {len(values)} values, expected {expected} ({what})",
            )
        rows.append(values)
    return np.array(rows, dtype=np.float64)
