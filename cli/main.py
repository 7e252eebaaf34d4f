"""The `gcnprune` command: train, evaluate, convert, list layouts, and the quickstart job."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import click

from keras_gcnprune.cli.bench import bench
from keras_gcnprune.cli.options import (
    DATASET_HELP,
    ON_ERROR_HELP,
    PROTOCOL_HELP,
    option_spelling,
    parse_options,
    parse_rates,
    parse_streams,
    pruning_options,
    renamed,
    with_options,
)
from keras_gcnprune.data.errors import ON_ERROR_CHOICES
from keras_gcnprune.export.convert import GPU_ENGINE_MODES
from keras_gcnprune.export.run import CALIBRATIONS
from keras_gcnprune.models import MODELS
from keras_gcnprune.training import TrainConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TRAINING = TrainConfig()  # every training option's default is the library's

class _Commands(click.Group):
    """The command group: expected errors end in one `Error:` line and exit 1; `--debug`, or
    an error of a kind that only a bug raises, shows the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if _TERMINATED:  # library code (TensorFlow's tracing) re-raised the exit as an error
                sys.exit(128 + _TERMINATED[0])
            if ctx.params.get("debug") or not _expected(error):
                raise
            raise click.ClickException(f"{_described(error)} (--debug shows the traceback)"
                                       ) from None


def _described(error: Exception) -> str:
    if isinstance(error, MemoryError):
        return (f"out of memory{': ' + str(error) if str(error) else ''}; use smaller inputs, "
                "frames, samples or batches, or a machine with more memory")
    import tensorflow as tf

    if isinstance(error, tf.errors.ResourceExhaustedError):
        return (f"out of memory or disk space ({error.message.splitlines()[0][:300]}); free "
                "some, or use smaller settings")
    return str(error)


def _expected(error: Exception) -> bool:
    """Whether an error is one the package raises on purpose for bad input or a failed check,
    or a resource (memory, disk) running out."""
    if isinstance(error, ValueError | OSError | ImportError | MemoryError):
        return True
    import tensorflow as tf

    if isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    from keras_gcnprune.bench.accuracy import TrainingsFailed
    from keras_gcnprune.export import ExportError
    from keras_gcnprune.training import TrainingDivergedError

    return isinstance(error, ExportError | TrainingDivergedError | TrainingsFailed)


@click.group(cls=_Commands,
             context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="keras-gcnprune")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def main(debug: bool) -> None:
    """Skeleton graph convolutional networks for Keras 3, pruned and exported for phones."""
    # SIGTERM (a scheduler's stop, `timeout`) as an exit, so that `finally` blocks remove
    # export staging folders and partial files as they do on Ctrl-C.
    signal.signal(signal.SIGTERM, _terminate)


_TERMINATED: list[int] = []  # the signal that asked this process to stop, once it came


def _terminate(signum: int, frame) -> None:
    _TERMINATED.append(signum)
    sys.exit(128 + signum)


