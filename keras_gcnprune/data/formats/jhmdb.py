"""JHMDB ground-truth 2-D poses, from the per-split `.npz` archives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset, load_archive

JHMDB_SPLITS = (1, 2, 3)


def load_jhmdb(root: str | Path, on_error: str = "raise") -> SkeletonDataset:
    """Loads JHMDB from `jhmdb_split{1,2,3}_{train,test}.npz` archives.

    The three splits partition the same clips differently; clips are matched across archives by
    their exact poses, so the result holds every clip once with `meta["partition_split<k>"]`
    (`"train"` / `"test"`) for each split found.

    Args:
        root: Folder holding the archives.
        on_error: Accepted for a uniform loader signature; archives are checked as a whole and
            an inconsistent one always raises.

    Returns:
        A dataset on the `jhmdb` layout (15 joints, 2 channels).
    """
    root = Path(root)
    clips: dict[str, int] = {}
    sequences, labels, partitions = [], [], {}
    class_names = None
    for split in JHMDB_SPLITS:
        for part in ("train", "test"):
            path = root / f"jhmdb_split{split}_{part}.npz"
            if not path.exists():
                continue
            archive = load_archive(path, layout="jhmdb", name="jhmdb")
            if class_names is None:
                class_names = archive.class_names
            elif archive.class_names != class_names:
                raise ValueError(f"{path} has classes {archive.class_names}, others {class_names}.")
            column = partitions.setdefault(f"partition_split{split}", {})
            for sequence, label in zip(archive.sequences, archive.labels):
                key = hashlib.sha1(sequence.tobytes()).hexdigest()
                if key not in clips:
                    clips[key] = len(sequences)
                    sequences.append(sequence)
                    labels.append(label)
                column[clips[key]] = part
    if not sequences:
        raise FileNotFoundError(f"No JHMDB archives jhmdb_split<k>_<train|test>.npz in {root}.")
    meta = {
        name: np.array([column.get(i, "unused") for i in range(len(sequences))])
        for name, column in partitions.items()
    }
    return SkeletonDataset(sequences, np.array(labels), class_names, "jhmdb", "jhmdb", meta)
