"""The in-memory skeleton dataset and its pickle-free `.npz` archive format.

Archive format (any user can write one with numpy; `gcnprune convert` writes one from every
supported dataset):

- `poses`: float32 `(sum of frames, V, C)`, all sequences one after the other.
- `lengths`: int32 `(n,)`, frames of each sequence, in order: sequence i is
  `poses[sum(lengths[:i]) : sum(lengths[:i + 1])]`.
- `labels`: int32 `(n,)` class indices, or strings (class names).
- `class_names` (optional): str `(num_classes,)`; default: sorted unique string labels, or
  `class_0 ...` for integer labels.
- `layout` (optional): str scalar, a built-in layout name or a layout as JSON; default: the
  layout the caller names.
- `dataset` (optional): str scalar, the source dataset (its protocols then apply).
- `meta_<key>` (optional): str or int `(n,)` per-sequence fields, for example `meta_group`
  (subject or set, used by cross-validation protocols) and `meta_partition` (`train` / `test`).

Every array is saved without pickles and loaded with `allow_pickle=False`.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_gcnprune.data.errors import SkeletonFileError, check_values
from keras_gcnprune.graphs import SkeletonLayout, get_layout
from keras_gcnprune.outputs import file_output

ARCHIVE_REQUIRED = ("poses", "lengths", "labels")


@dataclass
class SkeletonDataset:
    """Variable-length skeleton sequences with labels and per-sequence metadata.

    Args:
        sequences: One float32 array `(T_i, V, C)` per sequence.
        labels: Class index of each sequence.
        class_names: Name of each class.
        layout: Name of the skeleton layout (or the layout itself for custom ones).
        name: Name of the source dataset (selects its protocols).
        meta: Per-sequence arrays, such as `group` (subject or set), `partition`
            (`"train"` / `"test"`, or `partition_<split>` for several official splits) and
            `source` (the file each sequence came from).
        skipped: `(path, reason)` of every file that was skipped as bad.

    Example:
        >>> ds = SkeletonDataset([np.zeros((5, 15, 3), "float32")], np.array([0]), ("wave",), "sbu")
        >>> len(ds), ds.num_joints
        (1, 15)
    """

    sequences: list[np.ndarray]
    labels: np.ndarray
    class_names: tuple[str, ...]
    layout: str | SkeletonLayout
    name: str = "custom"
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.class_names = tuple(str(name) for name in self.class_names)
        check_class_names(self.class_names)
        if len(self.sequences) != len(self.labels):
            raise ValueError(
                f"{len(self.sequences)} sequences but {len(self.labels)} labels; give one label "
                "per sequence."
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}) for {self.num_classes} class names, "
                f"got values from {self.labels.min()} to {self.labels.max()}."
            )
        for key, values in self.meta.items():
            if len(values) != len(self.labels):
                raise ValueError(
                    f"meta[{key!r}] has {len(values)} entries for {len(self)} sequences."
                )

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def skeleton(self) -> SkeletonLayout:
        return get_layout(self.layout)

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def channels(self) -> int:
        return int(self.sequences[0].shape[-1]) if self.sequences else 0

    def subset(self, indices) -> SkeletonDataset:
        """Returns the sequences at `indices` (an index array or boolean mask)."""
        indices = np.arange(len(self))[np.asarray(indices)]
        return SkeletonDataset(
            [self.sequences[i] for i in indices],
            self.labels[indices],
            self.class_names,
            self.layout,
            self.name,
            {key: values[indices] for key, values in self.meta.items()},
            list(self.skipped),
        )

    def summary(self) -> str:
        lengths = [len(seq) for seq in self.sequences] or [0]
        return (
            f"{self.name}: {len(self)} sequences, {self.num_classes} classes, layout "
            f"{self.skeleton.name} ({self.num_joints} joints, {self.channels} channels), "
            f"{min(lengths)}-{max(lengths)} frames (median {int(np.median(lengths))})"
            + (f", {len(self.skipped)} files skipped" if self.skipped else "")
        )

    def save(self, path: str | Path, reads=()) -> Path:
        """Writes the dataset as a pickle-free `.npz` archive (format in the module docstring).

        Args:
            path: The archive; an existing one is replaced only if the package wrote it.
            reads: Files or folders the dataset was read from: never written over.

        Returns:
            The path written.
        """
        layout = self.layout if isinstance(self.layout, str) else json.dumps(self.layout.to_dict())
        arrays = {
            "poses": np.concatenate(self.sequences).astype(np.float32),
            "lengths": np.array([len(seq) for seq in self.sequences], dtype=np.int32),
            "labels": self.labels.astype(np.int32),
            "class_names": np.array(self.class_names, dtype=str),
            "layout": np.array(layout),
            "dataset": np.array(self.name),
        }
        arrays.update({f"meta_{key}": np.asarray(values) for key, values in self.meta.items()})
        out, name = file_output(path, reads)
        with out.locked():
            out.write(name, lambda staged: np.savez_compressed(staged, **arrays), ".npz")
        return Path(path)


MAX_CLASSES = 100_000
MAX_CLASS_NAME = 200


def check_class_names(names) -> None:
    """Refuses class names an app could not show or a labels file could not hold one per
    line: not strings, empty, with line breaks or other control characters, too long,
    repeated, or more than `MAX_CLASSES`.

    Raises:
        ValueError: naming the offending name and its index.
    """
    names = list(names)
    if len(names) > MAX_CLASSES:
        raise ValueError(f"{len(names):,} classes; at most {MAX_CLASSES:,} are supported.")
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise ValueError(f"Class name {index} is {name!r}, not a string.")
        if not name.strip() or len(name) > MAX_CLASS_NAME or \
                any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError(
                f"Class name {index} ({name!r}) must be non-blank text of at most "
                f"{MAX_CLASS_NAME} characters without line breaks or other control "
                "characters: a labels file holds one name per line.")
        if name in seen:
            raise ValueError(f"Class name {name!r} is given twice (classes {seen[name]} and "
                             f"{index}); give each class its own name.")
        seen[name] = index


def _layout_from_archive(value: np.ndarray) -> str | SkeletonLayout:
    text = str(value)
    return SkeletonLayout.from_dict(json.loads(text)) if text.startswith("{") else text


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz` file, read now, so that a damaged member fails here."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it is a single .npy array, not an .npz archive of named arrays")
        with archive:
            return {key: archive[key] for key in archive.files}
    except EOFError as error:
        raise SkeletonFileError(path, f"cannot read the archive: empty or cut short ({error})"
                                ) from error
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        raise SkeletonFileError(
            path, f"cannot read the archive ({type(error).__name__}: {error}); write it with "
                  "numpy.savez or `gcnprune convert`") from error


def _archive_lengths(path: Path, lengths: np.ndarray, frames: int) -> np.ndarray:
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise SkeletonFileError(path, f"lengths must be a 1-D integer array, got dtype "
                                      f"{lengths.dtype} shape {lengths.shape}")
    short = np.flatnonzero(lengths < 1)
    if short.size:
        raise SkeletonFileError(path, f"sequence {int(short[0])} has length "
                                      f"{int(lengths[short[0]])} ({short.size} sequences below 1); "
                                      "every sequence needs at least one frame")
    if int(lengths.sum()) != frames:
        raise SkeletonFileError(path, f"lengths sum to {int(lengths.sum())} frames but poses hold "
                                      f"{frames}")
    return lengths.astype(np.int64)


def _archive_labels(path: Path, raw: np.ndarray, names: np.ndarray | None
                    ) -> tuple[np.ndarray, tuple[str, ...]]:
    if names is not None:
        try:
            check_class_names([str(n) for n in names.reshape(-1)])
        except ValueError as error:
            raise SkeletonFileError(path, f"class_names: {error}") from error
    if raw.dtype.kind in "US":
        class_names = tuple(str(n) for n in names) if names is not None \
            else tuple(sorted(set(raw.tolist())))
        index = {name: i for i, name in enumerate(class_names)}
        missing = sorted(set(raw.tolist()) - set(index))
        if missing:
            raise SkeletonFileError(path, f"labels {missing[:5]} are not in class_names "
                                          f"{list(class_names)[:10]}")
        return np.array([index[label] for label in raw.tolist()], dtype=np.int64), class_names
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            bad = raw[~np.isfinite(raw) | (raw != np.round(raw))][:5].tolist()
            raise SkeletonFileError(path, f"labels are floats with fractional or non-finite "
                                          f"values (e.g. {bad}); store integer class indices or "
                                          "class names")
    elif raw.dtype.kind not in "iu":
        raise SkeletonFileError(path, f"labels must be integers or strings, got dtype {raw.dtype}")
    labels = raw.astype(np.int64)
    if names is None and labels.max(initial=-1) >= MAX_CLASSES:
        raise SkeletonFileError(path, f"label {int(labels.max())} without class_names would "
                                      f"make {int(labels.max()) + 1:,} classes; at most "
                                      f"{MAX_CLASSES:,} are supported: store class_names, or "
                                      "number the classes from 0")
    class_names = tuple(str(n) for n in names) if names is not None \
        else tuple(f"class_{i}" for i in range(int(labels.max(initial=-1)) + 1))
    outside = labels[(labels < 0) | (labels >= len(class_names))]
    if outside.size:
        raise SkeletonFileError(path, f"labels {sorted(set(outside.tolist()))[:5]} are outside "
                                      f"[0, {len(class_names)}) for {len(class_names)} classes")
    return labels, class_names


def load_archive(path: str | Path, layout: str | None = None, name: str | None = None
                 ) -> SkeletonDataset:
    """Reads a skeleton `.npz` archive (format in the module docstring).

    Args:
        path: The `.npz` file.
        layout: Layout to use when the archive names none.
        name: Dataset name to use when the archive names none.

    Returns:
        The `SkeletonDataset`.

    Raises:
        SkeletonFileError: an unreadable or truncated file, a missing array, lengths below one
            frame or not summing to the poses, labels that are not class indices or names,
            poses that do not fit the layout, or coordinates that are not finite in float32
            (naming the sequence).

    Example:
        >>> ds = load_archive("jhmdb_split1_train.npz", layout="jhmdb")  # doctest: +SKIP
    """
    path = Path(path)
    arrays = _read_arrays(path)
    missing = [key for key in ARCHIVE_REQUIRED if key not in arrays]
    if missing:
        raise SkeletonFileError(path, f"lacks {missing}; it needs poses, lengths and labels (see "
                                      "keras_gcnprune.data.dataset for the format)")
    poses, raw_labels = arrays["poses"], arrays["labels"]
    if poses.ndim != 3 or poses.dtype.kind not in "fiu":
        raise SkeletonFileError(path, f"poses must be a numeric (frames, joints, coordinates) "
                                      f"array, got dtype {poses.dtype} shape {poses.shape}")
    lengths = _archive_lengths(path, arrays["lengths"], len(poses))
    if raw_labels.ndim != 1 or len(raw_labels) != len(lengths):
        raise SkeletonFileError(path, f"{len(lengths)} lengths but labels of shape "
                                      f"{raw_labels.shape}; give one label per sequence")
    labels, class_names = _archive_labels(path, raw_labels, arrays.get("class_names"))
    stored_layout = arrays.get("layout")
    if stored_layout is None and layout is None:
        raise SkeletonFileError(path, "names no layout; pass layout=... or store a `layout` "
                                      "array")
    try:
        chosen = _layout_from_archive(stored_layout) if stored_layout is not None else layout
        joints = get_layout(chosen).num_joints
    except ValueError as error:
        raise SkeletonFileError(path, f"bad layout: {error}") from error
    if poses.shape[1] != joints:
        raise SkeletonFileError(path, f"poses have {poses.shape[1]} joints but layout "
                                      f"{get_layout(chosen).name!r} has {joints}")
    meta = {key[5:]: values for key, values in arrays.items() if key.startswith("meta_")}
    for key, values in meta.items():
        if len(values) != len(lengths):
            raise SkeletonFileError(path, f"meta_{key} has {len(values)} entries for "
                                          f"{len(lengths)} sequences")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    sequences = [check_values(path, poses[offsets[i]:offsets[i + 1]], f"sequence {i}")
                 for i in range(len(lengths))]
    dataset_name = str(arrays["dataset"]) if "dataset" in arrays else None
    return SkeletonDataset(sequences, labels, class_names, chosen,
                           name or dataset_name or "npz", meta)