def training_options(command):
    """The options shared by `train` and `prune`."""
    options = [
        click.option("--dataset", default="synthetic", help=DATASET_HELP),
        click.option("--protocol", default=None, help=PROTOCOL_HELP),
        click.option("--model", "model_name", default=TRAINING.model,
                     type=click.Choice(tuple(MODELS)), help="Model family."),
        click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
                     help="Model option, repeatable; VALUE is JSON (e.g. heads=16, "
                          "widths=[32,64]). See keras_gcnprune.models."),
        click.option("--epochs", default=TRAINING.epochs, type=click.IntRange(1),
                     help="Training epochs."),
        click.option("--batch-size", default=TRAINING.batch_size, type=click.IntRange(1),
                     help="Batch size."),
        click.option("--frames", default=TRAINING.preprocessing.frames, type=click.IntRange(1),
                     help="Frames T every sequence is resampled to."),
        click.option("--streams", default=",".join(TRAINING.preprocessing.streams),
                     help="Input streams, comma separated: joint, bone, motion."),
        click.option("--learning-rate", default=TRAINING.learning_rate, type=float,
                     help="Peak AdamW learning rate."),
        click.option("--weight-decay", default=TRAINING.weight_decay, type=click.FloatRange(0),
                     help="AdamW weight decay."),
        click.option("--warmup-epochs", default=TRAINING.warmup_epochs, type=click.IntRange(0),
                     help="Epochs of linear learning-rate warm-up before the cosine decay."),
        click.option("--label-smoothing", default=TRAINING.label_smoothing,
                     type=click.FloatRange(0, 1, max_open=True),
                     help="Share of each label's probability spread over all classes."),
        click.option("--augment/--no-augment", default=True,
                     help="Random rotation, shear, scaling, noise and temporal crop on "
                          "training batches."),
        click.option("--rotation", default=None, type=click.FloatRange(0),
                     help="Augmentation: largest rotation in degrees, about each axis "
                          "(default: keras_gcnprune.data.Augmentation's, 15)."),
        renamed("--scaling", "--scale"),
        click.option("--scale", default=None, type=click.FloatRange(0),
                     help="Augmentation: largest relative scale change (0.1, the default: "
                          "x0.9 to x1.1)."),
        click.option("--shear", default=None, type=click.FloatRange(0),
                     help="Augmentation: largest shear coefficient (default 0: none)."),
        click.option("--stream-windows", default=TRAINING.stream_windows,
                     type=click.IntRange(0, 64),
                     help="Random windows (half to all of a clip) of each raw training clip "
                          "added to the training part, each preprocessed on its own as a "
                          "streaming app does (for the app loop; see bench stream)."),
        click.option("--crop", default=None, type=click.FloatRange(0, 1, min_open=True),
                     help="Augmentation: shortest temporal crop as a share of the frames, "
                          "resampled to all of them (default 1: no crop)."),
        click.option("--seed", default=TRAINING.seed, type=int,
                     help="Seed of weights, shuffling, augmentation."),
        click.option("--on-error", default="raise", type=click.Choice(ON_ERROR_CHOICES),
                     help=ON_ERROR_HELP),
        click.option("--validation", default=TRAINING.validation,
                     type=click.FloatRange(0, 1, max_open=True),
                     help="Share of the training split held out as validation (whole subjects "
                          "or sets where the data have them); val_accuracy is measured on it, "
                          "the test split only reported. 0: none."),
        click.option("--refit/--no-refit", default=TRAINING.refit,
                     help="With --validation: after the selection run (validation held out, in "
                          "OUT/selection), train the final model again on the whole training "
                          "split with the same settings; --no-refit keeps the selection run's "
                          "model."),
        click.option("--teacher", default=None, type=click.Path(exists=True),
                     help="Distil from this trained run (directory or model.keras), e.g. the "
                          "dense run of the same data: softened-logit KL plus the label loss."),
        click.option("--distill-temperature", default=4.0,
                     type=click.FloatRange(0, min_open=True),
                     help="With --teacher: softening temperature of both logits."),
        click.option("--distill-weight", default=0.5, type=click.FloatRange(0, 1),
                     help="With --teacher: share of the loss that is distillation."),
        click.option("--overwrite", is_flag=True,
                     help="Replace a run of other settings in --out (otherwise refused)."),
    ]
    return with_options(command, options)


def _config(dataset, protocol, model_name, options, epochs, batch_size, frames, streams,
            learning_rate, weight_decay, warmup_epochs, label_smoothing, augment, rotation,
            scale, shear, crop, seed, on_error, validation, refit, teacher,
            distill_temperature, distill_weight, **extra):
    from keras_gcnprune.data import Preprocessing
    from keras_gcnprune.training import DistillationConfig

    distillation = DistillationConfig(teacher, distill_temperature, distill_weight) \
        if teacher else None
    return TrainConfig(
        dataset=dataset, protocol=protocol, model=model_name,
        model_options=parse_options(options), epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, weight_decay=weight_decay, warmup_epochs=warmup_epochs,
        label_smoothing=label_smoothing,
        preprocessing=Preprocessing(frames=frames, streams=parse_streams(streams)),
        augmentation=_augmentation(augment, rotation=rotation, scale=scale, shear=shear,
                                   crop=crop),
        seed=seed, on_error=on_error,
        validation=validation, refit=refit, distillation=distillation, **extra,
    )


def _augmentation(augment: bool, **given):
    """The run's `Augmentation`: its defaults, overridden by the options given; None with
    --no-augment (where any augmentation option is refused, since it would be ignored)."""
    from keras_gcnprune.data import Augmentation

    given = {option: value for option, value in given.items() if value is not None}
    if not augment:
        if given:
            raise click.UsageError(f"--no-augment turns augmentation off; drop "
                                   f"{', '.join('--' + option for option in given)}.")
        return None
    return Augmentation(**given)


