"""NTU RGB+D `.skeleton` files (60 and 120 classes), several bodies per frame."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.data.errors import BadFileLog, SkeletonFileError, check_values

NTU_JOINTS = 25
NTU_XSUB_TRAIN_SUBJECTS = (
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
)
NTU_XVIEW_TRAIN_CAMERAS = (2, 3)
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})\.skeleton$")


class _Tokens:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tokens = path.read_text().split()
        self.position = 0

    def take(self, count: int, what: str) -> list[str]:
        if self.position + count > len(self.tokens):
            raise SkeletonFileError(self.path, f"truncated while reading {what}")
        values = self.tokens[self.position:self.position + count]
        self.position += count
        return values

    def integer(self, what: str) -> int:
        token = self.take(1, what)[0]
        try:
            return int(float(token))
        except (ValueError, OverflowError):
            raise SkeletonFileError(self.path, f"{what} is {token!r}, not a number") from None

    def numbers(self, count: int, what: str) -> np.ndarray:
        tokens = self.take(count, what)
        try:
            return np.array(tokens, dtype=float)
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            raise SkeletonFileError(self.path, f"{what}: {bad!r} is not a number") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_ntu_file(path: str | Path, max_persons: int = 2) -> np.ndarray:
    """Reads one `.skeleton` file: returns `(T, max_persons * 25, 3)`.

    The `max_persons` bodies that move most are kept, in that order; frames where a kept body is
    not tracked are zeros for that body (NTU's usual handling of one-person actions).

    Raises:
        SkeletonFileError: empty or truncated file, wrong joint count, NaN values, no body.
    """
    path = Path(path)
    try:
        tokens = _Tokens(path)
    except (OSError, UnicodeDecodeError) as error:
        raise SkeletonFileError(path, f"cannot read file ({error})") from error
    if not tokens.tokens:
        raise SkeletonFileError(path, "empty file")
    frame_count = tokens.integer("the frame count")
    if not 0 <= frame_count <= len(tokens.tokens):  # each frame takes at least one token
        raise SkeletonFileError(path, f"frame count {frame_count} is impossible for a file of "
                                      f"{len(tokens.tokens)} values")
    bodies: dict[str, dict[int, np.ndarray]] = {}
    for frame in range(frame_count):
        for _ in range(tokens.integer(f"the body count of frame {frame}")):
            body_id = tokens.take(10, f"a body header in frame {frame}")[0]
            joints = tokens.integer(f"the joint count in frame {frame}")
            if joints != NTU_JOINTS:
                raise SkeletonFileError(path, f"frame {frame} has {joints} joints, expected 25")
            values = tokens.numbers(joints * 12, f"joints of frame {frame}")
            bodies.setdefault(body_id, {})[frame] = values.reshape(joints, 12)[:, :3]
    if not bodies:
        raise SkeletonFileError(path, f"no body tracked in {frame_count} frames")
    sequence = np.zeros((frame_count, max_persons, NTU_JOINTS, 3))
    for slot, frames in enumerate(sorted(bodies.values(), key=_motion, reverse=True)[:max_persons]):
        for frame, joints in frames.items():
            sequence[frame, slot] = joints
    return check_values(path, sequence.reshape(frame_count, max_persons * NTU_JOINTS, 3))


def _motion(frames: dict[int, np.ndarray]) -> float:
    stacked = np.stack(list(frames.values()))
    return float(stacked.var(axis=0).sum()) * len(frames)


def load_ntu(root: str | Path, on_error: str = "raise", max_persons: int = 2) -> SkeletonDataset:
    """Loads NTU RGB+D `.skeleton` files from a folder.

    Args:
        root: Folder of `SsssCcccPpppRrrrAaaa.skeleton` files.
        on_error: `"raise"` or `"skip"` for bad files (see `BadFileLog`).
        max_persons: Bodies kept per sequence (joints are `max_persons * 25`).

    Returns:
        A dataset on the `ntu_rgbd` layout (`ntu_rgbd_x2` for two persons) with `meta["group"]`
        the performer and `meta["camera"]`.
    """
    root = Path(root)
    files = sorted(path for path in root.glob("*.skeleton") if _NAME.search(path.name))
    if not files:
        raise FileNotFoundError(f"No NTU RGB+D files (SsssCcccPpppRrrrAaaa.skeleton) in {root}.")
    log = BadFileLog(on_error)
    sequences, labels, subjects, cameras, sources = [], [], [], [], []
    for path in files:
        _, camera, subject, _, action = (int(v) for v in _NAME.search(path.name).groups())
        try:
            if action < 1:
                raise SkeletonFileError(path, f"action A{action:03d} in the name; NTU actions "
                                              "are numbered from A001")
            sequences.append(read_ntu_file(path, max_persons))
        except SkeletonFileError as error:
            log.report(error)
            continue
        labels.append(action - 1)
        subjects.append(subject)
        cameras.append(camera)
        sources.append(path.name)
    classes = 60 if max(labels, default=0) < 60 else 120
    layout = "ntu_rgbd" if max_persons == 1 else f"ntu_rgbd_x{max_persons}"
    return SkeletonDataset(
        sequences, np.array(labels), tuple(f"A{i:03d}" for i in range(1, classes + 1)), layout,
        "ntu", {"group": np.array(subjects), "camera": np.array(cameras),
                "source": np.array(sources)},
        log.finish("ntu"),
    )
