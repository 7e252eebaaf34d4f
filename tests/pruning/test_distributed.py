"""Mask updates under tf.distribute.MirroredStrategy with two logical CPU devices."""

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from keras_gcnprune import models
from keras_gcnprune.pruning import PolynomialDecay, prunable_weights, pruning_callback

def run(distributed, method, learning_rate):
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if distributed \\
        else tf.distribute.get_strategy()
    with strategy.scope():
        model = models.build("attention_gcn", "sbu", num_classes=3, frames=8, heads=2,
                             head_channels=4, graph_channels=8)
        model.compile(keras.optimizers.SGD(learning_rate),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8, 15, 3)).astype("float32")
    y = rng.integers(0, 3, 32)
    schedule = PolynomialDecay(0.5, 0.9, begin_step=1, end_step=3, power=1, frequency=2)
    callback = pruning_callback(method, schedule)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    masks = {}
    for weight in prunable_weights(model):
        replicas = getattr(weight.mask.value, "values", None) or [weight.mask.value]
        values = [np.asarray(v) for v in replicas]
        assert all(np.array_equal(values[0], v) for v in values), "replicas disagree"
        masks[weight.mask.path] = values[0].tolist()
    return masks, len(replicas)

method = sys.argv[1]
single, _ = run(False, method, 0.0)
mirrored, replicas = run(True, method, 0.0)
run(True, method, 0.05)  # training for real: the replicas must still agree (asserted inside)
print(json.dumps({"single": single, "mirrored": mirrored, "replicas": replicas}))
"""


@pytest.mark.parametrize("method", ["magnitude", "tcp"])
def test_masks_under_mirrored_strategy_equal_single_device(method):
    # With learning rate 0 both runs see the same weights at every pruning turn, so their
    # masks must be equal; with real training the cross-replica reduction changes float
    # rounding, so only the agreement of the replicas with each other is required.
    result = subprocess.run([sys.executable, "-c", SCRIPT, method], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["replicas"] == 2
    assert data["single"].keys() == data["mirrored"].keys()
    for path, mask in data["single"].items():
        assert mask == data["mirrored"][path], path
    kept = sum(sum(map(sum, _flat(m))) for m in data["single"].values())
    assert kept > 0


def _flat(mask):
    while isinstance(mask[0][0], list):
        mask = [row for block in mask for row in block]
    return mask