def _report_run(metrics: dict, out_dir) -> None:
    weights = f"{metrics['parameters']:,} weights"
    if metrics["nonzero_parameters"] != metrics["parameters"]:
        weights = f"{metrics['nonzero_parameters']:,} nonzero of {weights}"
    line = (f"test accuracy {metrics['test_accuracy']:.2%} on {metrics['test_samples']} "
            f"sequences ({weights}, {metrics['wall_time_s']:.0f} s)")
    if "selection_test_accuracy" in metrics:
        line = (f"validation accuracy {metrics['validation_accuracy']:.2%} on "
                f"{metrics['validation_samples']} held-out training sequences (selection run, "
                f"in {Path(out_dir) / 'selection'}); final model refit on all "
                f"{metrics['train_samples']} training sequences: " + line)
    elif "validation_accuracy" in metrics:
        line = (f"validation accuracy {metrics['validation_accuracy']:.2%} on "
                f"{metrics['validation_samples']} held-out training sequences; " + line)
    if "realized_rate" in metrics:
        line += (f"; {metrics['pruning_method']} pruning: {metrics['realized_rate']:.2%} of "
                 f"prunable weights removed, {metrics['kept_weights']:,} kept"
                 + _disconnected(metrics, ", {:.1%} of them disconnected"))
    if metrics.get("compacted_parameters", metrics["parameters"]) < metrics["parameters"]:
        line += (f"; {metrics['compacted_parameters']:,} weights and "
                 f"{metrics['compacted_macs']:,} MACs once compacted (export --compact)")
    click.echo(line)
    if "rates" in metrics:
        click.echo(_rates_table([{"rate": float(rate), **row}
                                 for rate, row in metrics["rates"].items()]))
    click.echo(f"model and metrics in {out_dir}")


def _rates_table(rows: list[dict]) -> str:
    lines = ["rate     test accuracy  realized  kept weights  disconnected"]
    for row in rows:
        lines.append(f"{row['rate']:<8g} {row['test_accuracy']:>13.2%}  "
                     f"{row['realized_rate']:>8.2%}  {row['kept_weights']:>12,}  "
                     + _disconnected(row, "{:>12.1%}"))
    return "\n".join(lines)


def _disconnected(metrics: dict, form: str) -> str:
    """The disconnected fraction in `form`; nothing for a model whose layers state no
    reachability rules, which has none."""
    fraction = metrics.get("disconnected_fraction")
    return "" if fraction is None else form.format(fraction)


@main.command()
@training_options
@click.option("--out", "out_dir", default="runs/train", type=click.Path(file_okay=False),
              help="Run directory: model.keras, run.json, history.json, metrics.json.")
def train(out_dir, overwrite, **options) -> None:
    """Train a model with model.fit and write it with its history and metrics."""
    _train_and_report(_config(**options), out_dir, overwrite)


def _train_and_report(config, out_dir, overwrite: bool, dataset=None) -> None:
    from keras_gcnprune.training import RunDirectory
    from keras_gcnprune.training import train as run_training

    if not overwrite and RunDirectory(out_dir).finished_with(config):
        click.echo(f"{out_dir} holds a finished run of these settings: not trained again "
                   "(--overwrite trains it again).")
    elif config.refits:
        click.echo(f"Training twice: the selection run with {config.validation:.0%} of the "
                   "training split held out as validation, then the final model on all of it "
                   "(--no-refit: once).")
    _report_run(run_training(config, out_dir, dataset=dataset, overwrite=overwrite), out_dir)


@main.command()
@training_options
@pruning_options()
@renamed("--begin", "--ramp BEGIN,END")
@renamed("--end", "--ramp BEGIN,END")
@click.option("--from", "from_run", default=None, type=click.Path(exists=True),
              help="Start from this trained run (directory or model.keras) instead of a new "
                   "model; its dataset and preprocessing apply unless given here.")
@click.option("--out", "out_dir", default="runs/prune", type=click.Path(file_okay=False),
              help="Run directory: model.keras, stripped.keras, connectivity.json, metrics.")
