"""Hand landmarks saved one `.npy` file per frame, as many MediaPipe hobby projects save them:
`<root>/<class>/<sequence>/<frame>.npy`, each frame 21 landmarks x (x, y, z) flattened (63
values), in a folder or a `.zip` of one.

The public recordings in `../shared/data/mediapipe_gestures` were transformed by their recorder
before saving: x and y relative to the wrist (landmark 0) and divided by the frame's largest
absolute value, z MediaPipe's own relative depth. A model trained on them expects that transform
of live landmarks; the web app's record mode saves the package's archive of untransformed image
landmarks instead, which the app then feeds as they come. All-zero frames (no hand found) are
missing observations, not poses: they are dropped, and a sequence left empty is reported.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.data.errors import BadFileLog, SkeletonFileError, without_zero_frames
from keras_gcnprune.data.formats.packed import packed_files

LANDMARKS = 21
# The public recordings' protocol (no subjects): a sequence numbered n is a test one when
# n mod 5 is 4.
TEST_EVERY, TEST_REMAINDER = 5, 4


def _sequences(names: list[str]) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """Frame files by (class, sequence), each (frame number, name)."""
    sequences: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for name in names:
        parts = PurePosixPath(name).parts
        if len(parts) < 3 or not parts[-1][:-4].isdigit():
            continue
        sequences.setdefault((parts[-3], parts[-2]), []).append((int(parts[-1][:-4]), name))
    return sequences


def read_landmark_sequence(source: str, frames: list[tuple[int, str]], read) -> np.ndarray:
    """One sequence's frames in numeric order as `(T, 21, 3)`, all-zero frames dropped."""
    poses = []
    for _, name in sorted(frames):
        try:
            values = np.asarray(read(name), dtype=np.float64)
        except (OSError, ValueError) as error:
            raise SkeletonFileError(f"{source}:{name}", f"cannot read the array ({error})"
                                    ) from error
        if values.size != LANDMARKS * 3:
            raise SkeletonFileError(f"{source}:{name}", f"{values.size} values; a frame holds "
                                                        f"{LANDMARKS} landmarks x 3")
        poses.append(values.reshape(LANDMARKS, 3))
    return without_zero_frames(source, np.stack(poses), "no hand found")


def load_landmark_folders(root: str | Path, on_error: str = "raise") -> SkeletonDataset:
    """Loads `<class>/<sequence>/<frame>.npy` hand landmarks from a folder or a `.zip`.

    Args:
        root: The folder, a `.zip` of it, or a folder holding one such `.zip`.
        on_error: `"raise"` or `"skip"` for bad frames or empty sequences.

    Returns:
        A dataset on the `mediapipe_hand` layout, classes in sorted order, with
        `meta["partition"]` (`"test"` where the sequence number mod 5 is 4), `meta["group"]`
        (the sequence number) and `meta["source"]` (class/sequence).

    Example:
        >>> ds = load_landmark_folders("mediapipe_gestures.zip")  # doctest: +SKIP
    """
    root, names, read_bytes = packed_files(root, ".npy")
    sequences_found = _sequences(names)

    def read(name: str) -> np.ndarray:
        return np.load(io.BytesIO(read_bytes(name)), allow_pickle=False)

    if not sequences_found:
        raise FileNotFoundError(f"No <class>/<sequence>/<frame>.npy landmark files in {root}.")
    classes = sorted({name for name, _ in sequences_found})
    log = BadFileLog(on_error)
    sequences, labels, groups, sources = [], [], [], []
    for (label, sequence), frames in sorted(sequences_found.items(),
                                            key=lambda item: (item[0][0], _number(item[0][1]))):
        source = f"{root}:{label}/{sequence}"
        try:
            sequences.append(read_landmark_sequence(source, frames, read))
        except SkeletonFileError as error:
            log.report(error)
            continue
        labels.append(classes.index(label))
        groups.append(_number(sequence))
        sources.append(f"{label}/{sequence}")
    groups = np.array(groups)
    partition = np.where(groups % TEST_EVERY == TEST_REMAINDER, "test", "train")
    return SkeletonDataset(sequences, np.array(labels), classes, "mediapipe_hand",
                           "mediapipe_gestures",
                           {"partition": partition, "group": groups, "source": np.array(sources)},
                           log.finish("mediapipe_gestures"))


def _number(sequence: str) -> int:
    return int(sequence) if sequence.isdigit() else -1
