"""One training run end to end: data, preprocessing, model, `model.fit`, artifacts on disk.

The run directory's files are described in `keras_gcnprune.training.directory`. While
training, `backup/` holds a `keras.callbacks.BackupAndRestore` state and `history.json` is
rewritten after every epoch: rerunning the same configuration after a crash resumes from the
last finished epoch, exactly as if uninterrupted. A backup that cannot be read is discarded
with a warning and training starts afresh.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_gcnprune import models
from keras_gcnprune.data import (
    Augmentation,
    Preprocessing,
    SkeletonDataset,
    dataset_location,
    load_dataset,
    make_tf_dataset,
    split,
    validation_split,
    with_random_windows,
)
from keras_gcnprune.pruning import (
    PruningConfig,
    assign_masks,
    closed_form_rate,
    compact,
    extract,
    extraction_masks,
    prunable_weights,
    realized_rate,
    recalibrate_batch_norm,
    strip_pruning,
)
from keras_gcnprune.pruning.topology import check_reachability_rules, layers_without_reachability
from keras_gcnprune.reports import PruningSummaries, connectivity_report, model_costs
from keras_gcnprune.training.callbacks import (
    EpochCounter,
    HistoryFile,
    LossAdaptiveLearningRate,
    ResumableBackup,
    StopOnNonFiniteLoss,
)
from keras_gcnprune.training.directory import (
    RunDirectory,
    load_model_file,
    load_run,
)
from keras_gcnprune.training.distillation import (
    DistillationConfig,
    DistillationLoss,
    LabelLoss,
    label_accuracy,
    with_teacher_logits,
)
from keras_gcnprune.training.run_info import RunInfo, refits

SCHEDULES = ("cosine", "loss_adaptive")  # of the learning rate, `TrainConfig.schedule`
# The input streams a training takes by default (the family, epochs and the rest are
# `TrainConfig`'s defaults); chosen on validation across datasets, docs/defaults.md.
DEFAULT_STREAMS = ("joint", "bone", "motion")
# PruningConfig's settings that decide only which weights an srmp or mrmp model keeps at a rate,
# not its training: a finished run is extracted again when only these change (`_reextract`).
EXTRACTION_SETTINGS = ("consistent_extraction", "calibration_batches")


@dataclass
class TrainConfig:
    """Everything a training run depends on. The defaults are the package's recommendation
    for new data, chosen on validation across datasets (`docs/defaults.md`).

    Args:
        dataset: Dataset spec (see `keras_gcnprune.data.load_dataset`).
        protocol: Named split (default: the dataset's first protocol).
        model: Model name for `keras_gcnprune.models.build`.
        model_options: Extra options of the model function.
        epochs: Training epochs.
        batch_size: Batch size.
        learning_rate: Peak learning rate of AdamW (with `schedule="cosine"`), or its
            starting rate (`"loss_adaptive"`).
        weight_decay: AdamW weight decay.
        warmup_epochs: Epochs over which the learning rate rises linearly from 0 to its peak
            before the cosine decay (0: none).
        schedule: `"cosine"`: a cosine decay of the learning rate to 1% over the run after
            the warm-up; `"loss_adaptive"`: the rate is multiplied by 0.99 after an epoch
            whose training loss rose and divided by 0.99 after one whose loss fell (the seed
            papers' regime, `LossAdaptiveLearningRate`).
        label_smoothing: Share of each label's probability spread evenly over all classes in
            the label loss (0: plain cross-entropy; the default was chosen on validation across
            datasets, `docs/training_recipe.md`).
        preprocessing: Input preprocessing (frames, centring, scale, streams; by default
            joint, bone and motion, `DEFAULT_STREAMS`).
        augmentation: On-the-fly augmentation of training batches, or None.
        seed: Seed of weights, shuffling and augmentation.
        on_error: `"raise"` or `"skip"` for bad dataset files.
        pruning: Prune during training (None: dense training).
        initial_model: A `.keras` model to start from instead of a new one (fine-tuning).
        validation: Share of the training split held out as validation (whole groups, see
            `keras_gcnprune.data.validation_split`): Keras' `val_accuracy` is measured on it
            and the metrics report it beside the test accuracy, so that every choice can be
            made without the test split. 0: none.
        distillation: Distil from a trained teacher (see `DistillationConfig`); None: the
            label loss alone.
        stream_windows: Random windows of each raw training clip added to the training part
            (`keras_gcnprune.data.with_random_windows`), each preprocessed on its own as a
            streaming app does its window; 0: none.
        refit: With a `validation` share, train twice: first the selection run, with the
            validation part held out (in the run's `selection/` folder; the metrics report its
            validation accuracy, on which choices are made), then the final model on the
            whole training split with the same settings and epochs. False: the selection
            run's model is the final one, and never sees the validation part.
    """

    dataset: str = "synthetic"
    protocol: str | None = None
    model: str = "stgcn"
    model_options: dict = field(default_factory=dict)
    epochs: int = 80
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    schedule: str = "cosine"
    label_smoothing: float = 0.1
    preprocessing: Preprocessing = field(
        default_factory=lambda: Preprocessing(streams=DEFAULT_STREAMS))
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    seed: int = 0
    on_error: str = "raise"
    pruning: PruningConfig | None = None
    initial_model: str | None = None
    validation: float = 0.1
    distillation: DistillationConfig | None = None
    stream_windows: int = 0
    refit: bool = True

    def __post_init__(self) -> None:
        if self.stream_windows < 0:
            raise ValueError(f"stream_windows must be at least 0, got {self.stream_windows}.")
        if not 0.0 <= self.validation < 1.0:
            raise ValueError(f"validation must be a fraction in [0, 1), got {self.validation}.")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}.")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay}.")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}), got "
                             f"{self.warmup_epochs}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got "
                             f"{self.schedule!r}.")
        if self.schedule == "loss_adaptive" and self.warmup_epochs:
            raise ValueError("warmup_epochs warm up the cosine schedule; the loss-adaptive "
                             "schedule has none: leave warmup_epochs 0.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got epochs="
                             f"{self.epochs}, batch_size={self.batch_size}.")

    @property
    def refits(self) -> bool:
        """Whether the final model is trained again on the whole training split."""
        return refits(self.refit, self.validation)

    def to_dict(self) -> dict:
        config = asdict(self)
        config["preprocessing"] = self.preprocessing.to_dict()
        if config["augmentation"] is not None:  # training takes its streams from preprocessing
            del config["augmentation"]["streams"]
        return config


@dataclass
class RunData:
    """The preprocessed data of a run: `(x, y)` arrays of each part.

    Args:
        dataset: The loaded dataset.
        train: What the model is fitted on (the training split less validation).
        validation: The held-out part of the training split, or None.
        test: The protocol's test split, only ever reported.
    """

    dataset: SkeletonDataset
    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray]


def prepare_data(config: TrainConfig, dataset: SkeletonDataset | None = None) -> RunData:
    """Loads, splits (protocol, then validation) and preprocesses the data of a run; a refit
    run's final model fits the whole training split (no validation part)."""
    dataset = dataset if dataset is not None else load_dataset(config.dataset, config.on_error)
    train_set, test_set = split(dataset, config.protocol)
    validation = None
    if config.validation and not config.refits:
        train_set, validation_set = validation_split(train_set, config.validation, config.seed)
        validation = config.preprocessing.arrays(validation_set)
    train_set = with_random_windows(train_set, config.stream_windows, config.seed)
    return RunData(dataset, config.preprocessing.arrays(train_set), validation,
                   config.preprocessing.arrays(test_set))


def build_model(config: TrainConfig, dataset: SkeletonDataset) -> keras.Model:
    """Builds the run's (uncompiled) model for a dataset; `train` compiles it."""
    return models.build(
        config.model,
        layout=dataset.skeleton,
        num_classes=dataset.num_classes,
        frames=config.preprocessing.frames,
        channels=config.preprocessing.channels(dataset.channels),
        **config.model_options,
    )


def learning_rate_schedule(config: TrainConfig, steps: int
                           ) -> keras.optimizers.schedules.LearningRateSchedule | float:
    """Cosine decay from `learning_rate` to 1% of it over the run, after a linear warm-up
    of `warmup_epochs` (steps: training steps per epoch); the starting rate alone for the
    loss-adaptive schedule, which `LossAdaptiveLearningRate` changes between epochs."""
    if config.schedule == "loss_adaptive":
        return config.learning_rate
    warmup = steps * config.warmup_epochs
    decay = max(1, steps * config.epochs - warmup)
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay, alpha=0.01)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay, alpha=0.01, warmup_target=config.learning_rate, warmup_steps=warmup)


