"""A run directory on disk: claiming it for one configuration, writing its files atomically,
and reading them back with errors that name the file.

A run directory holds `model.keras`, `run.json` (what is needed to use the model again),
`history.json` and `metrics.json`, written last so that its presence marks a complete set.
"""

from __future__ import annotations

import copy
import json
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import keras

if TYPE_CHECKING:
    from keras_gcnprune.data import SkeletonDataset
    from keras_gcnprune.training.run import TrainConfig

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"


class RunConflictError(ValueError):
    """A run directory holds a run of other settings."""


# Everything `train` writes in a run directory; `overwrite` removes exactly these.
RUN_ARTIFACTS = (METRICS_FILE, MODEL_FILE, RUN_FILE, "history.json", "stripped.keras",
                 "connectivity.json", "backup")


def claim_run_directory(out_dir: Path, config: TrainConfig, overwrite: bool = False) -> None:
    """Makes `out_dir` this configuration's run directory before training writes in it.

    A directory whose `run.json` records other settings is refused (`RunConflictError`, naming
    them) unless `overwrite`, which first removes every file of the old run. `metrics.json` is
    removed, so that until the new set of files is complete no reader takes the directory for
    a finished run; `train` records the settings (`write_run_info`) before fitting starts, so
    that a later run of other settings is refused even if this one is interrupted.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in RUN_ARTIFACTS:
            path = out_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    elif (out_dir / RUN_FILE).exists():
        check_same_settings(out_dir, config)
    (out_dir / METRICS_FILE).unlink(missing_ok=True)


# Settings added after runs were first recorded, each with the value that trains as a run did
# before the setting existed: a `run.json` without one is compared as if it held that value.
SETTINGS_ADDED = {("warmup_epochs",): 0, ("label_smoothing",): 0.0,
                  ("augmentation", "shear"): 0.0, ("augmentation", "crop"): 1.0,
                  ("pruning", "supervision_strength"): 0.1}


def with_added_settings(saved: dict) -> dict:
    """`saved` (a recorded configuration) with every `SETTINGS_ADDED` entry it lacks."""
    saved = copy.deepcopy(saved)
    for path, value in SETTINGS_ADDED.items():
        parent = saved
        for key in path[:-1]:
            parent = parent.get(key)
            if not isinstance(parent, dict):  # e.g. no augmentation at all
                break
        else:
            parent.setdefault(path[-1], value)
    return saved


def check_same_settings(run_dir: Path, config: TrainConfig) -> None:
    """Refuses a run directory whose `run.json` records other settings than `config` (a
    setting added since it was written counts as its `SETTINGS_ADDED` value).

    Raises:
        RunConflictError: naming each differing setting, there and now.
    """
    saved = with_added_settings(read_run_info(run_dir / RUN_FILE)["config"])
    details = settings_difference(saved, config.to_dict())
    if details:
        raise RunConflictError(
            f"{run_dir} holds a run with other settings ({details}). Use another output "
            "directory, the same settings to continue it, or overwrite it.")


def settings_difference(saved: dict, wanted: dict) -> str:
    """Each setting that differs, as `key: saved there, wanted now` joined by `; ` (empty when
    none); `wanted` is compared in its JSON form, as `saved` was read."""
    wanted = json.loads(json.dumps(wanted))
    differing = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    return "; ".join(f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in differing)


def write_text_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text)
    temporary.replace(path)


def save_model_atomically(model: keras.Model, path: Path) -> None:
    temporary = path.with_name("partial." + path.name)  # Keras needs the .keras suffix
    model.save(temporary)
    temporary.replace(path)


def write_run_info(out_dir: Path, config: TrainConfig, dataset: SkeletonDataset) -> None:
    info = {
        "config": config.to_dict(),
        "layout": dataset.skeleton.to_dict(),
        "class_names": list(dataset.class_names),
        "dataset_name": dataset.name,
    }
    write_text_atomically(out_dir / RUN_FILE, json.dumps(info, indent=2))


def read_run_info(path: Path) -> dict:
    """Reads a `run.json`, refusing one that is not valid JSON or lacks its sections."""
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable run record ({error}); rerun the training "
                         "that wrote it.") from error
    required = {"config", "layout", "class_names"}
    if not isinstance(info, dict) or not required <= set(info) or \
            not isinstance(info["config"], dict) or "preprocessing" not in info["config"]:
        raise ValueError(f"{path} is not a run record: it needs {sorted(required)}, with the "
                         "preprocessing in config, as `gcnprune train` writes them.")
    return info


def load_model_file(path: Path) -> keras.Model:
    """`keras.models.load_model`, with an error naming the file when it is missing or damaged."""
    if not path.is_file():
        raise FileNotFoundError(f"No model at {path}; pass a run directory or a .keras file.")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is damaged: a .keras file is a zip archive and this one is not "
                         f"({path.stat().st_size:,} bytes; truncated?); retrain it or restore "
                         "the file.")
    try:
        return keras.models.load_model(path)
    except Exception as error:  # a damaged file fails in many ways inside Keras
        raise ValueError(f"{path} is not a readable Keras model ({type(error).__name__}: "
                         f"{str(error)[:300]}); retrain it or restore the file.") from error


def check_run_matches_model(model: keras.Model, info: dict, run_file: Path) -> None:
    """Refuses a `run.json` that does not describe the model beside it (frames, joints,
    channels, classes), as a run directory rewritten by other settings could leave."""
    preprocessing = info["config"]["preprocessing"]
    _, frames, joints, channels = model.input_shape
    mismatches = [
        f"{what}: {recorded} in {RUN_FILE}, {actual} in the model"
        for what, recorded, actual in (
            ("frames", preprocessing["frames"], frames),
            ("joints", len(info["layout"]["joints"]), joints),
            ("classes", len(info["class_names"]), model.output_shape[-1]),
        ) if recorded != actual]
    if channels % len(preprocessing["streams"]):
        mismatches.append(f"streams: {len(preprocessing['streams'])} in {RUN_FILE}, which do "
                          f"not divide the model's {channels} input channels")
    if mismatches:
        raise ValueError(f"{run_file} does not describe the model beside it ("
                         + "; ".join(mismatches) + "); retrain the run, or overwrite it.")


def load_run(model_path: str | Path) -> tuple[keras.Model, dict]:
    """Loads a trained model and its `run.json` (from the run directory or the model's folder).

    Raises:
        FileNotFoundError: no model or no `run.json`.
        ValueError: a damaged model or `run.json`, or one that does not describe the other.
    """
    path = Path(model_path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    run_file = model_file.parent / RUN_FILE
    if not model_file.exists() and (model_file.parent / "backup").is_dir():
        raise FileNotFoundError(f"{model_file.parent} holds an unfinished run (no {MODEL_FILE} "
                                "yet, a backup of its last epoch): rerun the same training "
                                "command to finish it.")
    if not model_file.exists():
        raise FileNotFoundError(f"No model at {model_file}; pass a run directory or a .keras file.")
    if not run_file.exists():
        raise FileNotFoundError(
            f"No {RUN_FILE} beside {model_file}: it records the preprocessing the model expects. "
            "Evaluate models trained with `gcnprune train` or keras_gcnprune.training.train."
        )
    info = read_run_info(run_file)
    model = load_model_file(model_file)
    check_run_matches_model(model, info, run_file)
    return model, info
