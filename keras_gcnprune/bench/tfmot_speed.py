"""Training step time of the Model Optimization Toolkit's `prune_low_magnitude`, against the
same tf_keras model trained dense: run in its own process by `gcnprune bench speed`.

The tf_keras model is AttentionGCN's arithmetic in stock layers the toolkit can wrap: each
joint's trajectory as features, a `Dense` projection (the attention kernel), mixing over the
joints by a fixed adjacency (the toolkit cannot prune our learned head adjacencies), batch
norm and ReLU, a `Dense` graph-convolution kernel over the adjacency subsets, batch norm and
ReLU, and the `Dense` classifier: the same prunable kernel shapes as `attention_gcn`.

Usage: `python path/to/tfmot_speed.py GRAPHS.npz STEPS ROUNDS BATCH CLASSES RATE` (run as a
file, not a module, so that the package, which imports Keras 3, is not imported); prints one
JSON line. It imports only numpy, TensorFlow, tf_keras and the toolkit.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np


def attention_gcn_equivalent(keras, tf, frames, attention, subsets, classes, heads=8,
                             head_channels=8, graph_channels=32):
    joints = attention.shape[0]
    inputs = keras.Input((frames, joints, 3))
    x = keras.layers.Permute((2, 1, 3))(inputs)
    x = keras.layers.Reshape((1, joints, frames * 3))(x)
    x = keras.layers.Dense(heads * head_channels, use_bias=False)(x)
    x = keras.layers.Lambda(lambda t: tf.einsum("nsvc,vw->nswc", t, attention))(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Dense(len(subsets) * graph_channels, use_bias=False)(x)
    x = keras.layers.Reshape((1, joints, len(subsets), graph_channels))(x)
    x = keras.layers.Lambda(lambda t: tf.einsum("nsvkc,kvw->nswc", t, subsets))(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Dropout(0.3)(keras.layers.Flatten()(x))
    return keras.Model(inputs, keras.layers.Dense(classes)(x))


def step_clock(keras):
    """A tf_keras callback timing the steps after the first (which traces)."""
    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.started = time.perf_counter()
            self.steps = batch

        def on_train_end(self, logs=None):
            self.seconds_per_step = (time.perf_counter() - self.started) / self.steps
    return StepClock()


def main(argv: list[str]) -> dict:
    adjacency_file, steps, rounds, batch_size, classes, rate = argv
    steps, rounds, batch_size, classes = int(steps), int(rounds), int(batch_size), int(classes)
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    graphs = np.load(adjacency_file)
    attention = tf.constant(graphs["attention"], tf.float32)
    subsets = tf.constant(graphs["subsets"], tf.float32)
    frames = int(graphs["frames"])
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * batch_size, frames, attention.shape[0], 3)).astype("float32")
    y = rng.integers(0, classes, steps * batch_size)
    dense = attention_gcn_equivalent(keras, tf, frames, attention, subsets, classes)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        attention_gcn_equivalent(keras, tf, frames, attention, subsets, classes),
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(float(rate), begin_step=1,
                                                               frequency=100))
    variants = {"dense": (dense, []),
                "prune_low_magnitude": (pruned, [tfmot.sparsity.keras.UpdatePruningStep()])}
    for model, _ in variants.values():
        model.compile(keras.optimizers.Adam(1e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (model, callbacks) in variants.items():
            clock = step_clock(keras)
            model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False,
                      callbacks=[*callbacks, clock])
            times[name].append(clock.seconds_per_step)
    dense_s = statistics.median(times["dense"])
    pruned_s = statistics.median(times["prune_low_magnitude"])
    return {"dense_ms_per_step": round(dense_s * 1000, 3),
            "pruned_ms_per_step": round(pruned_s * 1000, 3),
            "ratio": round(pruned_s / dense_s, 3),
            "parameters": int(dense.count_params()),
            "tfmot": tfmot.__version__, "tf_keras": keras.__version__}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
