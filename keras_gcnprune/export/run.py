"""Exporting a trained run (model, labels, preprocessing) in one call."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from keras_gcnprune.data import Preprocessing, dataset_location
from keras_gcnprune.export.convert import (
    CALIBRATED,
    SAVED_MODEL_ENTRIES,
    ExportError,
    ExportReport,
    default_check_inputs,
    export_saved_model,
    export_tflite,
    tflite_output,
)
from keras_gcnprune.export.metadata import export_metadata
from keras_gcnprune.export.raw_input import with_probabilities, with_raw_input
from keras_gcnprune.outputs import OutputFolder
from keras_gcnprune.pruning.compaction import compact
from keras_gcnprune.reports import model_costs
from keras_gcnprune.training import (
    RunDirectory,
    RunInfo,
    check_data_fits,
    load_model_file,
    run_data,
)

REPRESENTATIVE_SAMPLES = 256
COMPACTION_TOLERANCE = 1e-5


def compacted_with_check(model: keras.Model, check_inputs: np.ndarray) -> tuple[keras.Model, dict]:
    """`compact(model)`, refused unless its logits equal the model's to 1e-5 on the inputs.

    Returns:
        The compacted model and `{"pruned": costs, "compacted": costs, "max_abs_diff"}`, with
        costs as `model_costs` gives them.
    """
    compacted = compact(model)
    difference = float(np.max(np.abs(
        keras.ops.convert_to_numpy(compacted(check_inputs, training=False))
        - keras.ops.convert_to_numpy(model(check_inputs, training=False)))))
    if not difference <= COMPACTION_TOLERANCE:  # NaN included
        raise ExportError(f"Compaction changed the logits by {difference:.3g} > "
                          f"{COMPACTION_TOLERANCE} on {len(check_inputs)} inputs. Nothing was "
                          "written; export without compaction.")
    return compacted, {"pruned": model_costs(model), "compacted": model_costs(compacted),
                       "max_abs_diff": difference}


def _load(model_path: Path) -> tuple[keras.Model, RunInfo | None]:
    run, model_file = RunDirectory.holding(model_path)
    if run.run_file.exists():
        return run.load(model_file)
    return load_model_file(model_file), None


CALIBRATIONS = ("random", "stratified")


def calibration_indices(labels: np.ndarray, samples: int, sampling: str) -> np.ndarray:
    """Seeded training indices for int8 and int16x8 calibration: at random, or as many of
    each class."""
    rng = np.random.default_rng(0)
    if sampling == "random":
        return rng.permutation(len(labels))[:samples]
    classes = np.unique(labels)
    per_class = max(1, samples // len(classes))
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class]
                           for c in classes])


def _data(model, info, dataset, protocol, on_error, raw_input: bool, calibration: tuple):
    """(calibration samples, labelled test inputs and their classes, check inputs), each
    None without a dataset; with `raw_input`, windows of raw coordinates resampled to the
    model's frames."""
    if dataset is None:
        return None, None, None, None
    if info is None:
        raise ValueError(f"dataset={dataset!r} (--dataset) needs the run's run.json beside "
                         "the model: it records the preprocessing the model expects.")
    if raw_input:
        raw = Preprocessing(frames=info.preprocessing.frames, centre=False, scale=False)
        info = info.with_config(preprocessing=raw.to_dict())
    config, data = run_data(info, dataset, protocol, on_error)
    check_data_fits(model, info, data.dataset, config.dataset)
    (x_train, y_train), (x_test, y_test) = data.train, data.test
    chosen = calibration_indices(np.asarray(y_train), *calibration)
    return x_train[chosen], x_test, np.asarray(y_test), x_test[:32]


def _for_apps(model: keras.Model, info: RunInfo | None, raw_input: bool, axes: str | None,
              probabilities: bool) -> keras.Model:
    if not raw_input:
        return with_probabilities(model) if probabilities else model
    if info is None:
        raise ValueError("raw_input=True (--raw-input) needs the run's run.json beside "
                         "the model: it records the preprocessing and the layout that the "
                         "graph must reproduce.")
    return with_raw_input(model, info.preprocessing, info.layout, axes, probabilities)


def _metadata(pruned: keras.Model, info: RunInfo | None, quantization: str, batch_size: int,
              costs: dict | None) -> dict:
    """The export's metadata, its pruning rate taken on the model before compaction (against
    the unpruned model), with the compacted model's weights and MACs."""
    metadata = export_metadata(pruned, info, quantization, batch_size)
    if costs is not None:
        metadata["compaction"] = {"parameters": costs["compacted"]["parameters"],
                                  "macs": costs["compacted"]["macs"]}
    return metadata


