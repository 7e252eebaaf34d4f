"""Dataset specs such as `sbu:PATH` or `synthetic`: which loader reads what, and from where."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from keras_gcnprune.data.dataset import SkeletonDataset, load_archive
from keras_gcnprune.data.formats.fpha import load_fpha
from keras_gcnprune.data.formats.jhmdb import load_jhmdb
from keras_gcnprune.data.formats.landmarks import load_landmark_folders
from keras_gcnprune.data.formats.msr import load_msr
from keras_gcnprune.data.formats.ntu import load_ntu
from keras_gcnprune.data.formats.sbu import load_sbu
from keras_gcnprune.data.formats.shrec21 import load_shrec21
from keras_gcnprune.data.synthetic import make_synthetic_gestures

DATA_ENV = "GCNPRUNE_DATA"

Loader = Callable[[Path, str], SkeletonDataset]

LOADERS: dict[str, Loader] = {
    "sbu": load_sbu,
    "fpha": load_fpha,
    "msr": load_msr,
    "jhmdb": load_jhmdb,
    "ntu": load_ntu,
    "npz": lambda path, on_error: load_archive(path),
    "landmarks": load_landmark_folders,
    "shrec21": load_shrec21,
}
# Folder of each dataset under the data root, where `name` alone is given.
DEFAULT_FOLDERS = {
    "sbu": "sbu_kinect_interaction",
    "fpha": "fpha",
    "msr": "msr_action3d",
    "jhmdb": "jhmdb",
    "ntu": "ntu",
    "landmarks": "mediapipe_gestures",
    "shrec21": "shrec21",
}


def data_root() -> Path | None:
    """The folder of real datasets: `$GCNPRUNE_DATA`, else `../shared/data` if it exists."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured)
    fallback = Path.cwd().parent / "shared" / "data"
    return fallback if fallback.is_dir() else None


def dataset_names() -> tuple[str, ...]:
    return (*LOADERS, "synthetic")


def _parse(spec: str) -> tuple[str, str]:
    """The loader's name and the location a spec gives (empty: the default one)."""
    name, _, location = spec.partition(":")
    name = name.lower()
    if spec.endswith(".npz") and name not in LOADERS and name != "synthetic":
        return "npz", spec
    if name not in LOADERS and name != "synthetic":
        raise ValueError(
            f"Unknown dataset {name!r} in spec {spec!r}; use NAME:PATH with NAME one of "
            f"{sorted(LOADERS)}, a .npz path, or 'synthetic'."
        )
    return name, location


def dataset_location(spec: str) -> Path | None:
    """The file or folder a dataset spec reads (None for `synthetic`, or a bare name with no
    data root: loading it says why)."""
    name, location = _parse(spec)
    if name == "synthetic" or (not location and data_root() is None):
        return None
    return Path(location) if location else _default_location(name)


def load_dataset(spec: str, on_error: str = "raise") -> SkeletonDataset:
    """Loads a dataset from a spec.

    Args:
        spec: `NAME:PATH` with NAME one of `sbu`, `fpha`, `msr`, `jhmdb`, `ntu`, `npz`,
            `landmarks` (`<class>/<seq>/<frame>.npy` hand landmarks, a folder or `.zip`); a bare
            NAME reads `$GCNPRUNE_DATA/<folder>` (default `../shared/data`); a path ending in
            `.npz` reads an archive; `synthetic` or `synthetic:SEED` generates the built-in
            hand-gesture set.
        on_error: `"raise"` stops at the first bad file; `"skip"` skips bad files and warns
            with their count (the dataset's `skipped` lists them).

    Returns:
        The `SkeletonDataset`.

    Example:
        >>> load_dataset("synthetic:1").name
        'synthetic'
    """
    name, location = _parse(spec)
    if name == "synthetic":
        return make_synthetic_gestures(seed=int(location) if location else 0)
    path = dataset_location(spec) or _default_location(name)  # which says why there is none
    if not path.exists():
        raise FileNotFoundError(f"Dataset path {path} (from spec {spec!r}) does not exist.")
    return LOADERS[name](path, on_error)


def _default_location(name: str) -> Path:
    root = data_root()
    if root is None or name not in DEFAULT_FOLDERS:
        raise ValueError(
            f"No path for dataset {name!r}: give {name}:PATH, or set {DATA_ENV} to the folder "
            f"holding {DEFAULT_FOLDERS.get(name, '<dataset folder>')}/."
        )
    return root / DEFAULT_FOLDERS[name]
