"""Datasets distributed as a folder or as a zip of one: their files listed and read alike."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path


def packed_files(root: str | Path, suffix: str
                 ) -> tuple[Path, list[str], Callable[[str], bytes]]:
    """The files ending in `suffix` under `root`, by their path relative to it, and a reader
    of their bytes.

    Args:
        root: A folder, a `.zip` of one, or a folder holding exactly one `.zip` and no such
            files (as the data folder keeps archives the way they were distributed).
        suffix: The files' ending, such as `".npy"`.

    Returns:
        `(the folder or zip read, names, read)`; names use `/` in both cases.
    """
    root = Path(root)
    if root.is_dir() and not any(root.rglob(f"*{suffix}")):
        archives = sorted(root.glob("*.zip"))
        root = archives[0] if len(archives) == 1 else root
    if zipfile.is_zipfile(root):
        archive = zipfile.ZipFile(root)
        return root, [n for n in archive.namelist() if n.endswith(suffix)], archive.read
    names = [path.relative_to(root).as_posix() for path in root.rglob(f"*{suffix}")]
    return root, names, lambda name: (root / name).read_bytes()