def prune(out_dir, from_run, overwrite, **options) -> None:
    """Train with pruning, from scratch or from a trained model."""
    from keras_gcnprune.pruning import PruningConfig, pruning_settings
    from keras_gcnprune.training import RunDirectory

    settings = {setting.name: options.pop(setting.name) for setting in pruning_settings()
                if setting.name not in ("begin", "end")}
    settings["begin"], settings["end"] = options.pop("ramp")
    initial_model = None
    if from_run:
        run, model_file = RunDirectory.holding(from_run)
        _, info = run.load(model_file)
        if click.get_current_context().get_parameter_source("dataset") is \
                click.core.ParameterSource.DEFAULT:
            options["dataset"] = info.config["dataset"]
        options["protocol"] = options["protocol"] or info.config["protocol"]
        options["frames"] = info.preprocessing.frames
        options["streams"] = ",".join(info.streams)
        initial_model = str(model_file)
    given = _given_pruning_settings()
    if settings["budgets"] and "rate" in given:
        raise click.UsageError("Give --budget or --rate/--rates, not both.")
    if settings["mac_share"] is not None and "rate" in given:
        raise click.UsageError("Give --mac-share or --rate, not both.")
    if "start_ratio" in given and (from_run or not settings["budgets"]):
        raise click.UsageError("--start-ratio sizes a new model for a --budget: give --budget "
                               "without --from, or leave --start-ratio out.")
    try:
        pruning = PruningConfig(**settings)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    config, dataset = replace(_config(**options, initial_model=initial_model),
                              pruning=pruning), None
    if pruning.sized:
        config, dataset = _resolved_budgets(config)
    _train_and_report(config, out_dir, overwrite, dataset)


def _given_pruning_settings() -> set[str]:
    """The `PruningConfig` settings given on the command line; a usage error for one that
    the chosen method does not use."""
    from keras_gcnprune.pruning import pruning_settings, settings_used_by

    context = click.get_current_context()
    method = context.params["method"]
    given = [setting for setting in pruning_settings() if setting.name in context.params and
             context.get_parameter_source(setting.name) is not click.core.ParameterSource.DEFAULT]
    used = settings_used_by(method)
    for setting in given:
        if setting.name not in used:
            raise click.UsageError(
                f"{option_spelling(setting)} applies to "
                f"{', '.join(setting.metadata['methods'])} only, not {method}: leave it out or "
                f"choose one of them with --method.")
    return {setting.name for setting in given}


def _resolved_budgets(config):
    """(the config with its budgets turned into rates on its model, the loaded dataset); says
    which model it starts from and which rate each budget became."""
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.training import resolve_budgets

    dataset = load_dataset(config.dataset, config.on_error)
    pruning = config.pruning
    if pruning.block_density is not None:
        click.echo("sizing: searching the channel steps of the compacted model (each step is "
                   "masked and compacted; minutes on a large model)")
    resolved = resolve_budgets(config, dataset)
    if resolved.model_options != config.model_options:
        click.echo(f"start: {config.model} {resolved.model_options}, about "
                   f"{pruning.start_ratio:g} times the budget (--start-ratio)")
    counted = "nonzero weights" if pruning.block_density is None else "weights once compacted"
    for budget, rate in zip(pruning.budgets, resolved.pruning.trained_rates()):
        click.echo(f"budget {budget:,} {counted}: rate {rate:.4%} of the pruned weights")
    if pruning.mac_share is not None:
        click.echo(f"{pruning.mac_share:g} of the MACs once compacted: rate "
                   f"{resolved.pruning.rate:.4%} of the pruned weights")
    return resolved, dataset


@main.command()
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--rate", "rate_list", multiple=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Pruning rate to extract, repeatable.")
@click.option("--rates", default=None, callback=lambda _, __, value: parse_rates(value),
              help="Rates to extract, comma separated (with or instead of --rate).")
@click.option("--out", "out_dir", default="runs/extract", type=click.Path(file_okay=False),
              help="Folder of the extracted runs, one rate_<R> run directory per rate.")
@click.option("--consistent/--ranked", default=None,
              help="Keep the best-ranked subnetwork of each rate's size whose every weight lies "
                   "on an input-to-output path, or the largest-ranked weights (default: as the "
                   "run was trained to extract).")
@click.option("--calibration-batches", default=None, type=click.IntRange(1),
              help="Training batches that recalibrate batch normalization (default: the "
                   "run's setting).")
@click.option("--dataset", default=None, help="Dataset for calibration and test accuracy "
                                              "(default: the run's).")
@click.option("--protocol", default=None, help=PROTOCOL_HELP)
@click.option("--on-error", default="raise", type=click.Choice(ON_ERROR_CHOICES),
              help=ON_ERROR_HELP)