def compile_for_classification(model: keras.Model, config: TrainConfig, steps: int = 1) -> None:
    distillation = config.distillation
    if distillation is None:
        loss = LabelLoss(config.label_smoothing)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    else:  # the labels come packed with the teacher's logits
        loss = DistillationLoss(distillation.temperature, distillation.weight,
                                config.label_smoothing)
        accuracy = keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate_schedule(config, steps),
                                         weight_decay=config.weight_decay),
        loss=loss, metrics=[accuracy],
    )


def load_teacher(distillation: DistillationConfig, student: keras.Model) -> keras.Model:
    """The teacher model of a run, checked to take the student's inputs and classes."""
    teacher, _ = load_run(distillation.teacher)
    if (tuple(teacher.input_shape[1:]) != tuple(student.input_shape[1:])
            or teacher.output_shape[-1] != student.output_shape[-1]):
        raise ValueError(
            f"Teacher {distillation.teacher} takes inputs {tuple(teacher.input_shape[1:])} and "
            f"outputs {teacher.output_shape[-1]} classes; the student takes "
            f"{tuple(student.input_shape[1:])} and outputs {student.output_shape[-1]}: train "
            "the teacher on the same data, frames and streams.")
    return teacher


def train(
    config: TrainConfig,
    out_dir: str | Path,
    dataset: SkeletonDataset | None = None,
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
    overwrite: bool = False,
) -> dict:
    """Trains a model with `model.fit` and writes the run directory (see module docstring).

    Args:
        config: The run's configuration.
        out_dir: Run directory (created; an interrupted run in it is resumed, a finished one
            of the same settings is not trained again: its metrics are returned). Files in it
            that the package did not write are neither written over nor removed.
        dataset: An already loaded dataset to use instead of loading `config.dataset`.
        verbose: Keras verbosity (`"auto"`: progress bar).
        callbacks: More Keras callbacks for `model.fit`, called after the run's own.
        overwrite: Replace a run directory that holds a run of other settings (otherwise
            refused, naming the settings that differ). A finished srmp or mrmp run that
            differs only in how it extracts its models (`EXTRACTION_SETTINGS`) is not
            retrained: its models are extracted again from its trained latent weights,
            unless `overwrite`.

    Returns:
        The metrics written to `metrics.json`.

    Raises:
        RunConflictError: `out_dir` holds a run of other settings and `overwrite` is False.
        OutputConflictError: `out_dir` holds files of the run's names that the package did
            not write, holds or is what the training reads, or another process writes in it.
        TrainingDivergedError: the loss became NaN or infinite; no metrics are written.

    Example:
        >>> metrics = train(TrainConfig(epochs=1), "runs/quick")  # doctest: +SKIP
    """
    if config.pruning is not None and config.pruning.sized:
        # sizing builds its models with this module's build_model: imported where it is used
        from keras_gcnprune.training.sizing import resolve_budgets

        dataset = dataset or load_dataset(config.dataset, config.on_error)
        config = resolve_budgets(config, dataset)
    run = RunDirectory(out_dir, reads=reads_of(config))
    with run.output.locked():
        if not overwrite and run.finished_with(config):
            return run.read_metrics()
        if not overwrite and only_extraction_differs(run, config):
            selection = _select(run, config, dataset, verbose, callbacks, overwrite)
            return _reextract(run, config, dataset, selection)
        run.claim(overwrite, lambda: run.check_same_settings(config))
        selection = _select(run, config, dataset, verbose, callbacks, overwrite)
        return _train(run, config, dataset, verbose, callbacks, selection)


