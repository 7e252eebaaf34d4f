"""Trained runs of one dataset and protocol combined into one ensemble run directory."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from keras_gcnprune.data import SkeletonDataset
from keras_gcnprune.models.ensemble import ensemble, union_of_streams
from keras_gcnprune.training.directory import (
    RunConflictError,
    RunDirectory,
    load_run,
)
from keras_gcnprune.training.run import (
    environment,
    evaluate_arrays,
    measured_selection,
    run_data,
    selection_model,
    size_metrics,
    validation_metrics,
)
from keras_gcnprune.training.run_info import RunInfo, relative_to

# What members must share: the data they were trained and are evaluated on.
SHARED_SETTINGS = ("dataset", "protocol", "seed", "validation", "refit")
SHARED_PREPROCESSING = ("frames", "centre", "scale")


def _check_same_data(infos: list[RunInfo], paths: list[str]) -> None:
    first = infos[0]
    for info, path in zip(infos[1:], paths[1:]):
        differing = [f"{key}: {first.config[key]!r} in {paths[0]}, {info.config[key]!r} in "
                     f"{path}" for key in SHARED_SETTINGS if info.config[key] != first.config[key]]
        differing += [f"preprocessing {key}: {getattr(first.preprocessing, key)!r} in "
                      f"{paths[0]}, {getattr(info.preprocessing, key)!r} in {path}"
                      for key in SHARED_PREPROCESSING
                      if getattr(info.preprocessing, key) != getattr(first.preprocessing, key)]
        if info.class_names != first.class_names:
            differing.append(f"class names differ between {paths[0]} and {path}")
        if differing:
            raise ValueError("Ensemble members must be trained on the same data and split: "
                             + "; ".join(differing) + ".")


def _check_same_members(run: RunDirectory, members: list[str]) -> None:
    """Refuses a directory holding another run (a training, or an ensemble of other members);
    the same ensemble is simply written again."""
    recorded = run.read_info().members
    if len(recorded) != len(members) or not all(
            run.same_place(member["run"], member.get("relative"), path)
            for member, path in zip(recorded, members)):
        recorded = [member["run"] for member in recorded]
        raise RunConflictError(
            f"{run.path} holds another run (members {recorded or 'none: a training'}). Use "
            "another output directory, or overwrite it.")


def ensemble_runs(run_paths: Sequence[str | Path], out_dir: str | Path,
                  overwrite: bool = False, dataset: SkeletonDataset | None = None) -> dict:
    """Combines trained runs into one model that averages their logits (see
    `keras_gcnprune.models.ensemble`), evaluates it on the runs' validation and test parts,
    and writes it as a run directory (`model.keras`, `run.json`, `metrics.json`) that
    `gcnprune evaluate` and `gcnprune export` take like any other.

    Members are typically the same model trained on different streams (joint, bone, motion);
    they must share the dataset, protocol, seed, validation fraction, frames, centring and
    scaling. The ensemble's input holds every stream some member takes.

    Args:
        run_paths: Two or more trained run directories (or their `model.keras` files).
        out_dir: The ensemble's run directory (created).
        overwrite: Replace a directory that holds another run.
        dataset: The members' dataset already loaded (default: loaded from their spec).

    Returns:
        The metrics written to `metrics.json`: test and validation accuracy, the ensemble's
        weights and MACs (the sum of its members'), `epochs` and `train_time_s` summed over
        the members (the training it took), and each member's own accuracy.

    Raises:
        ValueError: fewer than two runs, or runs trained on different data or shapes.
        RunConflictError: `out_dir` holds another run and `overwrite` is False.
        OutputConflictError: `out_dir` holds files of the run's names that the package did
            not write, or is one of the members.

    Example:
        >>> metrics = ensemble_runs(["runs/joint", "runs/bone"], "runs/ensemble")  # doctest: +SKIP
    """
    started = time.perf_counter()
    paths = [str(p) for p in run_paths]
    if len(paths) < 2:
        raise ValueError(f"An ensemble needs at least 2 trained runs, got {paths}.")
    loaded = [load_run(path) for path in paths]
    members, infos = [m for m, _ in loaded], [i for _, i in loaded]
    _check_same_data(infos, paths)
    member_metrics = [RunDirectory.holding(path)[0].read_metrics() for path in paths]
    run = RunDirectory(out_dir, reads=[read for path in paths
                                       for read in RunDirectory.files_read(path)])
    with run.output.locked():
        return _write_ensemble(run, paths, members, infos, member_metrics, overwrite, dataset,
                               started)


def _write_ensemble(run: RunDirectory, paths: list[str], members: list, infos: list[RunInfo],
                    member_metrics: list[dict], overwrite: bool,
                    dataset: SkeletonDataset | None, started: float) -> dict:
    run.claim(overwrite, lambda: _check_same_members(run, paths))
    member_streams = [info.streams for info in infos]
    model = ensemble(members, member_streams)
    preprocessing = dataclasses.replace(infos[0].preprocessing,
                                        streams=union_of_streams(member_streams))
    info = dataclasses.replace(
        infos[0].with_config(model="ensemble", model_options={},
                             preprocessing=preprocessing.to_dict(), pruning=None),
        members=tuple({"run": path, "relative": relative_to(path, run.path),
                       "model": i.config["model"], "streams": list(streams)}
                      for path, i, streams in zip(paths, infos, member_streams)))
    _, data = run_data(info, on_error=info.config["on_error"], loaded=dataset)
    x_test, y_test = data.test
    run.save_model(model, run.model_file)
    run.write_info(info)
    metrics = {
        "dataset": info.config["dataset"],
        "protocol": info.config["protocol"],
        "model": "ensemble",
        "test_accuracy": evaluate_arrays(model, x_test, y_test),
        **validation_metrics(model, data),
        **_selection_ensemble(paths, member_streams, info, dataset),
        "train_samples": len(data.train[0]),
        "test_samples": len(x_test),
        **size_metrics(model),
        "epochs": sum(m["epochs"] for m in member_metrics),
        "train_time_s": round(sum(m["train_time_s"] for m in member_metrics), 2),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "members": [{"run": path, "streams": list(streams),
                     "test_accuracy": m["test_accuracy"],
                     "validation_accuracy": m.get("validation_accuracy")}
                    for path, streams, m in zip(paths, member_streams, member_metrics)],
        **environment(),
    }
    run.write_metrics(metrics)
    return metrics


def _selection_ensemble(paths: list[str], member_streams: list[tuple[str, ...]], info: RunInfo,
                        dataset: SkeletonDataset | None) -> dict:
    """For refit members, what the metrics keep of the ensemble of their selection runs'
    models (`selection_metrics`: its validation accuracy); nothing for members not refit."""
    selections = [selection_model(path) for path in paths]
    if None in selections:  # members agree on refit (`SHARED_SETTINGS`): none was refit
        return {}
    model = ensemble([load_run(path)[0] for path in selections], member_streams)
    _, data = run_data(info.with_config(refit=False), on_error=info.config["on_error"],
                       loaded=dataset)
    return measured_selection(model, data)
