"""A run directory on disk, owned by `RunDirectory`: claiming it for one configuration,
writing its files atomically, and reading them back with errors that name the file.

A run directory holds `model.keras`, `run.json` (what is needed to use the model again),
`history.json`, for pruned runs `stripped.keras` and `connectivity.json`, while training a
`backup/`, for a refit run (`TrainConfig.refit`) its selection run in `selection/` (a run
directory of its own), and `metrics.json`, written last so that its presence marks a complete
set. Its
files are written through an `OutputFolder` (`keras_gcnprune.outputs`): recorded as the
package's before they are written, never written over or removed when the user's, and
written under the folder's lock.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from keras_gcnprune.outputs import OutputFolder
from keras_gcnprune.training.run_info import (
    RUN_FILE,
    RunInfo,
    path_settings,
    relative_to,
    with_path_setting,
)

if TYPE_CHECKING:
    from keras_gcnprune.training.run import TrainConfig

MODEL_FILE = "model.keras"


class RunConflictError(ValueError):
    """A run directory holds a run of other settings."""


class RunDirectory:
    """The one owner of a run directory's files: their names, writing them atomically and
    reading them back.

    Args:
        path: The run directory.
        reads: What the command that writes it reads (an initial model, a teacher, a
            dataset file): nothing is written over them.

    Example:
        >>> run = RunDirectory("runs/dense")
        >>> run.model_file.name, run.finished()
        ('model.keras', False)
    """

    def __init__(self, path: str | Path, reads=()) -> None:
        self.path = Path(path)
        self.output = OutputFolder(self.path, reads)

    @classmethod
    def holding(cls, model_path: str | Path) -> tuple[RunDirectory, Path]:
        """The run directory of a run directory or of a model file in one, and the model file
        (`model.keras`, or the file given)."""
        path = Path(model_path)
        if path.is_dir():
            return cls(path), path / MODEL_FILE
        return cls(path.parent), path

    @classmethod
    def files_read(cls, model_path: str | Path) -> list[Path]:
        """What loading a run directory or model file reads: the model and its `run.json`."""
        run, model_file = cls.holding(model_path)
        return [model_file, run.run_file]

    model_file = property(lambda self: self.path / MODEL_FILE)
    run_file = property(lambda self: self.path / RUN_FILE)
    metrics_file = property(lambda self: self.path / "metrics.json")
    history_file = property(lambda self: self.path / "history.json")
    stripped_file = property(lambda self: self.path / "stripped.keras")
    connectivity_file = property(lambda self: self.path / "connectivity.json")
    backup_dir = property(lambda self: self.path / "backup")
    selection_dir = property(lambda self: self.path / "selection")

    def artifacts(self) -> list[Path]:
        """Everything `train` writes here; `claim(overwrite=True)` removes these, each only
        where the package recorded it as written here."""
        return [self.metrics_file, self.model_file, self.run_file, self.history_file,
                self.stripped_file, self.connectivity_file, self.backup_dir,
                self.selection_dir]

    def check_writable(self) -> None:
        """Refuses, before any work, a directory where an artifact's name is the user's or
        read by the command (`OutputConflictError`)."""
        self.output.check_writable(path.name for path in self.artifacts())

    def remove_artifacts(self) -> None:
        """Removes every file and folder of `artifacts()` that the package wrote here."""
        for path in self.artifacts():
            self.output.remove(path.name)

    def finished(self) -> bool:
        """Whether a complete set of files is here (its `metrics.json` is written last)."""
        return self.metrics_file.exists()

    def finished_with(self, config: TrainConfig) -> bool:
        """Whether a finished run of exactly `config`'s settings is here."""
        if not (self.finished() and self.run_file.exists()):
            return False
        return not self.recorded_difference(config.to_dict())

    def recorded_difference(self, wanted: dict) -> str:
        """How the settings recorded in `run.json` differ from `wanted` (a
        `TrainConfig.to_dict()`), as `settings_difference` says it. A path setting (the
        initial model, the teacher) is the same where it names the same place, or the same
        place seen from the run directory: a folder holding a run and the runs it read can be
        moved and resumed."""
        info = self.read_info()
        saved = path_settings(info.config)
        for name, value in path_settings(wanted).items():
            if name in saved and self.same_place(saved[name], info.relative_paths.get(name),
                                                 value):
                wanted = with_path_setting(wanted, name, saved[name])
        return settings_difference(info.config, wanted)

    def same_place(self, recorded: str, recorded_from_here: str | None, wanted: str) -> bool:
        """Whether `wanted` names the file or run that this directory's record names as
        `recorded` (and as `recorded_from_here` seen from this directory, where recorded so):
        the same place, or the same place seen from this directory now."""
        return Path(recorded).resolve() == Path(wanted).resolve() or \
            recorded_from_here == relative_to(wanted, self.path)

    def claim(self, overwrite: bool, check_recorded: Callable[[], None]) -> None:
        """Makes this the run directory of what is about to be written (a training, an
        extraction, an ensemble), before anything is written in it.

        A directory whose `run.json` records another run is refused by `check_recorded`
        (which raises `RunConflictError`, naming what differs) unless `overwrite`, which first
        removes every file of the old run. `metrics.json` is removed, so that until the new set
        of files is complete no reader takes the directory for a finished run; `train` records
        the settings (`write_info`) before fitting starts, so that a later run of other settings
        is refused even if this one is interrupted. Call it holding the directory's lock
        (`output.locked()`).

        Args:
            overwrite: Replace a run of other settings.
            check_recorded: Raises `RunConflictError` when the recorded `run.json` is not of
                the run about to be written.

        Raises:
            RunConflictError: another run is recorded and `overwrite` is False.
            OutputConflictError: a file of the run's names here was not written by the
                package, or is read by the command.
        """
        self.check_writable()
        if overwrite:
            self.remove_artifacts()
        elif self.run_file.exists():
            check_recorded()
        self.output.remove(self.metrics_file.name)

    def check_same_settings(self, config: TrainConfig) -> None:
        """Refuses a run directory whose `run.json` records other settings than `config`.

        Raises:
            RunConflictError: naming each differing setting, there and now.
        """
        details = self.recorded_difference(config.to_dict())
        if details:
            raise RunConflictError(
                f"{self.path} holds a run with other settings ({details}). Use another output "
                "directory, the same settings to continue it, or overwrite it.")

    def write_info(self, info: RunInfo) -> RunInfo:
        """Writes `run.json`, what using the model again needs, with its path settings seen
        from this directory too (`RunInfo.seen_from`), and returns the record as written."""
        written = info.seen_from(self.path)
        self.write_json(self.run_file, written.to_dict())
        return written

    def read_info(self) -> RunInfo:
        """Reads `run.json`, refusing one that is not valid JSON or not a run record."""
        path = self.run_file
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a readable run record ({error}); rerun the "
                             "training that wrote it.") from error
        return RunInfo.from_dict(record, path)

    def write_metrics(self, metrics: dict) -> None:
        """Writes `metrics.json`, whole: write it last, it marks a finished run."""
        self.write_json(self.metrics_file, metrics)

    def read_metrics(self) -> dict:
        """Reads `metrics.json`, with an error naming it when it is missing or damaged."""
        try:
            return json.loads(self.metrics_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{self.metrics_file} is not a readable metrics file ({error}); "
                             "rerun the training that wrote it.") from error

    def write_json(self, path: Path, value) -> None:
        """Writes a JSON file of this directory whole (`path`: one of its files)."""
        self.output.write_text(self._name(path), json.dumps(value, indent=2))

    def save_model(self, model: keras.Model, path: Path) -> None:
        """Saves a `.keras` file of this directory whole (`path`: one of its files)."""
        self.output.write(self._name(path), lambda staged: model.save(staged), ".keras")

    def _name(self, path: Path) -> str:
        if path.parent != self.path:
            raise ValueError(f"{path} is not a file of the run directory {self.path}.")
        return path.name

    def load(self, model_file: Path | None = None) -> tuple[keras.Model, RunInfo]:
        """The trained model (`model.keras`, or `model_file`) and its `run.json`.

        Raises:
            FileNotFoundError: no model or no `run.json`.
            ValueError: a damaged model or `run.json`, or one that does not describe the
                other.
        """
        model_file = model_file or self.model_file
        if not model_file.exists() and self.backup_dir.is_dir():
            raise FileNotFoundError(f"{self.path} holds an unfinished run (no {MODEL_FILE} "
                                    "yet, a backup of its last epoch): rerun the same training "
                                    "command to finish it.")
        if not model_file.exists():
            raise FileNotFoundError(f"No model at {model_file}; pass a run directory or a "
                                    ".keras file.")
        if not self.run_file.exists():
            raise FileNotFoundError(
                f"No {RUN_FILE} beside {model_file}: it records the preprocessing the model "
                "expects. Evaluate models trained with `gcnprune train` or "
                "keras_gcnprune.training.train.")
        info = self.read_info()
        model = load_model_file(model_file)
        check_run_matches_model(model, info, self.run_file)
        return model, info