def selection_config(config: TrainConfig) -> TrainConfig:
    """The settings of a refit run's selection run: the same, with the validation part held
    out, starting from (and distilling from) the selection runs of its initial model and
    teacher where they have one, so that no model it learns from has seen that part."""
    distillation = config.distillation
    if distillation is not None and distillation.teacher:
        distillation = replace(distillation, teacher=selection_counterpart(distillation.teacher))
    initial_model = config.initial_model and selection_counterpart(config.initial_model)
    return replace(config, refit=False, initial_model=initial_model, distillation=distillation)


def selection_model(model_path: str | Path) -> str | None:
    """The same model file of the selection run of the run holding `model_path`, where that
    run was refit (else None)."""
    run, model_file = RunDirectory.holding(model_path)
    counterpart = run.selection_dir / model_file.name
    return str(counterpart) if counterpart.is_file() else None


def selection_counterpart(model_path: str) -> str:
    """`selection_model(model_path)`, or `model_path` itself for a run that was not refit."""
    return selection_model(model_path) or model_path


def _select(run: RunDirectory, config: TrainConfig, dataset: SkeletonDataset | None,
            verbose: int | str, callbacks: list[keras.callbacks.Callback] | None,
            overwrite: bool) -> dict | None:
    """Trains (or resumes, or reads) a refit run's selection run; None for a run that is not
    refit."""
    if not config.refits:
        return None
    name = run.selection_dir.name
    folder = run.output.claim(name)
    try:
        return train(selection_config(config), folder, dataset, verbose, callbacks, overwrite)
    finally:
        if not folder.exists():  # refused before writing anything: nothing of it is left
            run.output.remove(name)


