"""`gcnprune bench`: accuracy against pruning rate, training speed and export benchmarks."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace

import click

from keras_gcnprune.bench.accuracy import BLOCK_BUDGETS, PRESETS, PRUNING_SETTINGS, AccuracyBench
from keras_gcnprune.bench.executors import EXECUTORS
from keras_gcnprune.bench.streaming import DETECTION_CONFIRM, DETECTION_THRESHOLD
from keras_gcnprune.cli.options import (
    DATASET_HELP,
    ON_ERROR_HELP,
    PROTOCOL_HELP,
    parse_budgets,
    parse_names,
    parse_options,
    parse_rates,
    parse_streams,
    pruning_options,
)
from keras_gcnprune.data.errors import ON_ERROR_CHOICES
from keras_gcnprune.models import MODELS


def _command_line() -> str:
    return "gcnprune " + shlex.join(sys.argv[1:])


def _save_and_show(out_dir, benchmark: str, spec, table: str, results: dict) -> None:
    """Writes a benchmark's results.json and results.md, and prints the table and the files."""
    from dataclasses import asdict

    from keras_gcnprune.bench.results import save_results

    files = save_results(out_dir, benchmark, _command_line(), asdict(spec), table, **results)
    click.echo("\n" + table)
    click.echo("Written: " + ", ".join(str(p) for p in files.values()))


@click.group()
def bench() -> None:
    """Benchmarks with tables and plots: accuracy vs rate, speed, export."""


@bench.command()
@click.option("--quick", is_flag=True,
              help=f"The quick preset: {PRESETS['quick'].description()}. Without it, the "
                   f"full preset: {PRESETS['full'].description()}. Options given override.")
@click.option("--dataset", default=None, help=DATASET_HELP + " Default: sbu.")
@click.option("--protocol", "protocols", multiple=True,
              help=PROTOCOL_HELP.replace("Default: the dataset's first protocol.",
                                         "Repeatable. Default: every one of the dataset's."))
@click.option("--model", "model_name", default=None, type=click.Choice(tuple(MODELS)),
              help=f"Model family. Default: {AccuracyBench.model}.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Model option, repeatable; VALUE is JSON (e.g. heads=16, to prune a wider "
                   "model down to the same budgets; give rates that reach them). small_dense "
                   "scales these widths.")
@click.option("--methods", default=None,
              help="Comma-separated: dense, small_dense (dense models as small as each "
                   "rate's pruned ones: the baseline), magnitude, tcp, srmp, mrmp, a TCP "
                   "ablation tcp_accessibility, tcp_coaccessibility, tcp_feedback, tcp_none, "
                   "or tcp_block (TCP inside channel blocks, which compaction shrinks). "
                   "Default: dense,small_dense,magnitude,tcp,srmp,mrmp.")
@click.option("--rates", default=None, callback=lambda _, __, value: parse_rates(value),
              help="Comma-separated pruning rates. Default: 0.5,0.7,0.9,0.95,0.98,0.99,0.995.")
@click.option("--budgets", default=None, callback=lambda _, __, value: parse_budgets(value),
              help="Comma-separated nonzero weight counts (biases and normalization included) "
                   "instead of --rates: the rates at which the model (with its --option "
                   "widths) keeps them, so that models of other widths meet at the same sizes.")
@click.option("--seeds", default=None, type=click.IntRange(1), help="Seeds per run. Default: 3.")
@click.option("--epochs", default=None, type=click.IntRange(1),
              help=f"Default: {AccuracyBench.epochs}.")
@click.option("--frames", default=None, type=click.IntRange(1),
              help=f"Default: {AccuracyBench.frames}.")
@click.option("--streams", default=None,
              callback=lambda _, __, value: value and parse_streams(value),
              help="Input streams, comma separated: joint, bone, motion. Default: "
                   f"{','.join(AccuracyBench.streams)}.")
@click.option("--refit/--no-refit", default=None,
              help="Train every final model again on the whole training split after its "
                   "selection run (validation held out). Default: refit.")
@click.option("--unseen", default=None, callback=lambda _, __, value: parse_rates(value),
              help="Rates never trained, extracted from every mrmp training to check their "
                   "realized rate.")