@click.option("--overwrite", is_flag=True,
              help="Replace a rate's folder holding a model extracted from another run or "
                   "with other settings (otherwise refused).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def extract(model_path, rate_list, rates, out_dir, consistent, calibration_batches, dataset,
            protocol, on_error, overwrite, as_json) -> None:
    """Extract pruned models at any rates from one srmp/mrmp run, without retraining."""
    from keras_gcnprune.training import extract_run

    wanted = sorted(set(rate_list) | set(rates or ()))
    if not wanted:
        raise click.UsageError("Give the rates to extract: --rate R (repeatable) or --rates "
                               "R1,R2,...")
    results = extract_run(model_path, wanted, out_dir, consistent, calibration_batches,
                          dataset, protocol, on_error, overwrite)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    click.echo(_rates_table(results))
    click.echo(f"extracted runs in {out_dir}/rate_<rate>")


@main.command()
@click.argument("run_paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", default="runs/ensemble", type=click.Path(file_okay=False),
              help="Run directory of the ensemble: model.keras, run.json, metrics.json.")
@click.option("--overwrite", is_flag=True, help="Replace a directory that holds another run.")
def ensemble(run_paths, out_dir, overwrite) -> None:
    """Average the logits of trained runs (for example one per stream) as one model."""
    from keras_gcnprune.training import ensemble_runs

    if len(run_paths) < 2:
        raise click.UsageError(f"Give at least two trained runs to ensemble, got {len(run_paths)}.")
    metrics = ensemble_runs(run_paths, out_dir, overwrite)
    for member in metrics["members"]:
        click.echo(f"member {member['run']} ({'+'.join(member['streams'])}): test accuracy "
                   f"{member['test_accuracy']:.2%}")
    _report_run(metrics, out_dir)


@main.command()
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--png", default=None, type=click.Path(dir_okay=False),
              help="Also draw per-layer density and dead channels to this PNG file.")
def report(model_path, as_json, png) -> None:
    """Per-layer pruning rate and connectivity of a model (run directory or .keras file)."""
    from keras_gcnprune.reports import connectivity_report, format_table, plot_report
    from keras_gcnprune.training import RunDirectory, load_model_file

    model = load_model_file(RunDirectory.holding(model_path)[1])
    result = connectivity_report(model, costs=True)
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))
    if png:
        written = plot_report(result, png, RunDirectory.files_read(model_path))
        click.echo(f"figure written to {written}", err=as_json)


@main.command()
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--dataset", default=None, help=DATASET_HELP + " Default: the training dataset.")
@click.option("--protocol", default=None, help=PROTOCOL_HELP + " Default: the training one.")
@click.option("--on-error", default="raise", type=click.Choice(ON_ERROR_CHOICES),
              help=ON_ERROR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path, dataset, protocol, on_error, as_json) -> None:
    """Evaluate a trained run (directory or model.keras) on a protocol's test partition."""
    from keras_gcnprune.training import evaluate as run_evaluation

    metrics = run_evaluation(model_path, dataset, protocol, on_error)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
    else:
        click.echo(
            f"test accuracy {metrics['test_accuracy']:.2%} on {metrics['test_samples']} "
            f"sequences of {metrics['dataset']} ({metrics['protocol'] or 'default protocol'})"
        )


@main.command()
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--tflite", default=None, type=click.Path(dir_okay=False),
              help="Write a verified TFLite (LiteRT) file here.")
@click.option("--saved-model", default=None, type=click.Path(file_okay=False),
              help="Write a verified SavedModel folder here.")
@click.option("--fp16", "quantization", flag_value="fp16", help="TFLite: float16 weights.")
@click.option("--dynamic-range", "quantization", flag_value="dynamic",
              help="TFLite: int8 weights, float activations.")
@click.option("--int8", "quantization", flag_value="int8",
              help="TFLite: full integer, calibrated on --dataset's training split.")
@click.option("--int16x8", "quantization", flag_value="int16x8",
              help="TFLite: int8 weights and int16 activations (the converter's 16x8 mode), "
                   "calibrated on --dataset's training split: for models whose int8 "
                   "activations lose too much; NPUs and DSPs must support 16-bit activations.")
@click.option("--batch-size", default=1, type=click.IntRange(1),
              help="Static batch of the exported signature (1 for phones).")
@click.option("--sparse", is_flag=True,
              help="TFLite: sparse weight encoding (file size only; verified like the rest).")
@click.option("--compact", "compaction", is_flag=True,
              help="Remove dead channels first (a narrower dense model, checked to 1e-5).")
