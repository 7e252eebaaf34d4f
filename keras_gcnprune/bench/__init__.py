"""Benchmarks on real data: accuracy against pruning rate, training speed, export size and
latency, each written as `results.json`, a Markdown table and plots (`gcnprune bench`)."""

from keras_gcnprune.bench.accuracy import (
    PRESETS,
    AccuracyBench,
    AccuracyResults,
    TrainingsFailed,
    run_accuracy,
)
from keras_gcnprune.bench.progress import Progress
from keras_gcnprune.bench.results import load_results, summarise_accuracy

__all__ = [
    "PRESETS",
    "AccuracyBench",
    "AccuracyResults",
    "Progress",
    "load_results",
    "TrainingsFailed",
    "run_accuracy",
    "summarise_accuracy",
]