def reads_of(config: TrainConfig) -> list[Path | None]:
    """The files and folders a training reads: its dataset, initial model and teacher (None
    for a dataset with no files, which `OutputFolder` ignores)."""
    reads = [dataset_location(config.dataset)]
    if config.initial_model:
        reads += RunDirectory.files_read(config.initial_model)
    if config.distillation is not None and config.distillation.teacher:
        reads += RunDirectory.files_read(config.distillation.teacher)
    return reads


def _train(run: RunDirectory, config: TrainConfig, dataset: SkeletonDataset | None,
           verbose: int | str, callbacks: list[keras.callbacks.Callback] | None,
           selection: dict | None) -> dict:
    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()
    data = prepare_data(config, dataset)
    dataset, (x_train, y_train) = data.dataset, data.train
    augmentation = config.augmentation
    if augmentation is not None:
        augmentation = replace(
            augmentation, point_dims=dataset.channels, persons=dataset.skeleton.persons,
            streams=config.preprocessing.streams,
        )
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_data = make_tf_dataset(
        x_train, y_train, config.batch_size, training=True, augmentation=augmentation,
        seed=config.seed, epoch=epoch,
    )
    validation_data = None if data.validation is None else \
        make_tf_dataset(*data.validation, config.batch_size)
    if config.initial_model:
        model = load_model_file(Path(config.initial_model))
    else:
        model = build_model(config, dataset)
    if config.distillation is not None:
        teacher = load_teacher(config.distillation, model)
        train_data = with_teacher_logits(train_data, teacher)
        if validation_data is not None:
            validation_data = with_teacher_logits(validation_data, teacher)
    pruning = config.pruning
    if pruning is not None and pruning.needs_reachability:
        check_reachability_rules(model)  # before training, not after it
    trainer = pruning.trainer(model, config.seed, fresh=not config.initial_model) if pruning \
        else model
    compile_for_classification(trainer, config, steps=len(train_data))
    info = run.write_info(RunInfo.of_training(config, dataset))
    backup = ResumableBackup(run.output, run.backup_dir.name,
                             json.dumps(info.portable_config(), sort_keys=True))
    if not backup.resumable():
        run.output.remove(run.history_file.name)
    history = HistoryFile(run.output, run.history_file.name)
    adaptive = [LossAdaptiveLearningRate(history)] if config.schedule == "loss_adaptive" \
        else []
    # The rate adapts before the backup saves the epoch, and reads the history before the
    # history file adds the epoch.
    callbacks = [StopOnNonFiniteLoss(), *adaptive, backup, EpochCounter(epoch), history,
                 *(callbacks or [])]
    if pruning is not None:
        # Before the backup, so that the pruning step is written before it saves an epoch.
        callbacks.insert(1, pruning.callback(len(train_data) * config.epochs))
        if pruning.log_dir:
            callbacks.insert(2, PruningSummaries(pruning.log_dir))
    fit_started = time.perf_counter()
    trainer.fit(
        train_data,
        epochs=config.epochs,
        validation_data=validation_data,
        shuffle=False,  # the tf.data pipeline shuffles every epoch
        callbacks=callbacks,
        verbose=verbose,
    )
    return _write_results(run, model, config, data, time.perf_counter() - fit_started,
                          started, selection)


