import importlib.util
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_gcnprune.layers import MaskedDense
from keras_gcnprune.pruning import (
    ConstantSparsity,
    MagnitudePruning,
    PolynomialDecay,
    magnitude_mask,
    prunable_weights,
    realized_rate,
)
from keras_gcnprune.pruning.schedules import evaluate_schedule


def test_schedules_follow_the_toolkit_arithmetic():
    schedule = PolynomialDecay(0.2, 0.9, begin_step=10, end_step=110, power=3, frequency=25)
    assert schedule(9) == (False, pytest.approx(0.2))
    assert schedule(10) == (True, pytest.approx(0.2))
    assert schedule(35)[0] and schedule(35)[1] == pytest.approx(0.7 * (1 - 0.25) ** 3 * -1 + 0.9)
    assert schedule(36)[0] is False
    assert schedule(110) == (True, pytest.approx(0.9))
    assert schedule(135) == (False, pytest.approx(0.9))  # past end_step: no more pruning
    constant = ConstantSparsity(0.5, begin_step=0, end_step=-1, frequency=3)
    assert [constant(step)[0] for step in range(7)] == [True, False, False, True, False, False,
                                                        True]


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="sparsity"):
        ConstantSparsity(1.0)
    with pytest.raises(ValueError, match="end_step"):
        PolynomialDecay(0.0, 0.5, begin_step=10, end_step=5)
    with pytest.raises(TypeError, match="callable"):
        MagnitudePruning(0.9)


def test_any_callable_schedule_is_accepted_by_duck_typing():
    assert evaluate_schedule(lambda step: (np.bool_(step == 3), np.float32(0.25)), 3) == (
        True, 0.25)


def test_magnitude_mask_keeps_the_toolkit_count_and_ties():
    values = np.array([[0.1, -0.5, 0.3], [0.3, 0.0, -0.2]])
    np.testing.assert_array_equal(magnitude_mask(values, 0.5), [[0, 1, 1], [1, 0, 0]])
    # k = round(6 * 0.4) = 2; the second largest is 0.3, which a tie doubles: 3 kept.
    np.testing.assert_array_equal(magnitude_mask(values, 0.6), [[0, 1, 1], [1, 0, 0]])
    assert magnitude_mask(values, 0.99).sum() == 1  # at least one weight stays


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16,))
    x = MaskedDense(12, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, MaskedDense(5, name="logits")(x))


def quantised_weights(model, seed=0):
    """Sets kernels and biases to multiples of 1/4 (many ties); returns them in Dense order."""
    rng = np.random.default_rng(seed)
    weights = []
    for layer in model.layers[1:]:
        for variable in (layer.kernel, layer.bias):
            value = (np.round(rng.standard_normal(variable.shape) * 4) / 4).astype("float32")
            variable.assign(value)
            weights.append(value)
    return weights


def fit_steps(model, callback, steps, learning_rate=0.0, record=None):
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 16)), rng.standard_normal((8, 5))
    for _ in range(steps):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
        if record is not None:
            record.append([w.mask.numpy().tolist() for w in prunable_weights(model)])


def test_callback_prunes_layerwise_on_schedule_and_zeroes_pruned_weights():
    model = small_model()
    callback = MagnitudePruning(PolynomialDecay(0.0, 0.75, 0, 4, power=1, frequency=2))
    fit_steps(model, callback, 5, learning_rate=0.01)
    for weight in prunable_weights(model):
        mask = weight.mask.numpy()
        assert mask.mean() == pytest.approx(0.25, abs=0.02)
        assert np.all(weight.kernel.numpy()[mask == 0] == 0)
    assert realized_rate(prunable_weights(model)) == pytest.approx(0.75, abs=0.01)


def test_global_scope_shares_one_normalised_threshold():
    model = small_model()
    fit_steps(model, MagnitudePruning(ConstantSparsity(0.8, frequency=1), scope="global"), 1)
    assert realized_rate(prunable_weights(model)) == pytest.approx(0.8, abs=0.01)