def settings_difference(saved: dict, wanted: dict) -> str:
    """Each setting that differs, as `key: saved there, wanted now` joined by `; ` (empty when
    none); both are compared in their JSON form (tuples as lists), as saved settings are read."""
    saved, wanted = json.loads(json.dumps(saved)), json.loads(json.dumps(wanted))
    differing = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    return "; ".join(f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in differing)


def load_model_file(path: Path) -> keras.Model:
    """`keras.models.load_model`, with an error naming the file when it is missing or damaged."""
    if not path.is_file():
        raise FileNotFoundError(f"No model at {path}; pass a run directory or a .keras file.")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is damaged: a .keras file is a zip archive and this one is not "
                         f"({path.stat().st_size:,} bytes; truncated?); retrain it or restore "
                         "the file.")
    if path.suffix == ".keras":
        _check_archive_sizes(path)
    try:
        return keras.models.load_model(path)
    except Exception as error:  # a damaged file fails in many ways inside Keras
        raise ValueError(f"{path} is not a readable Keras model ({type(error).__name__}: "
                         f"{str(error)[:300]}); retrain it or restore the file.") from error


# What the JSON members of a `.keras` archive may expand to: a model's configuration is a few
# hundred kilobytes; a small file that expands to gigabytes is an attack, not a model.
MAX_CONFIG_BYTES = 64 * 2**20