def _write_results(run: RunDirectory, model: keras.Model, config: TrainConfig, data: RunData,
                   train_time: float, started: float, selection: dict | None) -> dict:
    """Extracts a multi-rate network at its rates, then writes the model, its pruning reports
    and `metrics.json` (with the selection run's validation accuracy where it was refit), and
    returns the metrics."""
    x_train = data.train[0]
    pruning = config.pruning
    pruning_metrics = {}
    if pruning is not None and pruning.multi_rate:
        settle_at_largest_rate(model, pruning, x_train)
        pruning_metrics["rates"] = multi_rate_results(model, pruning, x_train, data)
    run.save_model(model, run.model_file)
    if pruning is not None:
        report = pruning_report(model)
        if "layers" in report:
            run.write_json(run.connectivity_file, report)
        run.save_model(strip_pruning(model), run.stripped_file)
        if selection is not None and "rates" in pruning_metrics:
            add_selection_rates(pruning_metrics["rates"], selection["rates"])
        pruning_metrics = {
            "pruning_method": pruning.method,
            "target_rate": pruning.rate,
            **rate_summary(report),
            **compacted_metrics(model),
            **pruning_metrics,
        }
    metrics = {
        "dataset": config.dataset,
        "protocol": config.protocol,
        "model": config.model,
        "test_accuracy": evaluate_arrays(model, *data.test, config.batch_size),
        **validation_metrics(model, data, config.batch_size),
        **selection_metrics(selection),
        "train_samples": len(x_train),
        "test_samples": len(data.test[0]),
        **size_metrics(model),
        **pruning_metrics,
        "epochs": config.epochs,
        "train_time_s": round(train_time, 2),
        "wall_time_s": round(time.perf_counter() - started, 2),
        **environment(),
    }
    # Written last and whole: its presence marks a finished, consistent set of files
    # (`RunDirectory.claim` removes it before anything else is replaced).
    run.write_metrics(metrics)
    return metrics


def selection_metrics(selection: dict | None) -> dict:
    """What a refit run's metrics keep of its selection run: the validation accuracy choices
    are made on, and the selection model's own test accuracy (nothing when not refit)."""
    if selection is None:
        return {}
    return {"validation_accuracy": selection["validation_accuracy"],
            "validation_samples": selection["validation_samples"],
            "selection_test_accuracy": selection["test_accuracy"]}


def measured_selection(model: keras.Model, data: RunData) -> dict:
    """`selection_metrics` of a selection model built from a refit run's selection run (an
    extraction, an ensemble), measured on that run's data."""
    return selection_metrics({"test_accuracy": evaluate_arrays(model, *data.test),
                              **validation_metrics(model, data)})


def add_selection_rates(rates: dict, selection_rates: dict) -> None:
    """Adds to each rate's metrics of a refit multi-rate run its selection run's validation
    accuracy at that rate."""
    for rate, metrics in rates.items():
        metrics.update(selection_metrics(selection_rates[rate]))


def only_extraction_differs(run: RunDirectory, config: TrainConfig) -> bool:
    """Whether `run` is a finished srmp or mrmp run trained exactly as `config` says, whose
    models at its rates were extracted otherwise (`EXTRACTION_SETTINGS`)."""
    if config.pruning is None or not config.pruning.multi_rate or not run.finished():
        return False
    saved, wanted = run.read_info().config, config.to_dict()
    if not run.recorded_difference(wanted) or not isinstance(saved["pruning"], dict):
        return False
    recorded = {name: saved["pruning"].get(name) for name in EXTRACTION_SETTINGS}
    return not run.recorded_difference(
        {**wanted, "pruning": {**wanted["pruning"], **recorded}})


def _reextract(run: RunDirectory, config: TrainConfig, dataset: SkeletonDataset | None,
               selection: dict | None) -> dict:
    """Extracts a finished srmp or mrmp run's models again with `config`'s extraction settings,
    in place, without retraining (`only_extraction_differs` must hold): the trained latent
    weights decide every rate's model, the extraction settings only which weights it keeps.

    `metrics.json` is rewritten before `run.json`, so that a run interrupted in between
    still records its old settings and is extracted again by the next call.
    """
    started = time.perf_counter()
    trained = run.read_metrics()
    data = prepare_data(config, dataset)
    model = load_model_file(run.model_file)
    metrics = _write_results(run, model, config, data, trained["train_time_s"],
                             started - trained["wall_time_s"], selection)
    run.write_info(RunInfo.of_training(config, data.dataset))
    return metrics