def test_schedule_continues_after_save_and_load(tmp_path):
    model = small_model()
    schedule = PolynomialDecay(0.0, 0.8, 0, 6, power=1, frequency=1)
    fit_steps(model, MagnitudePruning(schedule), 3, learning_rate=0.01)
    model.save(tmp_path / "pruned.keras")
    restored = keras.models.load_model(tmp_path / "pruned.keras")
    assert int(restored.get_layer("hidden").pruning_step.numpy()) == 3
    restored.compile(keras.optimizers.SGD(0.01), "mse")  # a new optimizer keeps the step
    for original, loaded in zip(prunable_weights(model), prunable_weights(restored)):
        np.testing.assert_array_equal(original.mask.numpy(), loaded.mask.numpy())
    rng = np.random.default_rng(1)
    restored.fit(rng.standard_normal((32, 16)), rng.standard_normal((32, 5)), batch_size=8,
                 epochs=1, verbose=0, callbacks=[MagnitudePruning(schedule)])
    assert realized_rate(prunable_weights(restored)) == pytest.approx(schedule(6)[1], abs=0.02)


TOOLKIT_SCRIPT = """
import json, sys
import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras
weights = [np.array(w, dtype="float32") for w in json.loads(sys.argv[1])]
schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.85, begin_step=0, end_step=6, power=2,
                                                frequency=2)
inputs = keras.Input((16,))
x = keras.layers.Dense(12, activation="relu")(inputs)
model = keras.Model(inputs, keras.layers.Dense(5)(x))
model.set_weights(weights)
model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
model.compile(keras.optimizers.SGD(0.0), "mse")
rng = np.random.default_rng(1)
x, y = rng.standard_normal((8, 16)), rng.standard_normal((8, 5))
record = []
for _ in range(8):
    model.fit(x, y, batch_size=8, epochs=1, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    masks = [w for w in model.weights if "mask" in w.name]
    record.append([m.numpy().tolist() for m in masks])
print(json.dumps(record))
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_model_optimization") is None,
                    reason="needs the tfmot extra: pip install -e '.[tfmot]'")
def test_masks_identical_to_the_model_optimization_toolkit():
    model = small_model()
    weights = quantised_weights(model)
    script = subprocess.run(
        [sys.executable, "-c", TOOLKIT_SCRIPT, json.dumps([w.tolist() for w in weights])],
        capture_output=True, text=True, timeout=300,
    )
    assert script.returncode == 0, script.stderr[-3000:]
    toolkit = json.loads(script.stdout.strip().splitlines()[-1])
    ours = []
    fit_steps(model, MagnitudePruning(PolynomialDecay(0.0, 0.85, 0, 6, power=2, frequency=2)),
              8, record=ours)
    assert len(toolkit) == len(ours) == 8
    for step, (theirs, mine) in enumerate(zip(toolkit, ours)):
        for layer, (a, b) in enumerate(zip(theirs, mine)):
            np.testing.assert_array_equal(np.array(a), np.array(b),
                                          err_msg=f"step {step}, layer {layer}")
    assert 0.8 < 1 - np.mean([np.mean(m) for m in ours[-1]]) < 0.9


def test_steps_per_execution_counts_every_step_and_reaches_the_last_turn():
    model = small_model()
    # Turns at steps 1, 4, 7, 10: with 4 steps per execution the hooks see steps 1, 5, 9.
    schedule = PolynomialDecay(0.0, 0.8, 1, 10, power=1, frequency=3)
    model.compile(keras.optimizers.SGD(0.01), "mse", steps_per_execution=4)
    rng = np.random.default_rng(1)
    model.fit(rng.standard_normal((96, 16)), rng.standard_normal((96, 5)), batch_size=8,
              epochs=1, verbose=0, callbacks=[MagnitudePruning(schedule)])
    assert int(model.get_layer("hidden").pruning_step.numpy()) == 12 == \
        int(model.optimizer.iterations.numpy())
    assert realized_rate(prunable_weights(model)) == pytest.approx(0.8, abs=0.01)
