"""Training step time with magnitude pruning and TCP, as ratios to dense training.

Usage (from the repository root):

    python benchmarks/pruning_step_time.py --models attention_gcn,stgcn --steps 200

For each model, dense training and pruning with each method at update frequencies 1 and 100 run
the same number of steps on the same data (SBU-sized inputs: 30 joints, 32 frames), in
interleaved rounds so that machine load affects all of them alike; the median step time of each
is divided by dense's. `tcp` is supervised TCP (the consistent mask and both surrogates in
every training step, plus the selection at each update); `tcp_selection` is the selection
alone. The clock starts after the first step of each `fit`, which traces the train function
(TCP retraces it once per `fit` to add its supervision); the first mask update is at step 2.
All variants train the same model instance, its masks reset to ones before each (the dense
arithmetic costs the same whatever the masks hold): separate but identical instances were seen
to differ by up to 30% in step time on this 2-core machine, which would swamp the effect
measured.
Prints one JSON object and a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import keras
import numpy as np

from keras_gcnprune import models
from keras_gcnprune.pruning import ConstantSparsity, prunable_weights, pruning_callback

VARIANTS = [  # (label, method, supervision, update frequency)
    ("dense", None, None, None),
    ("magnitude", "magnitude", None, 1), ("magnitude", "magnitude", None, 100),
    ("tcp", "tcp", "both", 1), ("tcp", "tcp", "both", 100),
    ("tcp_selection", "tcp", "none", 1), ("tcp_selection", "tcp", "none", 100),
]


class StepClock(keras.callbacks.Callback):
    """Seconds per step from the end of the first step (tracing) to the end of training."""

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if batch == 0:
            self.started = time.perf_counter()
        self.steps = batch

    def on_train_end(self, logs=None) -> None:
        self.seconds_per_step = (time.perf_counter() - self.started) / self.steps


def make_model(name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = models.build(name, "sbu_pair", num_classes=8, frames=32)
    model.compile(keras.optimizers.AdamW(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def seconds_per_step(model, callbacks, x, y, steps: int, batch_size: int) -> float:
    samples = steps * batch_size
    clock = StepClock()
    model.fit(x[:samples], y[:samples], batch_size=batch_size, epochs=1, verbose=0,
              shuffle=False, callbacks=[*callbacks, clock])
    return clock.seconds_per_step


def measure(name: str, steps: int, rounds: int, batch_size: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * batch_size, 32, 30, 3)).astype("float32")
    y = rng.integers(0, 8, steps * batch_size)
    model = make_model(name)
    model.fit(x[:batch_size * 2], y[:batch_size * 2], batch_size=batch_size, verbose=0)
    times = {(label, frequency): [] for label, _, _, frequency in VARIANTS}
    for _ in range(rounds):
        for label, method, supervision, frequency in VARIANTS:
            for weight in prunable_weights(model):
                weight.mask.assign(np.ones(weight.mask.shape, "float32"))
            callbacks = [] if method is None else [pruning_callback(
                method, ConstantSparsity(0.95, begin_step=2, frequency=frequency),
                supervision=supervision or "both")]
            times[(label, frequency)].append(
                seconds_per_step(model, callbacks, x, y, steps, batch_size))
    dense = statistics.median(times[("dense", None)])
    return {
        "model": name,
        "parameters": int(model.count_params()),
        "dense_ms_per_step": round(dense * 1000, 2),
        "ratios": {
            f"{label}_f{frequency}": round(statistics.median(times[(label, frequency)]) / dense,
                                           3)
            for label, frequency in times if label != "dense"
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="attention_gcn,stgcn")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    results = [measure(name, args.steps, args.rounds, args.batch_size)
               for name in args.models.split(",")]
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                      "keras": keras.__version__, "steps": args.steps, "rounds": args.rounds,
                      "results": results}))
    columns = [f"{label}_f{frequency}" for label, _, _, frequency in VARIANTS[1:]]
    print("\n| model | params | dense ms/step | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for r in results:
        print(f"| {r['model']} | {r['parameters']:,} | {r['dense_ms_per_step']} | "
              + " | ".join(f"{r['ratios'][c]:.2f}x" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