@click.option("--dataset", default=None,
              help=DATASET_HELP + " Calibrates int8 and checks top-1 agreement on its test "
                   "split (default: none, parity on random inputs only).")
@click.option("--protocol", default=None, help=PROTOCOL_HELP + " Default: the training one.")
@click.option("--on-error", default="raise", type=click.Choice(ON_ERROR_CHOICES),
              help=ON_ERROR_HELP)
@click.option("--gpu-engine", default="auto", show_default=True,
              type=click.Choice(GPU_ENGINE_MODES),
              help="TFLite: run the file on LiteRT's GPU engine, GPU only, against its CPU "
                   "runtime (auto: where the engine is installed; require: fail where not).")
@click.option("--raw-input", is_flag=True,
              help="The exported model takes raw joint coordinates (a window of the run's "
                   "frames, as the sensor gives them; all-zero joints are missing) and does "
                   "the centring, scaling and streams in its graph. Needs the run's run.json.")
@click.option("--axes", default=None,
              help="With --raw-input: for each axis of the training data, the sensor axis it "
                   "is read from, negated with '-' (e.g. x,-y,z for image coordinates). "
                   "Default: every axis as it is.")
@click.option("--probabilities", is_flag=True,
              help="End the model in a softmax; the output is named probabilities.")
@click.option("--calibration-samples", default=256, show_default=True, type=click.IntRange(1),
              help="--int8, --int16x8: training samples that calibrate the activation "
                   "ranges.")
@click.option("--calibration", default="random", show_default=True,
              type=click.Choice(CALIBRATIONS),
              help="--int8, --int16x8: calibration samples at random, or as many of each "
                   "class.")
@click.option("--write-anyway", is_flag=True,
              help="TFLite: write the file even when its check fails (for example int8 "
                   "agreement below 98%), with the check's numbers in its metadata.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def export(model_path, tflite, saved_model, quantization, batch_size, sparse, compaction, dataset,
           protocol, on_error, gpu_engine, raw_input, axes, probabilities, calibration_samples,
           calibration, write_anyway, as_json) -> None:
    """Export a model (run directory or .keras file) to TFLite and/or SavedModel, verified."""
    from keras_gcnprune.export import export_run

    reports = export_run(model_path, tflite=tflite, saved_model=saved_model,
                         quantization=quantization or "none", batch_size=batch_size,
                         sparse=sparse, compaction=compaction, dataset=dataset,
                         protocol=protocol, on_error=on_error, gpu_engine=gpu_engine,
                         raw_input=raw_input, axes=axes, probabilities=probabilities,
                         calibration_samples=calibration_samples, calibration=calibration,
                         write_anyway=write_anyway)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reports], indent=2))
        return
    if reports[0].costs:
        click.echo(_costs_table(reports[0].costs))
    for r in reports:
        agreement = "" if r.top1_agreement is None else \
            f", top-1 agreement {r.top1_agreement:.2%}"
        if r.top1_accuracy is not None:
            agreement += (f", top-1 accuracy {r.top1_accuracy:.2%} (Keras "
                          f"{r.keras_top1_accuracy:.2%})")
        click.echo(f"{r.format} ({r.quantization}) written to {r.path}: {r.size_bytes:,} bytes, "
                   f"max abs diff from Keras {r.max_abs_diff:.2g} (bound {r.tolerance:.2g}) on "
                   f"{r.checked_samples} inputs{agreement}")
        if r.problems:
            click.echo("WRITTEN ALTHOUGH ITS CHECK FAILED (--write-anyway): "
                       + "; ".join(r.problems))
        if r.format == "tflite":
            click.echo(f"GPU checker: {len(r.gpu_findings)} findings"
                       + "".join(f"\n  {finding}" for finding in r.gpu_findings))
            click.echo(str(r.gpu_engine) if r.gpu_engine else
                       f"GPU engine: not run: {r.gpu_engine_skipped}")


def _costs_table(costs: dict) -> str:
    pruned, compacted = costs["pruned"], costs["compacted"]
    rows = [("dense", pruned["parameters"], pruned["macs"]),
            ("pruned (kept)", pruned["kept_parameters"], pruned["kept_macs"]),
            ("compacted", compacted["parameters"], compacted["macs"])]
    lines = ["| model | parameters | MACs per sequence |", "|---|---|---|"]
    lines += [f"| {name} | {params:,} | {macs:,} |" for name, params, macs in rows]
    return "\n".join(lines) + f"\ncompacted vs pruned logits: max abs diff " \
                              f"{costs['max_abs_diff']:.2g}"