@click.option("--distill", is_flag=True, default=None,
              help="Every method but dense (small_dense included) distils from the dense run "
                   "of its fold and seed.")
@click.option("--from-dense", is_flag=True, default=None,
              help="Every pruning method starts from the trained dense run of its fold and "
                   "seed (small_dense then trains twice the epochs, unless --distill).")
@click.option("--start-ratio", default=None, type=click.FloatRange(1, min_open=True),
              help="Every pruning method starts from the model of the family (widths scaled "
                   "as small_dense's) whose weights are about this many times each rate's "
                   "budget, and prunes it to that budget (mrmp: from this many times the "
                   "largest budget, every rate trained on it), where the benchmark's model "
                   "is larger: a start is never wider. Default: from the benchmark's model.")
@pruning_options(*PRUNING_SETTINGS, "block_density", "begin", "end", defaults=AccuracyBench)
@click.option("--block-budget", default=None, type=click.Choice(BLOCK_BUDGETS),
              help="What tcp_block's rate R budgets: compacted, the weights of its compacted "
                   "model (the nonzero weights the other methods keep at R); nonzero, its "
                   "nonzero weights (the nominal rate); macs, the MACs per sequence of its "
                   "compacted model, 1 - R of the dense model's, small_dense then matched to "
                   "those MACs (R = 0.9: a tenth of the dense MACs). Default: "
                   f"{AccuracyBench.block_budget}.")
@click.option("--jobs", default=None, type=click.IntRange(1),
              help="Trainings at once: local worker processes, each pinned to a share of the "
                   "CPUs (and to one GPU where there are GPUs); with --executor ray and no "
                   "--address, the size of the local Ray cluster. Default: one, in this "
                   "process (ray: one per CPU).")
@click.option("--executor", default="local", type=click.Choice(EXECUTORS),
              help="Where trainings run: local processes, or Ray tasks (pip install "
                   "\"keras-gcnprune[ray]\").")
@click.option("--address", default=None,
              help="--executor ray: the address of an existing Ray cluster (default: start a "
                   "local one).")
@click.option("--task-cpus", default=1.0, type=click.FloatRange(0, min_open=True),
              help="--executor ray: CPUs each training declares.")
@click.option("--task-gpus", default=0.0, type=click.FloatRange(0),
              help="--executor ray: GPUs each training declares.")
@click.option("--out", "out_dir", default="runs/bench/accuracy",
              type=click.Path(file_okay=False),
              help="Output folder; rerunning with the same folder skips finished runs and "
                   "retries failed ones.")
def accuracy(quick, dataset, protocols, model_name, options, methods, rates, budgets, seeds,
             epochs, frames, streams, refit, unseen, distill, from_dense, start_ratio,
             block_budget, jobs, executor, address, task_cpus, task_gpus, out_dir, rate_weights,
             **pruning) -> None:
    """Accuracy against pruning rate for every method, fold or split and seed.

    Writes OUT/results.json, OUT/results.md and the plots OUT/accuracy_vs_rate.png,
    OUT/accuracy_vs_weights.png, OUT/accuracy_vs_compacted_weights.png and
    OUT/disconnected_vs_rate.png after every training; rerun the same command to continue an
    interrupted benchmark.
    """
    from keras_gcnprune.bench import run_accuracy
    from keras_gcnprune.bench.accuracy import rates_for_budgets
    from keras_gcnprune.bench.executors import make_executor
    from keras_gcnprune.data import load_dataset

    if budgets and rates:
        raise click.UsageError("Give --budgets or --rates, not both.")

    protocols = tuple(p for value in protocols for p in value.split(",") if p)
    overrides = {"dataset": dataset, "protocols": protocols or None, "model": model_name,
                 "model_options": parse_options(options) or None,
                 "methods": parse_names(methods), "rates": rates, "seeds": seeds,
                 "epochs": epochs, "frames": frames, "streams": streams, "refit": refit,
                 "unseen": unseen, "distill": distill, "from_dense": from_dense,
                 "start_ratio": start_ratio, "block_budget": block_budget, **pruning}
    preset = PRESETS["quick" if quick else "full"]
    try:
        # the weights pair with the rates in their given order: with --budgets, once derived
        spec = replace(preset, **{k: v for k, v in overrides.items() if v is not None},
                       **({} if budgets else {"rate_weights": rate_weights}))
        if budgets:
            derived = rates_for_budgets(spec, budgets, load_dataset(spec.dataset, on_error="skip"))
            click.echo(", ".join(f"budget {b:,}: rate {r:g}" for b, r in zip(budgets, derived)))
            spec = replace(spec, rates=derived, rate_weights=rate_weights)
        runner = make_executor(jobs, executor, address, task_cpus, task_gpus)
        results = run_accuracy(spec, out_dir, command=_command_line(), executor=runner)
    except (ValueError, FileNotFoundError) as error:
        raise click.UsageError(str(error)) from None
    click.echo("\n" + results.table)
    click.echo("Written: " + ", ".join(str(p) for p in results.files.values()))


