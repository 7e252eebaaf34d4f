"""SHREC'21 "skeleton-based hand gesture recognition in the wild": continuous Leap Motion
recordings (20 fps) with the gestures annotated by start and end frame.

A sequence file holds one frame per line, 140 numbers separated by `;` (20 joints x position
and orientation quaternion); the positions are kept. The annotation file has one line per
sequence: `<seq>;<LABEL>;<start>;<end>;...`. Read from the track's zip as distributed
(`shrec21_training_set.zip`) or from a folder extracted from it.

`load_shrec21` gives the segmented gestures as clips, with clips of the frames between gestures
as the class `none` (what an app sees most of the time), each with its sequence as `group`;
`shrec21_streams` gives the continuous recordings with their annotations, for measuring
detection as the track did (`keras_gcnprune.bench.streaming.run_detection`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.data.errors import BadFileLog, SkeletonFileError, check_values
from keras_gcnprune.data.formats.packed import packed_files

SHREC21_CLASSES = ("ONE", "TWO", "THREE", "FOUR", "OK", "MENU", "LEFT", "RIGHT", "CIRCLE", "V",
                   "CROSS", "GRAB", "PINCH", "TAP", "DENY", "KNOB", "EXPAND")
BACKGROUND = "none"
JOINTS, VALUES_PER_JOINT = 20, 7
# Sequences held out for validation, by whole sequence: those numbered n with n mod 5 == 0.
VALIDATION_EVERY = 5
BACKGROUND_STRIDE = 6


@dataclass(frozen=True)
class Gesture:
    """One annotated gesture: its class and first and last frame (inclusive)."""

    label: str
    start: int
    end: int


@dataclass(frozen=True)
class Recording:
    """One continuous recording: its number, frames `(T, 20, 3)` and gestures."""

    number: int
    frames: np.ndarray
    gestures: tuple[Gesture, ...]


def _annotations(text: str, source: str) -> dict[int, tuple[Gesture, ...]]:
    """The gestures of each sequence; an impossible one (the track's sequence 64 has
    `TAP;1135;162`) is reported with a warning and left out."""
    annotated = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(";") if f.strip()]
        if not fields:
            continue
        number, rest = int(fields[0]), fields[1:]
        gestures = []
        for i in range(0, len(rest) - 2, 3):
            label, start, end = rest[i], int(rest[i + 1]), int(rest[i + 2])
            if label not in SHREC21_CLASSES or end < start:
                warnings.warn(f"{source}: sequence {number}'s gesture {label};{start};{end} is "
                              "not a known class from a start to a later end; left out.",
                              stacklevel=3)
                continue
            gestures.append(Gesture(label, start, end))
        annotated[number] = tuple(gestures)
    return annotated


def _frames(text: str, source: str) -> np.ndarray:
    rows = [[float(v) for v in line.split(";") if v.strip()] for line in text.splitlines()
            if line.strip()]
    bad = [i for i, row in enumerate(rows) if len(row) != JOINTS * VALUES_PER_JOINT]
    if bad or not rows:
        raise SkeletonFileError(source, f"frame {bad[0] if bad else 0} does not hold "
                                        f"{JOINTS} joints x {VALUES_PER_JOINT} values")
    frames = np.array(rows).reshape(len(rows), JOINTS, VALUES_PER_JOINT)[:, :, :3]
    return check_values(source, frames)


def shrec21_streams(root: str | Path, on_error: str = "raise") -> list[Recording]:
    """The continuous recordings with their annotated gestures, by sequence number.

    Raises:
        FileNotFoundError: no annotation file under `root`.
    """
    root, paths, read_bytes = packed_files(root, ".txt")
    names = {PurePosixPath(path).name: path for path in paths}

    def read(name: str) -> str:
        return read_bytes(name).decode()

    annotation = next((n for n in names if n.startswith("annotations")), None)
    if annotation is None:
        raise FileNotFoundError(f"No SHREC'21 annotations (annotations_*.txt) in {root}.")
    annotated = _annotations(read(names[annotation]), f"{root}:{annotation}")
    log = BadFileLog(on_error)
    recordings = []
    for number, gestures in sorted(annotated.items()):
        name = names.get(f"{number}.txt")
        try:
            if name is None:
                raise SkeletonFileError(f"{root}:sequences/{number}.txt", "missing")
            recordings.append(Recording(number, _frames(read(name), f"{root}:{name}"),
                                        gestures))
        except SkeletonFileError as error:
            log.report(error)
    log.finish("shrec21")
    return recordings


def load_shrec21(root: str | Path, on_error: str = "raise") -> SkeletonDataset:
    """SHREC'21's gestures as clips, and the frames between them as clips of class `none`.

    Between two gestures (and before the first, after the last) the background gives clips of
    the median gesture length, one every `BACKGROUND_STRIDE` such lengths (so that `none` has
    about as many clips as the gestures together); a stretch shorter than half of one is left
    out.

    Returns:
        A dataset on the `shrec21_hand` layout, 18 classes (the track's 17, then `none`), with
        `meta["group"]` the sequence and `meta["partition"]` `"test"` for the validation
        sequences (numbers divisible by 5), `"train"` for the others.
    """
    recordings = shrec21_streams(root, on_error)
    lengths = [g.end - g.start + 1 for r in recordings for g in r.gestures]
    background = int(np.median(lengths))
    classes = (*SHREC21_CLASSES, BACKGROUND)
    sequences, labels, groups = [], [], []
    for recording in recordings:
        for start, end, label in _segments(recording, background):
            sequences.append(recording.frames[start:end + 1])
            labels.append(classes.index(label))
            groups.append(recording.number)
    groups = np.array(groups)
    partition = np.where(groups % VALIDATION_EVERY == 0, "test", "train")
    return SkeletonDataset(sequences, np.array(labels), classes, "shrec21_hand", "shrec21",
                           {"group": groups, "partition": partition})


def _segments(recording: Recording, background: int):
    """(start, end, label) of each gesture and background clip, in frame order."""
    free_from = 0
    stops = [*sorted(recording.gestures, key=lambda g: g.start),
             Gesture(BACKGROUND, len(recording.frames), len(recording.frames))]
    for gesture in stops:
        for start in range(free_from, gesture.start - background // 2 + 1,
                           background * BACKGROUND_STRIDE):
            yield start, min(start + background, gesture.start) - 1, BACKGROUND
        if gesture.label != BACKGROUND:
            yield gesture.start, min(gesture.end, len(recording.frames) - 1), gesture.label
        free_from = gesture.end + 1