@main.command("check-gpu")
@click.argument("tflite_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--run", "run_engine", is_flag=True,
              help="Also load the file on LiteRT's GPU engine with no CPU fallback and compare "
                   "its outputs with the CPU runtime's (needs the engine: see the README).")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(1),
              help="With --run: seeded random inputs to compare on.")
def check_gpu(tflite_file, run_engine, samples) -> None:
    """Check a TFLite file for the GPU: statically, and with --run on LiteRT's GPU engine
    (exit 1 if anything is found)."""
    from keras_gcnprune.export import check_gpu as find_problems

    findings = find_problems(tflite_file)
    for finding in findings:
        click.echo(str(finding))
    click.echo(f"GPU checker: {len(findings)} findings"
               + (": known to run on the GPU." if not findings else "."))
    engine_passed = True
    if run_engine:
        check = _run_gpu_engine(tflite_file, samples)
        click.echo(str(check) + "".join(f"\n  {message}" for message in check.messages))
        engine_passed = check.passed
    if findings or not engine_passed:
        raise SystemExit(1)


def _run_gpu_engine(tflite_file: str, samples: int):
    from keras_gcnprune.export import check_gpu_engine, read_metadata
    from keras_gcnprune.export.convert import TOLERANCES
    from keras_gcnprune.export.gpu_engine import sample_inputs

    try:
        quantization = read_metadata(tflite_file).get("quantization", "none")
    except ValueError:  # a file exported elsewhere: no package metadata
        quantization = "none"
    inputs = sample_inputs(tflite_file, samples)
    return check_gpu_engine(tflite_file, inputs, tolerance=TOLERANCES.get(quantization, 1e-4))


@main.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print layouts as JSON dicts.")
def layouts(name, as_json) -> None:
    """List the built-in skeleton layouts, or show one (NAME, alias or .json file)."""
    from keras_gcnprune.graphs import BUILTIN_LAYOUTS, get_layout

    chosen = [get_layout(name)] if name else list(BUILTIN_LAYOUTS.values())
    if as_json:
        click.echo(json.dumps([layout.to_dict() for layout in chosen], indent=2))
        return
    for layout in chosen:
        click.echo(
            f"{layout.name:16s} {layout.num_joints:3d} joints {layout.num_edges:3d} edges  "
            f"centre {layout.joints[layout.centre]}"
        )
        if name:
            click.echo("joints: " + ", ".join(f"{i}:{j}" for i, j in enumerate(layout.joints)))
            click.echo("edges:  " + " ".join(f"({i},{j})" for i, j in layout.edges))


@main.command()
@click.argument("dataset")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--on-error", default="raise", type=click.Choice(ON_ERROR_CHOICES),
              help=ON_ERROR_HELP)
def convert(dataset, output, on_error) -> None:
    """Convert DATASET (any spec) to the pickle-free .npz archive OUTPUT."""
    from keras_gcnprune.data import dataset_location, load_dataset

    loaded = load_dataset(dataset, on_error)
    path = loaded.save(output, reads=[dataset_location(dataset)])
    click.echo(f"{loaded.summary()}\nwritten to {path} ({path.stat().st_size / 1e6:.1f} MB)")


@main.command()
@click.option("--out", "out_dir", default="runs/quickstart", type=click.Path(file_okay=False),
              help="Folder of the two runs (dense/ and tcp/) and their TFLite files.")
@click.option("--epochs", default=25, type=click.IntRange(1), help="Dense training epochs.")
@click.option("--prune-epochs", default=20, type=click.IntRange(1),
              help="Epochs of pruning and fine-tuning the dense model with TCP.")