@bench.command()
@click.option("--models", default="attention_gcn,stgcn", help="Comma-separated model names.")
@click.option("--steps", default=100, type=click.IntRange(3), help="Training steps per timing.")
@click.option("--rounds", default=3, type=click.IntRange(1),
              help="Interleaved rounds; the median is kept.")
@click.option("--batch-size", default=32, type=click.IntRange(1))
@click.option("--rate", default=0.95, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Pruning rate of every method (mrmp trains 0.8..0.995).")
@click.option("--no-tfmot", is_flag=True,
              help="Skip the Model Optimization Toolkit's timing (run in its own process when "
                   "the tfmot extra is installed).")
@click.option("--out", "out_dir", default="runs/bench/speed", type=click.Path(file_okay=False))
def speed(models, steps, rounds, batch_size, rate, no_tfmot, out_dir) -> None:
    """Training step time of every pruning method as a ratio to dense, in one run.

    SBU-sized inputs (30 joints, 32 frames); writes OUT/results.json and OUT/results.md.
    """

    from keras_gcnprune.bench.speed import SpeedBench, run_speed, speed_table

    spec = SpeedBench(models=parse_names(models), steps=steps, rounds=rounds,
                      batch_size=batch_size, rate=rate, tfmot=not no_tfmot)
    try:
        results = run_speed(spec)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    table = speed_table(results)
    _save_and_show(out_dir, "speed", spec, table, results)


def _quantizations(value: str) -> tuple[str, ...]:
    from keras_gcnprune.export import QUANTIZATIONS

    chosen = parse_names(value)
    unknown = [q for q in chosen if q not in QUANTIZATIONS]
    if unknown or not chosen:
        raise click.BadParameter(f"unknown quantization {unknown or value!r}; choose from "
                                 f"{', '.join(QUANTIZATIONS)}.", param_hint="--quantizations")
    return chosen


@bench.command("export")
@click.option("--models", default="attention_gcn,stgcn",
              help="Comma-separated model names (untrained, TCP masks on initial weights).")
@click.option("--rates", default=None, callback=lambda _, __, value: parse_rates(value),
              help="Pruning rates. Default: 0.9,0.95,0.98,0.99, or with --runs the rates of "
                   "that benchmark.")
@click.option("--runs", default=None, type=click.Path(exists=True, file_okay=False),
              help="A `gcnprune bench accuracy` output folder: export its trained models "
                   "(first protocol, seed 0) instead; --rates must be among its rates.")
@click.option("--methods", default=None,
              help="Comma-separated pruning methods: tcp (unstructured) and tcp_block (in "
                   "channel blocks) for untrained models; with --runs, any it trained, "
                   "small_dense included (the shape chosen on validation). Default: "
                   "tcp,tcp_block, or with --runs those of the two it trained.")
@click.option("--quantizations", default="none", show_default=True,
              help="Comma-separated TFLite quantizations: none, fp16, dynamic, int8, int16x8 "
                   "(int8 and int16x8 calibrated on seeded random inputs).")
@click.option("--rounds", default=5, type=click.IntRange(1))
@click.option("--invocations", default=50, type=click.IntRange(1),
              help="Model invocations per timing.")
@click.option("--out", "out_dir", default="runs/bench/export", type=click.Path(file_okay=False))
def export_bench(models, rates, runs, methods, quantizations, rounds, invocations,
                 out_dir) -> None:
    """LiteRT CPU latency, file size and GPU readiness at each rate, pruned and compacted,
    against dense: the static GPU checker and LiteRT's GPU engine (where installed) side by
    side.

    Writes OUT/results.json and OUT/results.md.
    """

    from keras_gcnprune.bench.export import ExportBench, export_table, run_export

    spec = ExportBench(models=parse_names(models), rates=rates, runs=runs,
                       methods=parse_names(methods) if methods else None,
                       quantizations=_quantizations(quantizations), rounds=rounds,
                       invocations=invocations)
    try:
        results = run_export(spec)
    except (ValueError, FileNotFoundError) as error:
        raise click.UsageError(str(error)) from None
    table = export_table(results)
    _save_and_show(out_dir, "export", spec, table, results)


@bench.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--dataset", default=None, help="Dataset spec (default: the run's).")
@click.option("--protocol", default=None,
              help="Protocol whose test clips make the stream (default: the run's).")
@click.option("--every", default=4, show_default=True, type=click.IntRange(1),
              help="Frames between model calls.")
@click.option("--window", default=None, type=click.IntRange(1),
              help="Frames in the ring buffer (default: the median training clip length).")
@click.option("--smoothing", default=0.5, show_default=True, type=click.FloatRange(0, 1,
                                                                               max_open=True),
              help="Weight of the previous smoothed scores (0: no smoothing).")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Least smoothed probability for a labelled decision.")
@click.option("--on-error", default="raise", show_default=True,
              type=click.Choice(ON_ERROR_CHOICES), help=ON_ERROR_HELP)
@click.option("--out", "out_dir", default="runs/bench/stream", type=click.Path(file_okay=False))
def stream(run, dataset, protocol, every, window, smoothing, threshold, on_error,
           out_dir) -> None:
    """The app loop on RUN's test clips played as one stream: streamed decisions against
    whole clips, and per-window latency on LiteRT's CPU runtime and GPU engine.

    Writes OUT/results.json and OUT/results.md.
    """

    from keras_gcnprune.bench.streaming import StreamBench, run_stream, stream_table

    spec = StreamBench(run, dataset, protocol, every, window, smoothing, threshold, on_error)
    results = run_stream(spec)
    table = stream_table(results)
    _save_and_show(out_dir, "stream", spec, table, results)


@bench.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--data", default=None, help="The SHREC'21 spec (default: the run's dataset).")
@click.option("--every", default=2, show_default=True, type=click.IntRange(1),
              help="Frames between model calls.")
@click.option("--window", default=None, type=click.IntRange(1),
              help="Frames in the ring buffer (default: the model's frames).")
@click.option("--smoothing", default=0.5, show_default=True,
              type=click.FloatRange(0, 1, max_open=True),
              help="Weight of the previous smoothed scores (0: no smoothing).")
@click.option("--threshold", default=DETECTION_THRESHOLD, show_default=True,
              type=click.FloatRange(0, 1),
              help="Least smoothed probability for a labelled decision.")
@click.option("--confirm", default=DETECTION_CONFIRM, show_default=True, type=click.IntRange(1),
              help="Decisions in a row that confirm a gesture.")
@click.option("--lag", default=None, type=click.IntRange(0),
              help="Frames from a gesture's start to its first confirming decision (default: "
                   "half the window).")
@click.option("--out", "out_dir", default="runs/bench/detect", type=click.Path(file_okay=False))
def detect(run, data, every, window, smoothing, threshold, confirm, lag, out_dir) -> None:
    """Gesture onsets in SHREC'21's continuous validation recordings, by the track's rule
    (label right, start inside the gesture or up to 20 frames early; false positives counted),
    with RUN exported for an app and the app's loop. Writes OUT/results.json and results.md."""

    from keras_gcnprune.bench.streaming import DetectionBench, detection_table, run_detection

    spec = DetectionBench(run, data, every, window, smoothing, threshold, confirm, lag)
    results = run_detection(spec)
    table = detection_table(results)
    _save_and_show(out_dir, "detect", spec, table, results)
