"""Training step time of every pruning method as a ratio to dense training, in one run.

Dense training and each method train the same number of steps on the same data (SBU-sized
inputs by default: `sbu_pair`, 30 joints, 32 frames), in interleaved rounds so that machine load
affects them alike; the median step time of each is divided by dense's. Every method runs with
the schedule a real run uses (`PruningConfig.schedule` over the measured steps); mrmp trains
six rates. The clock starts after the first step of each `fit`, which traces the train function.
All variants train the same network instance, its masks reset to ones before each (separate
but identical instances were seen to differ by up to 30% in step time on a 2-core machine,
which would swamp the effect measured). The Model Optimization Toolkit's
`prune_low_magnitude` is timed against its own dense model in a separate process (it needs
tf_keras; see `keras_gcnprune.bench.tfmot_speed`).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_gcnprune import models
from keras_gcnprune.graphs import build_adjacency, get_layout
from keras_gcnprune.pruning import prunable_weights, pruning_callback
from keras_gcnprune.reports import model_costs
from keras_gcnprune.training import PruningConfig

SPEED_METHODS = ("dense", "magnitude", "tcp", "srmp", "mrmp")
MRMP_RATES = (0.8, 0.9, 0.95, 0.98, 0.99, 0.995)


@dataclass
class SpeedBench:
    """What `run_speed` measures.

    Args:
        models: Model names for `keras_gcnprune.models.build`.
        layout: Skeleton layout of the inputs.
        frames: Frames per sequence.
        classes: Classes of the classifier.
        steps: Training steps per measurement.
        rounds: Interleaved rounds (the median is kept).
        batch_size: Sequences per step.
        rate: Pruning rate of every method (mrmp: `MRMP_RATES`, whose largest is 0.995).
        tfmot: Also time the Model Optimization Toolkit (attention_gcn only), when installed.
    """

    models: tuple[str, ...] = ("attention_gcn", "stgcn")
    layout: str = "sbu_pair"
    frames: int = 32
    classes: int = 8
    steps: int = 100
    rounds: int = 3
    batch_size: int = 32
    rate: float = 0.95
    tfmot: bool = True


class StepClock(keras.callbacks.Callback):
    """Seconds per step from the end of the first step (tracing) to the end of training."""

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if batch == 0:
            self.started = time.perf_counter()
        self.steps = batch

    def on_train_end(self, logs=None) -> None:
        self.seconds_per_step = (time.perf_counter() - self.started) / max(self.steps, 1)


def _compiled(model: keras.Model) -> keras.Model:
    model.compile(keras.optimizers.AdamW(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _trainer_and_callbacks(network: keras.Model, method: str, rate: float, steps: int):
    if method == "dense":
        return _compiled(network), []
    config = (PruningConfig(method="mrmp", rates=MRMP_RATES) if method == "mrmp"
              else PruningConfig(method=method, rate=rate))
    trainer = _compiled(config.trainer(network, seed=0, fresh=False))
    return trainer, [pruning_callback(method, config.schedule(steps))]


def _seconds_per_step(network, method, rate, x, y, batch_size) -> float:
    for weight in prunable_weights(network):
        weight.mask.assign(np.ones(weight.mask.shape, "float32"))
    steps = len(x) // batch_size
    trainer, callbacks = _trainer_and_callbacks(network, method, rate, steps)
    clock = StepClock()
    trainer.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False,
                callbacks=[*callbacks, clock])
    return clock.seconds_per_step


def measure_model(bench: SpeedBench, name: str) -> dict:
    """Median step time of every method on one model, as ratios to dense."""
    rng = np.random.default_rng(0)
    joints = get_layout(bench.layout).num_joints
    samples = bench.steps * bench.batch_size
    x = rng.standard_normal((samples, bench.frames, joints, 3)).astype("float32")
    y = rng.integers(0, bench.classes, samples)
    keras.utils.set_random_seed(0)
    network = models.build(name, bench.layout, num_classes=bench.classes, frames=bench.frames)
    times = {method: [] for method in SPEED_METHODS}
    for _ in range(bench.rounds):
        for method in SPEED_METHODS:
            times[method].append(
                _seconds_per_step(network, method, bench.rate, x, y, bench.batch_size))
    dense = statistics.median(times["dense"])
    return {
        "model": name,
        "parameters": model_costs(network)["parameters"],  # weights, masks not counted
        "dense_ms_per_step": round(dense * 1000, 2),
        "ratios": {m: round(statistics.median(times[m]) / dense, 3)
                   for m in SPEED_METHODS if m != "dense"},
    }


def measure_tfmot(bench: SpeedBench) -> dict:
    """The toolkit's pruned/dense step-time ratio, from its own process, or why it was not
    measured."""
    if importlib.util.find_spec("tensorflow_model_optimization") is None:
        return {"skipped": "the tfmot extra is not installed: pip install "
                           "'keras-gcnprune[tfmot]'"}
    layout = get_layout(bench.layout)
    with tempfile.TemporaryDirectory() as folder:
        graphs = Path(folder) / "graphs.npz"
        np.savez(graphs, attention=build_adjacency(layout, "uniform")[0],
                 subsets=build_adjacency(layout, "spatial"), frames=bench.frames)
        script = Path(__file__).with_name("tfmot_speed.py")
        done = subprocess.run(
            [sys.executable, str(script), str(graphs), str(bench.steps), str(bench.rounds),
             str(bench.batch_size), str(bench.classes), str(bench.rate)],
            capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"The toolkit's timing process failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_speed(bench: SpeedBench) -> dict:
    """Measures every model, and the toolkit when asked and installed.

    Returns:
        `{"results": [per model], "tfmot": {...}}`.

    Example:
        >>> run_speed(SpeedBench(models=("attention_gcn",), steps=20))  # doctest: +SKIP
    """
    results = {"results": [measure_model(bench, name) for name in bench.models]}
    if bench.tfmot and "attention_gcn" in bench.models:
        results["tfmot"] = measure_tfmot(bench)
    return results


def speed_table(results: dict) -> str:
    """Markdown: dense step time and every method's ratio to it; the toolkit's ratio."""
    methods = [m for m in SPEED_METHODS if m != "dense"]
    lines = ["| model | parameters | dense ms/step | " + " | ".join(methods) + " |",
             "|---|---|---|" + "---|" * len(methods)]
    for r in results["results"]:
        lines.append(f"| {r['model']} | {r['parameters']:,} | {r['dense_ms_per_step']} | "
                     + " | ".join(f"{r['ratios'][m]:.2f}x" for m in methods) + " |")
    toolkit = results.get("tfmot")
    if toolkit and "ratio" in toolkit:
        lines += ["", f"Model Optimization Toolkit `prune_low_magnitude` on the equivalent "
                      f"tf_keras AttentionGCN ({toolkit['parameters']:,} parameters), own "
                      f"process: {toolkit['dense_ms_per_step']} ms/step dense, "
                      f"**{toolkit['ratio']:.2f}x** pruned."]
    elif toolkit:
        lines += ["", f"Model Optimization Toolkit: not measured ({toolkit['skipped']})."]
    return "\n".join(lines) + "\n"
