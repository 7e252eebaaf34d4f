"""`gcnprune bench`: accuracy against pruning rate, training speed and export benchmarks."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace

import click

from keras_gcnprune.cli.options import DATASET_HELP, PROTOCOL_HELP, parse_rates


def _command_line() -> str:
    return "gcnprune " + shlex.join(sys.argv[1:])


def _methods(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(m.strip() for m in value.split(",") if m.strip())


@click.group()
def bench() -> None:
    """Benchmarks with tables and plots: accuracy vs rate, speed, export."""


@bench.command()
@click.option("--quick", is_flag=True,
              help="The quick preset: SBU, 5 folds, 1 seed, 40 epochs, rates 0.9,0.98,0.995, "
                   "every method (about 15 minutes on 2 CPU cores). Without it: the full "
                   "preset (all folds, 3 seeds, 80 epochs, 7 rates). Options given override.")
@click.option("--dataset", default=None, help=DATASET_HELP + " Default: sbu.")
@click.option("--protocol", "protocols", multiple=True,
              help=PROTOCOL_HELP.replace("Default: the dataset's first protocol.",
                                         "Repeatable. Default: every one of the dataset's."))
@click.option("--model", "model_name", default=None, help="Model name. Default: attention_gcn.")
@click.option("--methods", default=None,
              help="Comma-separated: dense, magnitude, tcp, srmp, mrmp, or a TCP ablation "
                   "tcp_accessibility, tcp_coaccessibility, tcp_feedback, tcp_none. "
                   "Default: dense,magnitude,tcp,srmp,mrmp.")
@click.option("--rates", default=None, callback=lambda _, __, value: parse_rates(value),
              help="Comma-separated pruning rates. Default: 0.5,0.7,0.9,0.95,0.98,0.99,0.995.")
@click.option("--seeds", default=None, type=click.IntRange(1), help="Seeds per run. Default: 3.")
@click.option("--epochs", default=None, type=click.IntRange(1), help="Default: 80.")
@click.option("--frames", default=None, type=click.IntRange(1), help="Default: 32.")
@click.option("--unseen", default=None, callback=lambda _, __, value: parse_rates(value),
              help="Rates never trained, extracted from every mrmp training to check their "
                   "realized rate.")
@click.option("--rates-per-step", default=None, type=click.IntRange(1),
              help="Rates evaluated per mrmp training step. Default: all.")
@click.option("--out", "out_dir", default="runs/bench/accuracy",
              type=click.Path(file_okay=False),
              help="Output folder; rerunning with the same folder skips finished runs.")
def accuracy(quick, dataset, protocols, model_name, methods, rates, seeds, epochs, frames,
             unseen, rates_per_step, out_dir) -> None:
    """Accuracy against pruning rate for every method, fold or split and seed.

    Writes OUT/results.json, OUT/results.md and OUT/accuracy_vs_rate.png,
    OUT/disconnected_vs_rate.png after every training; rerun the same command to continue an
    interrupted benchmark.
    """
    from keras_gcnprune.bench import PRESETS, run_accuracy

    protocols = tuple(p for value in protocols for p in value.split(",") if p)
    overrides = {"dataset": dataset, "protocols": protocols or None, "model": model_name,
                 "methods": _methods(methods), "rates": rates, "seeds": seeds,
                 "epochs": epochs, "frames": frames, "unseen": unseen,
                 "rates_per_step": rates_per_step}
    preset = PRESETS["quick" if quick else "full"]
    try:
        spec = replace(preset, **{k: v for k, v in overrides.items() if v is not None})
        results = run_accuracy(spec, out_dir, command=_command_line())
    except (ValueError, FileNotFoundError) as error:
        raise click.UsageError(str(error)) from None
    click.echo("\n" + results.table)
    click.echo("Written: " + ", ".join(str(p) for p in results.files.values()))
