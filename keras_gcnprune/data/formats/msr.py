"""MSR Action3D skeletons: `aXX_sYY_eZZ_skeleton3D.txt`, 20 joints x (x, y, z, confidence)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.data.errors import (
    BadFileLog,
    SkeletonFileError,
    parse_number_rows,
    without_zero_frames,
)

MSR_CLASSES = (
    "high_arm_wave", "horizontal_arm_wave", "hammer", "hand_catch", "forward_punch",
    "high_throw", "draw_x", "draw_tick", "draw_circle", "hand_clap", "two_hand_wave",
    "side_boxing", "bend", "forward_kick", "side_kick", "jogging", "tennis_swing",
    "tennis_serve", "golf_swing", "pick_up_and_throw",
)
MSR_JOINTS = 20
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_skeleton3D\.txt$")


def read_msr_file(path: str | Path) -> np.ndarray:
    """Reads one MSR Action3D skeleton file: returns `(T, 20, 3)` without all-zero frames.

    Raises:
        SkeletonFileError: empty or truncated file (line count not a multiple of 20), NaN
            values, or every frame all zeros.
    """
    path = Path(path)
    rows = parse_number_rows(path, 4, "x y z confidence")
    if len(rows) % MSR_JOINTS:
        raise SkeletonFileError(
            path, f"truncated: {len(rows)} joint lines is not a multiple of {MSR_JOINTS}"
        )
    return without_zero_frames(path, rows[:, :3].reshape(-1, MSR_JOINTS, 3),
                               "no skeleton tracked")


def load_msr(root: str | Path, on_error: str = "raise") -> SkeletonDataset:
    """Loads MSR Action3D skeleton files from a folder.

    Args:
        root: Folder holding `aXX_sYY_eZZ_skeleton3D.txt` files.
        on_error: `"raise"` or `"skip"` for bad files (see `BadFileLog`).

    Returns:
        A dataset on the `msr_action3d` layout with `meta["group"]` the subject number.
    """
    root = Path(root)
    files = sorted(path for path in root.glob("*_skeleton3D.txt") if _NAME.search(path.name))
    if not files:
        raise FileNotFoundError(f"No MSR Action3D files (aXX_sYY_eZZ_skeleton3D.txt) in {root}.")
    log = BadFileLog(on_error)
    sequences, labels, subjects, sources = [], [], [], []
    for path in files:
        action, subject, _ = (int(v) for v in _NAME.search(path.name).groups())
        try:
            if not 1 <= action <= len(MSR_CLASSES):
                raise SkeletonFileError(path, f"action {action} not in 1-{len(MSR_CLASSES)}")
            sequences.append(read_msr_file(path))
        except SkeletonFileError as error:
            log.report(error)
            continue
        labels.append(action - 1)
        subjects.append(subject)
        sources.append(path.name)
    return SkeletonDataset(
        sequences, np.array(labels), MSR_CLASSES, "msr_action3d", "msr_action3d",
        {"group": np.array(subjects), "source": np.array(sources)}, log.finish("msr_action3d"),
    )