def size_metrics(model: keras.Model) -> dict:
    """What the model weighs: `parameters`, its weights (masks, pruning steps and seed states
    are not weights; biases and batch-norm statistics are), `nonzero_parameters`, those a
    pruned model keeps, and `macs` / `kept_macs`, multiply-accumulates per sequence."""
    costs = model_costs(model)
    return {"parameters": costs["parameters"], "nonzero_parameters": costs["kept_parameters"],
            "macs": costs["macs"], "kept_macs": costs["kept_macs"]}


def compacted_metrics(model: keras.Model) -> dict:
    """What a pruned model weighs once its dead channels are removed (`compact`): the weights
    and multiply-accumulates per sequence of the narrowed model, every entry counted, as its
    TFLite file stores and runs them (`compacted_parameters`, `compacted_macs`), and its
    nonzero weights (`compacted_nonzero_parameters`): the weights the pruned model needs, the
    biases and normalization of dead channels and the kept weights that feed only them left
    out. Empty for a model that compaction does not support (its error names the layer), so
    that a finished training is never lost to it."""
    try:
        costs = model_costs(compact(model))
    except ValueError:
        return {}
    return {"compacted_parameters": costs["parameters"], "compacted_macs": costs["macs"],
            "compacted_nonzero_parameters": costs["kept_parameters"]}


def pruning_report(model: keras.Model) -> dict:
    """The model's `connectivity_report`; for a model with masked layers that state no
    reachability rules, only its `total` rate and kept weights (magnitude and ranked
    multi-rate pruning need no more)."""
    if not layers_without_reachability(model):
        return connectivity_report(model)
    weights = prunable_weights(model)
    kept = int(sum(weight.mask.numpy().sum() for weight in weights))
    return {"total": {"rate": realized_rate(weights), "kept": kept}}


def rate_summary(report: dict) -> dict:
    """The pruning metrics of a run from its `pruning_report`: realized rate and kept
    weights, and where the layers have reachability rules, the disconnected fraction of the
    kept weights and the dead channels."""
    summary = {"realized_rate": report["total"]["rate"], "kept_weights": report["total"]["kept"]}
    if "layers" in report:
        summary["disconnected_fraction"] = report["total"]["disconnected_fraction"]
        summary["dead_channels"] = sum(layer["dead_outputs"] for layer in report["layers"]
                                       if layer["role"] == "channels")
    return summary


def validation_metrics(model: keras.Model, data: RunData, batch_size: int = 64) -> dict:
    """`validation_accuracy` and `validation_samples` of a run (nothing without validation)."""
    if data.validation is None:
        return {}
    return {"validation_accuracy": evaluate_arrays(model, *data.validation, batch_size),
            "validation_samples": len(data.validation[1])}


def multi_rate_results(model: keras.Model, pruning: PruningConfig, x_train: np.ndarray,
                       data: RunData) -> dict:
    """Test and validation accuracy and pruning metrics of the model extracted at every
    trained rate; at the largest, the settled network itself (see `settle_at_largest_rate`) is
    that model."""
    results = {}
    for rate in pruning.trained_rates():
        extracted = model if rate == pruning.rate else extract(
            model, rate, pruning.consistent_extraction, calibration_data=x_train,
            calibration_batches=pruning.calibration_batches,
            include_adjacency=pruning.include_adjacency)
        results[f"{rate:g}"] = extracted_metrics(
            extracted, data, closed_form_rate(model, rate, pruning.prior,
                                              pruning.include_adjacency))
    return results


def extracted_metrics(extracted: keras.Model, data: RunData, closed_form: float) -> dict:
    """Accuracy, pruning and size metrics of a model extracted from a multi-rate network,
    with the rate its closed-form threshold would have realized (`closed_form_rate`)."""
    return {
        "test_accuracy": evaluate_arrays(extracted, *data.test),
        **validation_metrics(extracted, data),
        **rate_summary(pruning_report(extracted)),
        **size_metrics(extracted),
        **compacted_metrics(extracted),
        "closed_form_rate": closed_form,
    }


