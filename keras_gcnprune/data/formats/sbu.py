"""SBU Kinect Interaction v2.0: `<set>/<class>/<seq>/skeleton_pos.txt`, two persons x 15 joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.data.errors import (
    BadFileLog,
    SkeletonFileError,
    check_values,
    parse_number_rows,
)

SBU_CLASSES = (
    "approaching", "departing", "kicking", "punching", "pushing", "hugging", "shaking_hands",
    "exchanging",
)
SBU_JOINTS = 15
SBU_PERSONS = 2
# The files hold x and y divided by 2,560 and 1,920 mm and z by 1,280 mm, x and y counted from
# the far corner (the dataset's README: X = 1280 - 2560 x, Y = 960 - 1920 y, Z = 10000 z / 7.8125).
_NORMALISED_SCALE_MM = np.array([-2560.0, -1920.0, 10000.0 / 7.8125])
_NORMALISED_OFFSET_MM = np.array([1280.0, 960.0, 0.0])


def sbu_to_metres(normalised: np.ndarray) -> np.ndarray:
    """The Kinect's camera coordinates in metres (y up, z the distance from the camera) of
    SBU's normalised `(..., 3)` coordinates.

    The files scale each axis differently, so that a skeleton read as stored is squashed
    along x and y: its bones change length as it turns, and rotating it is no rotation of a
    body.

    Example:
        >>> sbu_to_metres(np.array([0.5, 0.5, 0.78125]))
        array([0., 0., 1.])
    """
    return (_NORMALISED_OFFSET_MM + np.asarray(normalised) * _NORMALISED_SCALE_MM) / 1000.0


def read_sbu_file(path: str | Path) -> np.ndarray:
    """Reads one `skeleton_pos.txt`: returns `(T, 30, 3)` in metres (`sbu_to_metres`), person
    1's joints then person 2's.

    Raises:
        SkeletonFileError: empty, truncated or malformed file, NaN values.
    """
    path = Path(path)
    per_line = 1 + SBU_PERSONS * SBU_JOINTS * 3
    rows = parse_number_rows(path, per_line, "frame index + 2 persons x 15 joints x 3")
    stored = check_values(path, rows[:, 1:].reshape(len(rows), SBU_PERSONS * SBU_JOINTS, 3))
    return sbu_to_metres(stored).astype(stored.dtype)


def load_sbu(root: str | Path, on_error: str = "raise") -> SkeletonDataset:
    """Loads SBU Kinect Interaction from its original folder tree.

    Args:
        root: Folder holding the 21 set folders (`s01s02`, ...).
        on_error: `"raise"` or `"skip"` for bad files (see `BadFileLog`).

    Returns:
        A dataset on the `sbu_pair` layout (30 joints) with `meta["group"]` the set name.
    """
    root = Path(root)
    files = sorted(root.glob("s*/[0-9][0-9]/[0-9]*/skeleton_pos.txt"))
    if not files:
        raise FileNotFoundError(
            f"No SBU files under {root}: expected <set>/<class>/<seq>/skeleton_pos.txt, such as "
            f"{root}/s01s02/01/001/skeleton_pos.txt."
        )
    log = BadFileLog(on_error)
    sequences, labels, groups, sources = [], [], [], []
    for path in files:
        class_index = int(path.parent.parent.name) - 1
        try:
            if not 0 <= class_index < len(SBU_CLASSES):
                raise SkeletonFileError(
                    path, f"class folder {path.parent.parent.name} not in 01-08"
                )
            sequences.append(read_sbu_file(path))
        except SkeletonFileError as error:
            log.report(error)
            continue
        labels.append(class_index)
        groups.append(path.parents[2].name)
        sources.append(str(path.relative_to(root)))
    return SkeletonDataset(
        sequences, np.array(labels), SBU_CLASSES, "sbu_pair", "sbu",
        {"group": np.array(groups), "source": np.array(sources)}, log.finish("sbu"),
    )