def _check_archive_sizes(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.filename.endswith(".json") and member.file_size > MAX_CONFIG_BYTES:
                raise ValueError(
                    f"{path}: its {member.filename} expands to {member.file_size:,} bytes, "
                    f"more than the {MAX_CONFIG_BYTES:,} a model's configuration takes; the "
                    "file is not loaded.")


def check_run_matches_model(model: keras.Model, info: RunInfo, run_file: Path) -> None:
    """Refuses a `run.json` that does not describe the model beside it (frames, joints,
    channels, classes), as a run directory rewritten by other settings could leave."""
    _, frames, joints, channels = model.input_shape
    mismatches = [
        f"{what}: {recorded} in {RUN_FILE}, {actual} in the model"
        for what, recorded, actual in (
            ("frames", info.preprocessing.frames, frames),
            ("joints", len(info.layout.joints), joints),
            ("classes", len(info.class_names), model.output_shape[-1]),
        ) if recorded != actual]
    if channels % len(info.streams):
        mismatches.append(f"streams: {len(info.streams)} in {RUN_FILE}, which do "
                          f"not divide the model's {channels} input channels")
    if mismatches:
        raise ValueError(f"{run_file} does not describe the model beside it ("
                         + "; ".join(mismatches) + "); retrain the run, or overwrite it.")


def load_run(model_path: str | Path) -> tuple[keras.Model, RunInfo]:
    """Loads a trained model and its `run.json` (from the run directory or the model's folder).

    Raises:
        FileNotFoundError: no model or no `run.json`.
        ValueError: a damaged model or `run.json`, or one that does not describe the other.
    """
    run, model_file = RunDirectory.holding(model_path)
    return run.load(model_file)
