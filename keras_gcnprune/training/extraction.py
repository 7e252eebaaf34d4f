"""A family of pruned run directories, one per rate, from one multi-rate training run."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from keras_gcnprune.outputs import OutputFolder
from keras_gcnprune.pruning import MULTI_RATE_METHODS, closed_form_rate, extract
from keras_gcnprune.training.directory import (
    RunConflictError,
    RunDirectory,
    load_run,
    settings_difference,
)
from keras_gcnprune.training.run import (
    check_data_fits,
    extracted_metrics,
    measured_selection,
    run_data,
    selection_model,
)
from keras_gcnprune.training.run_info import RunInfo


def extract_run(model_path: str | Path, rates: Sequence[float], out_dir: str | Path,
                consistent: bool | None = None, calibration_batches: int | None = None,
                dataset: str | None = None, protocol: str | None = None,
                on_error: str = "raise", overwrite: bool = False) -> list[dict]:
    """Extracts a pruned model at every rate from an srmp or mrmp run, without retraining.

    Each rate gets a run directory `out_dir/rate_<rate>` (`model.keras`, `run.json`,
    `metrics.json`) that `gcnprune evaluate`, `report` and `export` take like any other run.
    Batch normalization is recalibrated on the run's training data (see
    `keras_gcnprune.pruning.extract`).

    Args:
        model_path: Run directory (or its `model.keras`) of an srmp or mrmp run.
        rates: Pruning rates in (0, 1), trained or not.
        out_dir: Folder of the extracted run directories.
        consistent: Keep the best-ranked subnetwork whose every weight lies on an
            input-to-output path (see `keras_gcnprune.pruning.extraction_masks`); None: as
            the run was trained to (`PruningConfig.consistent_extraction`).
        calibration_batches: Batches of 32 training sequences for the recalibration (default:
            the run's setting).
        dataset: Dataset spec for calibration and test accuracy (default: the run's).
        protocol: Protocol (default: the run's).
        on_error: `"raise"` or `"skip"` for bad dataset files.
        overwrite: Replace a rate's folder that holds a model extracted from another run or
            with other settings (otherwise refused); the same extraction is written again.

    Returns:
        One metrics dict per rate: `rate`, `trained`, `test_accuracy`, `realized_rate`
        (exactly the rate asked for), `closed_form_rate` (what the
        closed-form band-stop threshold would realize), `disconnected_fraction`,
        `kept_weights`, `path`.

    Raises:
        RunConflictError: a rate's folder holds another extraction and `overwrite` is False.
        OutputConflictError: a rate's folder, or a file in it, was not written by the
            package, or another process writes in `out_dir`.

    Example:
        >>> extract_run("runs/mrmp", [0.93, 0.97], "runs/mrmp_family")  # doctest: +SKIP
    """
    folders = rate_folders(rates)
    reads = RunDirectory.files_read(model_path)
    out = OutputFolder(out_dir, reads)
    with out.locked():
        out.check_writable(folders)
        return _extract_all(model_path, folders, out, reads, consistent, calibration_batches,
                            dataset, protocol, on_error, overwrite)


def rate_folders(rates: Sequence[float]) -> dict[str, float]:
    """The folder of each rate (`rate_<rate>`, to 6 significant digits), refusing rates that
    name the same folder."""
    folders: dict[str, float] = {}
    for rate in rates:
        name = f"rate_{rate:g}"
        if name in folders and folders[name] != rate:
            raise ValueError(f"Rates {folders[name]!r} and {rate!r} both name the folder "
                             f"{name}; pass rates that differ in their first 6 significant "
                             "digits.")
        folders[name] = rate
    return folders


def _extract_all(model_path, folders: dict[str, float], out: OutputFolder, reads: list[Path],
                 consistent, calibration_batches, dataset, protocol, on_error,
                 overwrite: bool) -> list[dict]:
    model, info = load_run(model_path)
    pruning = info.pruning or {"method": None}
    if pruning["method"] not in MULTI_RATE_METHODS:
        raise ValueError(
            f"{model_path} was trained with pruning method {pruning['method']!r}; "
            f"extraction at any rate needs a run trained with one of {MULTI_RATE_METHODS} "
            "(gcnprune prune --method mrmp --rates ...), whose weights are aligned with a prior."
        )
    config, data = run_data(info, dataset, protocol, on_error)
    check_data_fits(model, info, data.dataset, config.dataset)
    x_train = data.train[0]
    options = recorded_extraction(pruning)
    if consistent is not None:
        options["consistent"] = consistent
    if calibration_batches:
        options["calibration_batches"] = calibration_batches
    trained = set(pruning["rates"] or [pruning["rate"]])
    selection = _selection_extraction(model_path, dataset, protocol, on_error, options)
    results = []
    for name, rate in folders.items():
        target = RunDirectory(out.claim(name), reads)
        with target.output.locked():
            results.append(_extract_one(model, rate, target, info, options, trained, data,
                                        model_path, x_train, pruning, overwrite, selection))
    return results


def _selection_extraction(model_path, dataset, protocol, on_error, options: dict):
    """For a refit run, a function of a rate giving what the metrics keep of its selection
    run's model extracted at that rate (`selection_metrics`: its validation accuracy); None
    for a run that was not refit."""
    selection_file = selection_model(model_path)
    if selection_file is None:
        return None
    model, info = load_run(selection_file)
    _, data = run_data(info, dataset, protocol, on_error)

    def metrics_at(rate: float) -> dict:
        extracted = extract(model, rate, calibration_data=data.train[0], **options)
        return measured_selection(extracted, data)
    return metrics_at


def _extract_one(model, rate: float, target: RunDirectory, info: RunInfo, options: dict,
                 trained: set, data, model_path, x_train, pruning: dict,
                 overwrite: bool, selection) -> dict:
    """Writes one rate's run directory: `metrics.json` removed first and written last, so
    that a directory interrupted in between is never taken for a finished one."""
    extracted_info = _extracted_info(info, rate, model_path, options)
    target.claim(overwrite, lambda: _check_same_extraction(target, extracted_info))
    extracted = extract(model, rate, calibration_data=x_train, **options)
    target.save_model(extracted, target.model_file)
    metrics = {
        "rate": rate,
        "trained": rate in trained,
        "consistent": options["consistent"],
        **extracted_metrics(extracted, data, closed_form_rate(
            model, rate, pruning["prior"], options["include_adjacency"])),
        **(selection(rate) if selection else {}),
        "extracted_from": str(model_path),
        "path": str(target.path),
    }
    target.write_info(extracted_info)
    target.write_metrics(metrics)
    return metrics


def _check_same_extraction(target: RunDirectory, extracted_info: RunInfo) -> None:
    # relative paths follow from the settings' own paths, compared here; older records lack them
    recorded, wanted = (dataclasses.replace(info, relative_paths={}).to_dict()
                        for info in (target.read_info(), extracted_info))
    difference = settings_difference(recorded, wanted)
    if difference:
        raise RunConflictError(f"{target.path} holds another extraction ({difference}). "
                               "Extract to another folder, or overwrite it.")


def recorded_extraction(pruning: dict) -> dict:
    """`extract`'s `consistent`, `calibration_batches` and `include_adjacency` as a run's
    recorded pruning settings (`RunInfo.pruning`) ask."""
    return {"consistent": pruning["consistent_extraction"],
            "calibration_batches": pruning["calibration_batches"],
            "include_adjacency": pruning["include_adjacency"]}


def _extracted_info(info: RunInfo, rate: float, model_path, options: dict) -> RunInfo:
    return dataclasses.replace(info.with_config(pruning={**info.pruning, "rate": rate}),
                               extracted_from=str(Path(model_path).resolve()),
                               extraction=dict(options))