def _check_outputs(tflite, saved_model, reads: list[Path]) -> None:
    """Refuses, before any work, an output the export may not write (`keras_gcnprune.outputs`);
    the export functions check again as they write."""
    if saved_model is not None:
        OutputFolder(saved_model, reads).check_writable(SAVED_MODEL_ENTRIES)
    if tflite is not None:
        out, *names = tflite_output(tflite, reads)
        out.check_writable(names)


def export_run(
    model_path: str | Path,
    *,
    tflite: str | Path | None = None,
    saved_model: str | Path | None = None,
    quantization: str = "none",
    batch_size: int = 1,
    sparse: bool = False,
    compaction: bool = False,
    dataset: str | None = None,
    protocol: str | None = None,
    on_error: str = "raise",
    gpu_engine: str = "auto",
    raw_input: bool = False,
    axes: str | None = None,
    probabilities: bool = False,
    calibration_samples: int = REPRESENTATIVE_SAMPLES,
    calibration: str = "random",
    write_anyway: bool = False,
) -> list[ExportReport]:
    """Exports a run directory or `.keras` file, verified, with its metadata.

    Args:
        model_path: Run directory (model.keras + run.json) or a `.keras` file.
        tflite: The `.tflite` file to write, if any.
        saved_model: The SavedModel folder to write, if any.
        quantization: TFLite quantization: `"none"`, `"fp16"`, `"dynamic"`, `"int8"` or
            `"int16x8"` (see `export_tflite`).
        batch_size: Static batch of the exported signature.
        sparse: Sparse weight encoding in the TFLite file.
        compaction: Export `compact(model)`: dead channels removed, checked against the model
            to 1e-5; the reports' `costs` compare parameters and MACs before and after.
        dataset: Dataset spec: its training split calibrates int8, its test split checks top-1
            agreement with the Keras model (needs the run's `run.json`).
        protocol: The split (default: the run's).
        on_error: `"raise"` or `"skip"` for bad dataset files.
        gpu_engine: TFLite: `"auto"`, `"require"` or `"off"` (see `export_tflite`).
        raw_input: Export a model that takes raw coordinates and preprocesses them in its
            graph (`with_raw_input`); needs the run's `run.json`.
        axes: With `raw_input`: for each training axis, the sensor's axis and sign (None:
            every axis as it is).
        probabilities: End the exported model in a softmax; its output is `probabilities`.
        calibration_samples: int8 and int16x8: training samples that calibrate the
            activation ranges.
        calibration: int8 and int16x8: `"random"` samples, or `"stratified"` (as many of
            each class).
        write_anyway: TFLite: write a file whose check failed, with the numbers in its
            metadata (see `export_tflite`).

    Returns:
        One `ExportReport` per format written.

    Example:
        >>> export_run("runs/sbu_fold1_tcp99", tflite="sbu.tflite", dataset="sbu")  # doctest: +SKIP
    """
    if tflite is None and saved_model is None:
        raise ValueError("Nothing to export: give a TFLite file, a SavedModel folder or both.")
    reads = [*RunDirectory.files_read(model_path),
             dataset_location(dataset) if dataset is not None else None]
    _check_outputs(tflite, saved_model, reads)
    model, info = _load(Path(model_path))
    if quantization in CALIBRATED and dataset is None:
        raise ValueError(f"{quantization} quantization is calibrated on real samples: give "
                         "dataset= (--dataset), whose training split calibrates it.")
    if calibration not in CALIBRATIONS or calibration_samples < 1:
        raise ValueError(f"calibration must be one of {CALIBRATIONS} with at least one sample, "
                         f"got {calibration!r} and {calibration_samples}.")
    representative, labelled, targets, check_inputs = _data(
        model, info, dataset, protocol, on_error, raw_input, (calibration_samples, calibration))
    exported, costs = model, None
    if compaction:
        inputs = default_check_inputs(model) if check_inputs is None or raw_input \
            else check_inputs
        exported, costs = compacted_with_check(model, inputs)
    exported = _for_apps(exported, info, raw_input, axes, probabilities)
    # The metadata's pruning rate is the uncompacted model's, against the unpruned one.
    pruned = _for_apps(model, info, raw_input, axes, probabilities) if compaction else exported
    reports = []
    if saved_model is not None:
        reports.append(export_saved_model(
            exported, saved_model, batch_size=batch_size, check_inputs=check_inputs,
            metadata=_metadata(pruned, info, "none", batch_size, costs), reads=reads))
    if tflite is not None:
        reports.append(export_tflite(
            exported, tflite, quantization=quantization, batch_size=batch_size, sparse=sparse,
            representative=representative, check_inputs=check_inputs, labelled_inputs=labelled,
            metadata=_metadata(pruned, info, quantization, batch_size, costs),
            gpu_engine=gpu_engine, labelled_targets=targets, write_anyway=write_anyway,
            reads=reads))
    for report in reports:
        report.costs = costs
    return reports