@click.option("--rate", default=0.9, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="TCP pruning rate.")
@click.option("--seed", default=0, type=int, help="Seed of data generation and training.")
def quickstart(out_dir, epochs, prune_epochs, rate, seed) -> None:
    """Train AttentionGCN on built-in synthetic hand gestures, prune it with TCP in channel
    blocks, and export the dense and the compacted pruned model to verified TFLite files."""
    from keras_gcnprune.data import Preprocessing, load_dataset
    from keras_gcnprune.export import export_run, litert_latency_ms
    from keras_gcnprune.pruning import PruningConfig
    from keras_gcnprune.training import RunDirectory, TrainConfig
    from keras_gcnprune.training import train as run_training

    click.echo("Generating synthetic hand gestures (14 classes, MediaPipe hand layout)...")
    dataset = load_dataset(f"synthetic:{seed}")
    common = dict(dataset=f"synthetic:{seed}", protocol="cross_subject", model="attention_gcn",
                  preprocessing=Preprocessing(streams=("joint", "motion")), seed=seed)
    dense_dir, tcp_dir = Path(out_dir) / "dense", Path(out_dir) / "tcp"
    dense_run, tcp_run = RunDirectory(dense_dir), RunDirectory(tcp_dir)
    dense = run_training(TrainConfig(epochs=epochs, **common), dense_dir, dataset=dataset)
    click.echo(f"\nPruning {rate:.0%} of the weights with topologically consistent pruning, "
               "in channel blocks that compaction removes...")
    pruning = PruningConfig.preset("tcp_block", rate=rate, begin=0.0, end=0.5)
    pruned = run_training(TrainConfig(epochs=prune_epochs, initial_model=str(
        dense_run.model_file), pruning=pruning, **common), tcp_dir, dataset=dataset)
    click.echo("\nExporting both models to TFLite (the pruned one compacted) and checking them "
               "against Keras...")
    files = {name: Path(out_dir) / f"gesture_{name}.tflite" for name in ("dense", "tcp")}
    (dense_file,) = export_run(dense_dir, tflite=files["dense"], dataset=f"synthetic:{seed}")
    (exported,) = export_run(tcp_dir, tflite=files["tcp"], compaction=True,
                             dataset=f"synthetic:{seed}")
    latency = {name: litert_latency_ms(path) for name, path in files.items()}
    click.echo(
        f"\nQuickstart done, on {dense['test_samples']} sequences of unseen subjects "
        f"(chance {1 / 14:.2%}):\n"
        f"  dense AttentionGCN  {dense['test_accuracy']:.2%} top-1, "
        f"{dense['parameters']:,} weights ({dense['wall_time_s']:.0f} s)\n"
        f"  TCP-pruned          {pruned['test_accuracy']:.2%} top-1, "
        f"{pruned['realized_rate']:.2%} of prunable weights removed "
        f"({pruned['kept_weights']:,} kept, {pruned['disconnected_fraction']:.0%} "
        f"disconnected), {pruned['nonzero_parameters']:,} nonzero weights in all "
        f"({pruned['wall_time_s']:.0f} s)\n"
        f"  TFLite, compacted   {exported.path}: {exported.costs['compacted']['parameters']:,} "
        f"weights, {exported.size_bytes / 1024:.0f} KiB "
        f"({exported.size_bytes / dense_file.size_bytes:.2f}x the dense file), "
        f"{latency['tcp']:.3f} ms per sequence ({latency['tcp'] / latency['dense']:.2f}x dense; "
        f"LiteRT CPU, batch 1), max abs diff from Keras {exported.max_abs_diff:.1g}, top-1 "
        f"agreement {exported.top1_agreement:.2%}, {len(exported.gpu_findings)} GPU-checker "
        f"findings\n"
        + (f"  {exported.gpu_engine}\n" if exported.gpu_engine else
           f"  GPU engine: not run: {exported.gpu_engine_skipped}\n")
        + f"Models: {dense_run.model_file}, {tcp_run.stripped_file}, "
        f"{files['dense']}, {files['tcp']}"
    )


@main.command()
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--install", is_flag=True,
              help="Install the app's JavaScript packages (npm ci from the lock file shipped "
                   "with the package; needs Node.js and npm), then serve MODEL if given.")
@click.option("--host", default="127.0.0.1",
              help="Address to serve on (0.0.0.0: every network interface, for a phone on "
                   "the same network).")
@click.option("--port", default=8000, type=click.IntRange(0, 65535),
              help="Port to serve on (0: any free port).")
def app(model, install, host, port) -> None:
    """Serve the web app with MODEL (a .tflite exported with --raw-input --probabilities):
    LiteRT.js on WebGPU, camera or recorded landmarks, live labels, and a record mode."""
    from keras_gcnprune.app import app_home, install_app, make_server

    if install:
        click.echo(f"Installing the app's JavaScript packages in {app_home()} (npm ci)...")
        click.echo(f"installed: {install_app()}")
        if model is None:
            return
    if model is None:
        raise click.UsageError("Give the model to serve: gcnprune app MODEL.tflite.")
    server = make_server(model, host, port)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    click.echo(f"Serving {model} at http://{shown}:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


main.add_command(bench)


if __name__ == "__main__":
    main()
