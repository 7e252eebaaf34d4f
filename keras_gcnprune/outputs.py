"""What a command may write and remove, written once for every command.

The rule: a command writes only inside the paths it was given, removes only files it wrote
itself (recorded, not guessed by name), and never writes over or removes what it reads from.

An `OutputFolder` keeps that rule for one folder. The names the package wrote there are
recorded in `.gcnprune/written.json` before they are written; a name that exists but is not
recorded belongs to the user, and writing over it or removing it is refused. While a command
writes, it holds the folder's lock (`.gcnprune/lock`), so that two commands never mix their
files in one folder. Files are written under `.gcnprune/partial/` and renamed into place, so
that a crash never leaves half a file under a recorded name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

RECORD_DIR = ".gcnprune"


class OutputConflictError(ValueError):
    """A command would write over or remove what it did not write or what it reads from, or
    write in a folder that another command is writing in."""


class OutputFolder:
    """A folder a command writes in, with the names it wrote recorded and a lock.

    Args:
        path: The folder (created on the first write).
        reads: Files and folders the command reads: nothing is written over them or in them.

    Example:
        >>> out = OutputFolder("runs/dense", reads=["data/clips.npz"])
        >>> with out.locked():  # doctest: +SKIP
        ...     out.write_text("notes.txt", "written by the package")
    """

    def __init__(self, path: str | Path, reads: Iterable[str | Path] = ()) -> None:
        self.path = Path(path)
        self.reads = [Path(read) for read in reads if read is not None]

    record_dir = property(lambda self: self.path / RECORD_DIR)
    record_file = property(lambda self: self.record_dir / "written.json")
    lock_file = property(lambda self: self.record_dir / "lock")

    def written(self) -> set[str]:
        """The names the package recorded as its own in this folder."""
        try:
            names = json.loads(self.record_file.read_text())
        except FileNotFoundError:
            return set()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OutputConflictError(
                f"{self.record_file} is damaged ({error}): it records which files the package "
                "wrote here, so nothing here is written over or removed. Use another output "
                "folder.") from error
        return set(names) if isinstance(names, list) else set()

    def check_writable(self, names: Iterable[str]) -> None:
        """Refuses up front, before any work, names this command may not write here.

        Raises:
            OutputConflictError: a name is, holds or lies in a path the command reads, or
                exists and was not written by the package.
        """
        written = self.written()
        for name in names:
            self._check_not_read(name)
            path = self.path / name
            if (path.exists() or path.is_symlink()) and name not in written:
                raise OutputConflictError(
                    f"{path} exists and was not written by gcnprune in this folder (it is not "
                    f"in {self.record_file}): it is left as it is. Move it away, or write to "
                    "another output path.")

    def _check_not_read(self, name: str) -> None:
        target = _resolved(self.path / name)
        for read in self.reads:
            source = _resolved(read)
            if target == source or source.is_relative_to(target) or \
                    target.is_relative_to(source):
                raise OutputConflictError(
                    f"{self.path / name} would write over {read}, which this command reads: "
                    "write to another output path.")

    def _check_locked(self) -> None:
        if str(_resolved(self.path)) not in _HELD:
            raise RuntimeError(f"{self.path} is written without its lock: write inside "
                               "`with OutputFolder(...).locked():`.")

    def _record(self, name: str) -> None:
        self._check_locked()
        written = self.written()
        if name in written:
            return
        self.record_dir.mkdir(parents=True, exist_ok=True)
        _replace_text(self.record_file, json.dumps(sorted(written | {name}), indent=1),
                      self._partial_dir())

    def _forget(self, name: str) -> None:
        written = self.written()
        if name not in written:
            return
        if written == {name}:  # nothing left: the folder holds nothing of the package's
            self.record_file.unlink()
            return
        _replace_text(self.record_file, json.dumps(sorted(written - {name}), indent=1),
                      self._partial_dir())

    def _partial_dir(self) -> Path:
        partial = self.record_dir / "partial"
        partial.mkdir(parents=True, exist_ok=True)
        return partial

    def claim(self, name: str) -> Path:
        """Records `name` as the package's before it is written and returns its path.

        Raises:
            OutputConflictError: as `check_writable`.
        """
        self.check_writable([name])
        self._record(name)
        return self.path / name

    def write(self, name: str, writer: Callable[[Path], None], suffix: str = "") -> Path:
        """Writes `name` whole: `writer` writes a staging path (ending in `suffix`), which then
        replaces the recorded name."""
        target = self.claim(name)
        with self.staging(suffix) as staged:
            writer(staged)
            self._replace(staged, target)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write(name, lambda path: path.write_text(text))

    def write_bytes(self, name: str, data: bytes) -> Path:
        return self.write(name, lambda path: path.write_bytes(data))

    def install(self, name: str, staged: Path) -> Path:
        """Moves a staged file or folder into place as `name` (a recorded one replaced)."""
        target = self.claim(name)
        self._replace(staged, target)
        return target

    @staticmethod
    def _replace(staged: Path, target: Path) -> None:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # recorded as the package's by `claim`
        os.replace(staged, target)

    @contextlib.contextmanager
    def staging(self, suffix: str = "") -> Iterator[Path]:
        """A path under `.gcnprune/partial/` (same file system, so renames are atomic), removed
        afterwards if still there."""
        self.path.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self._partial_dir()))
        try:
            yield folder / f"staged{suffix}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def remove(self, name: str) -> None:
        """Removes `name` if the package recorded it as written here (a missing one is
        fine).

        Raises:
            OutputConflictError: it exists but is not recorded, or is read by the command.
        """
        path = self.path / name
        if not (path.exists() or path.is_symlink()):
            self._forget(name)
            return
        self._check_locked()
        self.check_writable([name])
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        self._forget(name)

    @contextlib.contextmanager
    def locked(self) -> Iterator[OutputFolder]:
        """Holds the folder's lock (creating the folder); refuses while another process holds
        it. Re-entrant within one process."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputConflictError(f"{self.path} is a file, not a folder: name a folder "
                                      "to write in.")
        key = str(_resolved(self.path))
        if key in _HELD:
            yield self
            return
        created = not self.path.exists()
        _HELD[key] = handle = self._acquire()
        try:
            yield self
        finally:
            del _HELD[key]
            self._release(handle, created)

    def _acquire(self):
        self.record_dir.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.lock_file, "a+")  # noqa: SIM115 (held open until released)
            if not _try_lock(handle):
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise OutputConflictError(
                    f"{self.path} is being written by another gcnprune command ({holder}); "
                    "wait for it to finish, or write to another output folder.")
            if _same_file(handle, self.lock_file):
                break
            handle.close()  # its holder removed it on release: lock the new one
            self.record_dir.mkdir(parents=True, exist_ok=True)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        return handle

    def _release(self, handle, created: bool) -> None:
        """Releases the lock, first removing what staging left (a crashed command's too) and,
        where nothing is recorded, `.gcnprune/` itself and the folder if this command created
        it and it is empty: a command that wrote nothing leaves nothing."""
        try:
            shutil.rmtree(self.record_dir / "partial", ignore_errors=True)
            if not self.record_file.exists():
                self.lock_file.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.record_dir.rmdir()
                    if created:
                        self.path.rmdir()
        finally:
            handle.close()  # closing the handle releases the lock


def _same_file(handle, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


_HELD: dict[str, object] = {}  # resolved folder -> its lock's handle, held by this process


def _try_lock(handle) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def _replace_text(path: Path, text: str, partial: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=partial)
    with os.fdopen(handle, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def file_output(path: str | Path, reads: Iterable[str | Path] = ()) -> tuple[OutputFolder, str]:
    """The output folder and name of an output file the user named (its folder records it)."""
    path = Path(path)
    if path.name in ("", ".", "..") or path.is_dir():
        raise OutputConflictError(f"{path} is a folder; name a file to write.")
    return OutputFolder(path.parent, reads), path.name
