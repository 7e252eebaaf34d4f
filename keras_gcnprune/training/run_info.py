"""`RunInfo`: what a run directory's `run.json` records, typed, read and written in one place."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keras_gcnprune.data.dataset import check_class_names
from keras_gcnprune.data.preprocessing import Preprocessing
from keras_gcnprune.graphs.layouts import SkeletonLayout

if TYPE_CHECKING:
    from keras_gcnprune.data import SkeletonDataset
    from keras_gcnprune.training.run import TrainConfig

RUN_FILE = "run.json"
# Settings naming a file or run the training reads, as key paths into `TrainConfig.to_dict()`.
PATH_SETTINGS = {"initial_model": ("initial_model",), "teacher": ("distillation", "teacher")}


def path_settings(config: dict) -> dict[str, str]:
    """The path settings (`PATH_SETTINGS`) that `config` (a `TrainConfig.to_dict()`) sets."""
    found = {}
    for name, keys in PATH_SETTINGS.items():
        value = config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value:
            found[name] = value
    return found


def with_path_setting(config: dict, name: str, value: str) -> dict:
    """A copy of `config` with the path setting `name` replaced."""
    *parents, last = PATH_SETTINGS[name]
    copy = json.loads(json.dumps(config))
    inner = copy
    for key in parents:
        inner = inner[key]
    inner[last] = value
    return copy


def relative_to(path: str | Path, directory: str | Path) -> str:
    """Where `path` lies seen from `directory`, both resolved (relative paths from the working
    directory)."""
    return os.path.relpath(Path(path).resolve(), Path(directory).resolve())


def refits(refit: bool, validation: float) -> bool:
    """Whether a run with these training settings trains its final model again on the whole
    training split: only a run that held a validation part out has anything to add."""
    return bool(refit and validation > 0)


@dataclass(frozen=True)
class RunInfo:
    """What using a trained model again needs: the settings it was trained with, the skeleton
    layout and the class names (a run directory's `run.json`).

    Args:
        config: The training's settings as recorded (`TrainConfig.to_dict()`); an extraction
            records the rate it extracted, an ensemble the union of its members' streams.
        layout: The skeleton layout of the data.
        class_names: The class names, in the order of the model's outputs.
        dataset_name: The name of the dataset trained on.
        members: An ensemble's member runs (`run`; `relative`, the run seen from the
            ensemble's directory; `model`, `streams`); empty otherwise.
        extracted_from: The multi-rate run an extraction was taken from; None otherwise.
        extraction: The extraction's options (`consistent`, `calibration_batches`,
            `include_adjacency`); None otherwise.
        relative_paths: The path settings (`PATH_SETTINGS`) seen from the run directory, so
            that a folder holding a run and the runs it read can move and still be resumed;
            `RunDirectory.write_info` sets them (`seen_from`).

    Example:
        >>> from keras_gcnprune.data import load_dataset
        >>> from keras_gcnprune.training import TrainConfig
        >>> info = RunInfo.of_training(TrainConfig(), load_dataset("synthetic"))
        >>> info.preprocessing.frames, info.class_names[:2]  # doctest: +SKIP
        (32, ('class_0', 'class_1'))
    """

    config: dict
    layout: SkeletonLayout
    class_names: tuple[str, ...]
    dataset_name: str | None = None
    members: tuple[dict, ...] = ()
    extracted_from: str | None = None
    extraction: dict | None = None
    relative_paths: dict = field(default_factory=dict)

    @classmethod
    def of_training(cls, config: TrainConfig, dataset: SkeletonDataset) -> RunInfo:
        """The record of a training of `config` on `dataset`, its settings in their JSON form
        (tuples as lists), as they are read back."""
        settings = json.loads(json.dumps(config.to_dict()))
        return cls(settings, dataset.skeleton, tuple(dataset.class_names), dataset.name)

    def seen_from(self, directory: str | Path) -> RunInfo:
        """This record as the run directory `directory` keeps it: its path settings also seen
        from there (`relative_paths`)."""
        relative = {name: relative_to(value, directory)
                    for name, value in path_settings(self.config).items()}
        return dataclasses.replace(self, relative_paths=relative)

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing the model's input expects."""
        return Preprocessing.from_dict(self.config["preprocessing"])

    @property
    def streams(self) -> tuple[str, ...]:
        """The input streams, in the order of the model's input channels."""
        return tuple(self.config["preprocessing"]["streams"])

    @property
    def pruning(self) -> dict | None:
        """The pruning settings (`PruningConfig`'s fields), or None for a dense run."""
        return self.config["pruning"]

    @property
    def refits(self) -> bool:
        """Whether the run's final model trained again on the whole training split (its
        validation part included)."""
        return refits(self.config["refit"], self.config["validation"])

    def portable_config(self) -> dict:
        """The settings with each path setting seen from the run directory where it was
        recorded so: the same wherever the folder holding the run and what it read moves."""
        config = self.config
        for name, value in self.relative_paths.items():
            config = with_path_setting(config, name, value)
        return config

    def with_config(self, **settings) -> RunInfo:
        """This record with some of its training settings replaced."""
        return dataclasses.replace(self, config={**self.config, **settings})

    def to_dict(self) -> dict:
        """The JSON form of `run.json`; keys of an ensemble or extraction only where set."""
        record = {"config": self.config, "layout": self.layout.to_dict(),
                  "class_names": list(self.class_names), "dataset_name": self.dataset_name}
        if self.members:
            record["members"] = list(self.members)
        if self.extracted_from is not None:
            record["extracted_from"] = self.extracted_from
            record["extraction"] = self.extraction
        if self.relative_paths:
            record["relative_paths"] = dict(self.relative_paths)
        return record

    @classmethod
    def from_dict(cls, record: object, path: str | Path = RUN_FILE) -> RunInfo:
        """Reads the JSON form, refusing one that lacks a section or a training setting.

        Args:
            record: The parsed `run.json`.
            path: Where it was read from, named in errors.

        Raises:
            ValueError: naming what is missing or malformed.
        """
        required = {"config", "layout", "class_names"}
        if not isinstance(record, dict) or not required <= set(record) \
                or not isinstance(record["config"], dict) \
                or not isinstance(record["class_names"], list):
            raise ValueError(f"{path} is not a run record: it needs {sorted(required)}, with "
                             "config a dict and class_names a list, as `gcnprune train` "
                             "writes them.")
        missing = sorted(set(_setting_names()) - set(record["config"]))
        if missing:
            raise ValueError(f"{path} records no {', '.join(missing)}: it was written by an "
                             "older keras-gcnprune, whose runs are not read. Retrain the run "
                             "(or overwrite it).")
        try:
            check_class_names(record["class_names"])
        except ValueError as error:
            raise ValueError(f"{path}: {error} Restore the class names the run was trained "
                             "with.") from error
        return cls(config=record["config"], layout=SkeletonLayout.from_dict(record["layout"]),
                   class_names=tuple(record["class_names"]),
                   dataset_name=record.get("dataset_name"),
                   members=tuple(record.get("members", ())),
                   extracted_from=record.get("extracted_from"),
                   extraction=record.get("extraction"),
                   relative_paths=dict(record.get("relative_paths", {})))


def _setting_names() -> list[str]:
    # `training.run` reads run directories through this module: imported when first needed
    from keras_gcnprune.training.run import TrainConfig

    return [field.name for field in dataclasses.fields(TrainConfig)]
