"""FPHA (First-Person Hand Action): `Subject_<s>/<action>/<seq>/skeleton.txt` and the split file."""

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

FPHA_JOINTS = 21
FPHA_TO_MEDIAPIPE = (0, 1, 6, 7, 8, 2, 9, 10, 11, 3, 12, 13, 14, 4, 15, 16, 17, 5, 18, 19, 20)
SPLIT_FILE = "data_split_action_recognition.txt"
ANNOTATION_FOLDERS = ("Hand_pose_annotation_v1", "Hand_pose_annotation_v1_1")


def read_fpha_file(path: str | Path) -> np.ndarray:
    """Reads one FPHA `skeleton.txt` (mm): returns `(T, 21, 3)` in MediaPipe hand joint order."""
    path = Path(path)
    rows = parse_number_rows(path, 1 + FPHA_JOINTS * 3, "frame index + 21 joints x 3")
    sequence = rows[:, 1:].reshape(len(rows), FPHA_JOINTS, 3)[:, FPHA_TO_MEDIAPIPE]
    return check_values(path, sequence)


def parse_split_file(path: Path) -> dict[str, list[tuple[str, int]]]:
    """Parses `Training <n>` / `Test <m>` sections of `<Subject_s/action/seq> <label>` lines.

    Raises:
        ValueError: naming the file and line: unreadable text, a count or label that is not a
            non-negative integer, or an entry that is not `Subject_s/action/seq` inside the
            annotation folder (absolute, or with `..`).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the split file as UTF-8 text ({error}).") from error
    sections: dict[str, list[tuple[str, int]]] = {}
    current = None
    expected: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}, line {number}"
        if parts[0] in ("Training", "Test") and len(parts) == 2:
            current = "train" if parts[0] == "Training" else "test"
            expected[current] = _count(parts[1], where, "the section size")
            sections[current] = []
        elif current is not None and len(parts) == 2:
            label = _count(parts[1], where, "the label")
            sections[current].append((_entry(parts[0], where), label))
        else:
            raise ValueError(f"{where}: cannot parse {line!r}.")
    for name, count in expected.items():
        if len(sections[name]) != count:
            raise ValueError(
                f"{path}: section {name} announces {count} entries but lists {len(sections[name])}."
            )
    if set(sections) != {"train", "test"}:
        raise ValueError(f"{path}: expected 'Training <n>' and 'Test <m>' sections.")
    return sections


def _count(token: str, where: str, what: str) -> int:
    if not token.isdigit():
        raise ValueError(f"{where}: {what} {token!r} is not a non-negative integer.")
    return int(token)


def _entry(entry: str, where: str) -> str:
    parts = Path(entry).parts
    if Path(entry).is_absolute() or ".." in parts or len(parts) != 3:
        raise ValueError(f"{where}: entry {entry!r} is not Subject_<s>/<action>/<sequence> inside "
                         "the annotation folder (absolute paths and '..' are refused).")
    return entry


def _find_layout(root: Path) -> tuple[Path, Path]:
    candidates = [root, *(root / name for name in ANNOTATION_FOLDERS)]
    annotations = next((c for c in candidates if any(c.glob("Subject_*"))), None)
    if annotations is None:
        raise FileNotFoundError(
            f"No FPHA annotations under {root}: expected Subject_<s>/ folders in it or in "
            f"{' or '.join(ANNOTATION_FOLDERS)}/."
        )
    for folder in (root, annotations, annotations.parent):
        if (folder / SPLIT_FILE).exists():
            return annotations, folder / SPLIT_FILE
    raise FileNotFoundError(f"No FPHA split file {SPLIT_FILE} in {root} or {annotations}.")


def load_fpha(root: str | Path, on_error: str = "raise") -> SkeletonDataset:
    """Loads FPHA hand skeletons with the official 1:1 split.

    Args:
        root: The FPHA folder (holding `Hand_pose_annotation_v1` and the split file), or the
            annotation folder itself.
        on_error: `"raise"` or `"skip"` for bad files and split entries without a file.

    Returns:
        A dataset on the `mediapipe_hand` layout with `meta["partition"]` from the split file and
        `meta["group"]` the subject.
    """
    annotations, split_file = _find_layout(Path(root))
    sections = parse_split_file(split_file)
    actions: dict[int, str] = {}
    log = BadFileLog(on_error)
    sequences, labels, partitions, groups, sources = [], [], [], [], []
    for partition, entries in sections.items():
        for entry, label in entries:
            path = annotations / entry / "skeleton.txt"
            try:
                if not path.exists():
                    raise SkeletonFileError(path, f"split entry {entry!r} has no skeleton.txt")
                sequences.append(read_fpha_file(path))
            except SkeletonFileError as error:
                log.report(error)
                continue
            actions.setdefault(label, Path(entry).parts[1])
            labels.append(label)
            partitions.append(partition)
            groups.append(Path(entry).parts[0])
            sources.append(entry)
    count = max(actions) + 1 if actions else 0
    class_names = tuple(actions.get(i, f"class_{i}") for i in range(count))
    return SkeletonDataset(
        sequences, np.array(labels), class_names, "mediapipe_hand", "fpha",
        {"partition": np.array(partitions), "group": np.array(groups),
         "source": np.array(sources)},
        log.finish("fpha"),
    )
