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


def read_sbu_file(path: str | Path) -> np.ndarray:
    """Reads one `skeleton_pos.txt`: returns `(T, 30, 3)`, person 1's joints then person 2's.

    Raises:
        SkeletonFileError: empty, truncated or malformed file, NaN values.
    """
    path = Path(path)
    per_line = 1 + SBU_PERSONS * SBU_JOINTS * 3
    rows = parse_number_rows(path, per_line, "frame index + 2 persons x 15 joints x 3")
    return check_values(path, rows[:, 1:].reshape(len(rows), SBU_PERSONS * SBU_JOINTS, 3))


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