def settle_at_largest_rate(model: keras.Model, pruning: PruningConfig, x_train: np.ndarray
                           ) -> None:
    """Sets a multi-rate network's masks to its largest rate and recalibrates its batch norms
    there, so that the saved model is the pruned model at that rate (its latent weights stay
    intact for extraction at other rates)."""
    assign_masks(model, extraction_masks(model, pruning.rate, pruning.consistent_extraction,
                                         pruning.include_adjacency))
    recalibrate_batch_norm(model, x_train, pruning.calibration_batches)


def evaluate_arrays(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 64
                    ) -> float:
    """Top-1 accuracy of a logits model on preprocessed inputs.

    Raises:
        ValueError: some outputs are NaN or infinite: an accuracy of them would mean nothing.
    """
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    broken = int(np.sum(~np.all(np.isfinite(logits), axis=-1)))
    if broken:
        raise ValueError(f"The model's outputs are NaN or infinite on {broken} of {len(x)} "
                         "sequences (its weights, or the inputs, hold such values): no "
                         "accuracy is reported. Retrain it, or check the data.")
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def run_data(info: RunInfo, dataset: str | None = None, protocol: str | None = None,
             on_error: str = "raise", loaded: SkeletonDataset | None = None
             ) -> tuple[TrainConfig, RunData]:
    """Loads and splits a dataset with the preprocessing a trained run's model expects, and
    the run's own validation part (same fraction and seed).

    Args:
        info: The run's record (see `load_run`).
        dataset: Dataset spec (default: the one it was trained on).
        protocol: Protocol (default: the one it was trained with).
        on_error: `"raise"` or `"skip"` for bad dataset files.
        loaded: The dataset already loaded, used instead of loading the spec.

    Returns:
        `(config, data)`.
    """
    trained = info.config
    config = TrainConfig(
        dataset=dataset or trained["dataset"],
        protocol=protocol or trained["protocol"],
        preprocessing=info.preprocessing,
        on_error=on_error,
        seed=trained["seed"],
        validation=trained["validation"],
        refit=trained["refit"],
    )
    return config, prepare_data(config, loaded)


def check_data_fits(model: keras.Model, info: RunInfo, loaded: SkeletonDataset,
                    spec: str) -> None:
    """Raises when a dataset's classes (names, in order) or joints differ from what the run's
    model takes: a class index means the same class in both, or accuracies are wrong."""
    if loaded.num_classes != len(info.class_names) or loaded.num_joints != model.input_shape[2]:
        raise ValueError(
            f"Dataset {spec!r} ({loaded.num_classes} classes, {loaded.num_joints} "
            f"joints) does not match the model ({len(info.class_names)} classes, "
            f"{model.input_shape[2]} joints)."
        )
    differing = [i for i, (ours, theirs) in enumerate(zip(loaded.class_names, info.class_names))
                 if ours != theirs]
    if differing:
        i = differing[0]
        raise ValueError(
            f"Dataset {spec!r} names class {i} {loaded.class_names[i]!r} where the run's model "
            f"has {info.class_names[i]!r} ({len(differing)} classes differ): the same "
            "classes must come in the same order, or every accuracy is wrong. Store the run's "
            "class_names, in its order, in the dataset.")


def evaluate(model_path: str | Path, dataset: str | None = None, protocol: str | None = None,
             on_error: str = "raise") -> dict:
    """Evaluates a trained run on the test partition of a protocol.

    Args:
        model_path: Run directory or `.keras` file with `run.json` beside it.
        dataset: Dataset spec (default: the one it was trained on).
        protocol: Protocol (default: the one it was trained with).
        on_error: `"raise"` or `"skip"` for bad dataset files.

    Returns:
        `{"test_accuracy", "test_samples", "dataset", "protocol"}`.
    """
    model, info = load_run(model_path)
    config, data = run_data(info, dataset, protocol, on_error)
    check_data_fits(model, info, data.dataset, config.dataset)
    x_test, y_test = data.test
    return {
        "dataset": config.dataset,
        "protocol": config.protocol,
        "test_accuracy": evaluate_arrays(model, x_test, y_test),
        "test_samples": len(x_test),
    }


def device_name() -> str:
    """`"CPU"`, or the name of the first GPU TensorFlow sees (`"GPU"` when it has none)."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")


def environment() -> dict:
    from keras_gcnprune import __version__

    return {
        "keras_gcnprune": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "device": device_name(),
        "machine": platform.machine(),
    }

