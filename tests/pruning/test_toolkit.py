"""Stock Keras layers made prunable by `prune_low_magnitude` (the Model Optimization Toolkit's
API): the same masks as the toolkit, the reachability oracle, TCP, multi-rate pruning,
compaction and `strip_pruning` back to stock layers."""

import importlib.util
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_gcnprune.layers import MaskedConv1D, MaskedConv2D, MaskedDense, MaskedDepthwiseConv2D
from keras_gcnprune.pruning import (
    ConstantSparsity,
    MagnitudePruning,
    MultiRateModel,
    MultiRatePruning,
    PolynomialDecay,
    UpdatePruningStep,
    assign_masks,
    compact,
    disconnected_fraction,
    extract,
    prunable_weights,
    prune_low_magnitude,
    reachability,
    strip_pruning,
    topologically_consistent_masks,
)
from keras_gcnprune.reports import model_costs
from tests.pruning.test_topology import oracle_on_path, random_masks


def classifier(seed: int = 0) -> keras.Model:
    """The toolkit's tutorial shape: Conv2D, pooling, Flatten, Dense."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((10, 10, 1)),
        keras.layers.Conv2D(6, 3, activation="relu", name="conv"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(12, activation="relu", name="hidden"),
        keras.layers.Dense(4, name="logits"),
    ])


def residual_convnet(seed: int = 0, pooling=keras.layers.AveragePooling1D) -> keras.Model:
    """Conv1D, Conv2D, depthwise and separable chains with batch norm (shifted, so removed
    channels leave constants), a residual add, window pooling, a strided convolution and global
    pooling. (The oracle needs average pooling: a max pooling's gradient reaches one element of
    a window, though any of them can be its maximum.)"""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 2))
    x = keras.layers.Conv2D(8, 3, padding="same", name="first")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="doubling")(x)
    x = keras.layers.Conv2D(12, 3, strides=2)(x)
    x = keras.layers.SeparableConv2D(12, 3, padding="same", depth_multiplier=2,
                                     name="separable")(x)
    x = keras.layers.Reshape((4, 12))(x)
    x = keras.layers.Conv1D(10, 3, padding="same", activation="relu")(x)
    x = pooling(2)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.beta.assign(np.linspace(-1, 1, 8).astype("float32"))
            layer.moving_mean.assign(np.full(8, 0.3, "float32"))
    return model


def inputs_for(model, count=6, seed=1):
    shape = (count, *model.input_shape[1:])
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def test_stock_layers_become_their_prunable_forms_with_the_same_weights_and_names():
    model = classifier()
    pruned = prune_low_magnitude(model)
    assert [type(layer) for layer in pruned.layers] == [
        MaskedConv2D, keras.layers.MaxPooling2D, keras.layers.Flatten, MaskedDense, MaskedDense]
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in model.layers]
    x = inputs_for(model)
    np.testing.assert_allclose(pruned(x).numpy(), model(x).numpy(), atol=1e-6, rtol=0)
    pruned.get_layer("hidden").kernel.assign(np.zeros((96, 12), "float32"))
    assert np.any(model.get_layer("hidden").kernel.numpy())  # a clone, not shared


def test_layers_and_lists_of_layers_are_made_prunable_unbuilt():
    conv, dense = prune_low_magnitude([keras.layers.Conv1D(4, 3, name="c"),
                                       keras.layers.Dense(2, name="d")])
    assert (type(conv), type(dense), conv.name, dense.name) == (MaskedConv1D, MaskedDense,
                                                                 "c", "d")
    assert conv(np.zeros((1, 8, 3), "float32")).shape == (1, 6, 4)


@pytest.mark.parametrize("layer, match", [
    (keras.layers.Conv3D(4, 3, name="volume"), r"'volume' \(Conv3D\)"),
    (keras.layers.LSTM(4, name="lstm"), r"'lstm' \(LSTM\)"),
])
def test_a_layer_without_a_prunable_form_is_named(layer, match):
    inputs = keras.Input((6, 6, 6, 2)) if layer.name == "volume" else keras.Input((6, 2))
    model = keras.Model(inputs, layer(inputs))
    with pytest.raises(ValueError, match=match):
        prune_low_magnitude(model)


@pytest.mark.parametrize("make, option", [
    (lambda: keras.layers.Conv2D(4, 3, dilation_rate=2), "dilation_rate"),
    (lambda: keras.layers.Conv2D(4, 3, groups=2), "groups"),
    (lambda: keras.layers.Conv1D(4, 3, padding="causal"), "padding"),
    (lambda: keras.layers.Dense(4, kernel_constraint="non_neg"), "kernel_constraint"),
])
def test_options_a_prunable_form_cannot_honour_are_refused(make, option):
    with pytest.raises(ValueError, match=option):
        prune_low_magnitude(make())


def test_toolkit_options_off_their_defaults_are_refused():
    with pytest.raises(ValueError, match="block_size"):
        prune_low_magnitude(classifier(), block_size=(2, 2))
    with pytest.raises(TypeError, match="unexpected option 'sparsity'"):
        prune_low_magnitude(classifier(), sparsity=0.5)
    prune_low_magnitude(classifier(), block_size=[1, 1], block_pooling_type="AVG")


@pytest.mark.parametrize("rate", [0.5, 0.9, 0.97])
def test_reachability_of_stock_layers_agrees_with_the_oracle(rate):
    model = prune_low_magnitude(residual_convnet())
    masks = random_masks(model, rate, seed=int(rate * 100))
    used = reachability(model, masks).used
    for path, on_path in oracle_on_path(model, masks).items():
        np.testing.assert_array_equal(used[path] & (masks[path] > 0), on_path, err_msg=path)


def test_max_pooling_passes_paths_as_average_pooling_does():
    models = [prune_low_magnitude(residual_convnet(pooling=pooling))
              for pooling in (keras.layers.AveragePooling1D, keras.layers.MaxPooling1D)]
    weights = [[w.mask.path for w in prunable_weights(model)] for model in models]
    masks = random_masks(models[0], 0.9, seed=3)
    found = [reachability(models[0], masks).used, reachability(
        models[1], {theirs: masks[mine] for mine, theirs in zip(*weights)}).used]
    for mine, theirs in zip(*weights):
        np.testing.assert_array_equal(found[0][mine], found[1][theirs], err_msg=mine)


def test_nested_models_are_analysed_as_their_layers():
    def build(nested: bool):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 2))
        x = keras.layers.Conv2D(6, 3, activation="relu", name="outer")(inputs)
        block = [keras.layers.Conv2D(6, 3, padding="same", name="inner"),
                 keras.layers.BatchNormalization(name="norm")]
        if nested:
            x = keras.Sequential([keras.Input((6, 6, 6)), *block], name="block")(x)
        else:
            for layer in block:
                x = layer(x)
        x = keras.layers.GlobalMaxPooling2D()(x)
        return prune_low_magnitude(keras.Model(inputs, keras.layers.Dense(3, name="out")(x)))

    flat, nested = build(False), build(True)
    masks = random_masks(flat, 0.9, seed=5)
    in_block = {path: f"block/{path}" if path.startswith("inner/") else path for path in masks}
    expected = reachability(flat, masks).used
    found = reachability(nested, {in_block[path]: mask for path, mask in masks.items()}).used
    assert sorted(found) == sorted(in_block.values())
    for path in expected:
        np.testing.assert_array_equal(found[in_block[path]], expected[path], err_msg=path)
    assert model_costs(nested) == model_costs(flat)


def test_block_tcp_keeps_only_connected_weights_and_compaction_narrows_the_conv_chain():
    model = prune_low_magnitude(residual_convnet())
    assign_masks(model, topologically_consistent_masks(model, 0.95, block_density=0.5))
    assert disconnected_fraction(model) == 0.0
    small = compact(model)
    x = inputs_for(model)
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    assert model_costs(small)["parameters"] < model_costs(model)["parameters"]
    assert model_costs(small)["macs"] < model_costs(model)["macs"]
    # a depth multiplier of 2 keeps the channels on both of its sides
    assert small.get_layer("doubling").kernel.shape[2:] == (8, 2)
    assert small.get_layer("first").filters == small.get_layer("depthwise").kernel.shape[2] == 8


def test_a_depthwise_convolution_narrows_with_the_convolution_before_it():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(8, 3, name="first")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise")(x)
    x = keras.layers.Conv2D(6, 3, name="second")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = prune_low_magnitude(keras.Model(inputs, keras.layers.Dense(3)(x)))
    assign_masks(model, topologically_consistent_masks(model, 0.9, block_density=0.5))
    small = compact(model)
    x = inputs_for(model)
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    kept = small.get_layer("first").filters
    assert kept < 8
    assert small.get_layer("depthwise").kernel.shape == (3, 3, kept, 1)
    assert small.get_layer("second").kernel.shape[2] == kept


def test_a_depthwise_kernel_connects_each_input_channel_to_its_own_outputs():
    layer = MaskedDepthwiseConv2D(1, depth_multiplier=2)
    layer.build((None, 4, 4, 3))
    mask = np.ones((1, 1, 3, 2), "float32")
    mask[0, 0, 1, 0] = 0.0
    layer.kernel_mask.assign(mask)
    (weight,) = layer.masked_weights()
    np.testing.assert_array_equal(weight.connections(), [[1, 1, 0, 0, 0, 0],
                                                         [0, 0, 0, 1, 0, 0],
                                                         [0, 0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(weight.slice_channels(mask, np.array([0, 2]), None),
                                  mask[:, :, [0, 2]])

def test_multi_rate_pruning_trains_and_extracts_a_stock_model():
    network = prune_low_magnitude(classifier())
    trainer = MultiRateModel(network, rates=(0.5, 0.9), seed=0)
    trainer.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = inputs_for(network, count=16)
    trainer.fit(x, np.arange(16) % 4, batch_size=8, epochs=2, verbose=0,
                callbacks=[MultiRatePruning(PolynomialDecay(0.0, 0.9, 0, 3, frequency=1))])
    extracted = extract(trainer, 0.8)
    kept = sum(int(w.mask.numpy().sum()) for layer in extracted.layers
               for w in getattr(layer, "masked_weights", list)())
    total = sum(int(np.prod(w.mask.shape)) for layer in extracted.layers
                for w in getattr(layer, "masked_weights", list)())
    assert kept == pytest.approx(0.2 * total, rel=0.005)


def test_strip_pruning_gives_back_stock_layers_with_the_masks_baked_in(tmp_path):
    model = prune_low_magnitude(classifier(), ConstantSparsity(0.8, 0, frequency=1))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = inputs_for(model, count=8)
    model.fit(x, np.arange(8) % 4, batch_size=4, epochs=1, verbose=0,
              callbacks=[UpdatePruningStep()])
    stripped = strip_pruning(model)
    assert [type(layer) for layer in stripped.layers] == [
        keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.Flatten,
        keras.layers.Dense, keras.layers.Dense]
    np.testing.assert_allclose(stripped(x).numpy(), model(x).numpy(), atol=1e-6, rtol=0)
    hidden = stripped.get_layer("hidden").kernel.numpy()
    np.testing.assert_array_equal(hidden == 0, model.get_layer("hidden").kernel_mask.numpy() == 0)
    assert np.mean(hidden == 0) == pytest.approx(0.8, abs=0.01)
    stripped.save(tmp_path / "stripped.keras")
    restored = keras.models.load_model(tmp_path / "stripped.keras")
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=1e-6, rtol=0)


def test_update_pruning_step_refuses_a_model_that_prune_low_magnitude_never_saw(tmp_path):
    model = prune_low_magnitude(classifier())
    model.save(tmp_path / "pruned.keras")
    restored = keras.models.load_model(tmp_path / "pruned.keras")
    restored.compile("adam", "mse")
    with pytest.raises(ValueError, match="call prune_low_magnitude"):
        restored.fit(inputs_for(restored), np.zeros((6, 4)), verbose=0,
                     callbacks=[UpdatePruningStep()])
    again = prune_low_magnitude(restored, ConstantSparsity(0.5, 0, frequency=1))
    again.compile("adam", "mse")
    again.fit(inputs_for(again), np.zeros((6, 4)), verbose=0, callbacks=[UpdatePruningStep()])
    assert np.mean(again.get_layer("hidden").kernel_mask.numpy()) == pytest.approx(0.5, abs=0.01)


SCRIPT = """
import json, sys
import numpy as np
{imports}
weights = [np.array(w, dtype="float32") for w in json.loads(sys.argv[1])]
model = keras.Sequential([
    keras.Input((10, 10, 1)),
    keras.layers.Conv2D(6, 3, activation="relu"),
    keras.layers.MaxPooling2D(2),
    keras.layers.Flatten(),
    keras.layers.Dense(12, activation="relu"),
    keras.layers.Dense(4),
])
model.set_weights(weights)
schedule = sparsity.PolynomialDecay(0.0, 0.85, begin_step=0, end_step=6, frequency=2)
model = sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
model.compile(keras.optimizers.SGD(0.0), "mse")
rng = np.random.default_rng(1)
x, y = rng.standard_normal((8, 10, 10, 1)), rng.standard_normal((8, 4))
record = []
for _ in range(8):
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    record.append([w.numpy().tolist() for w in model.weights if "mask" in w.name])
model = sparsity.strip_pruning(model)
print(json.dumps(record))
"""
TOOLKIT_IMPORTS = "import tf_keras as keras\nimport tensorflow_model_optimization as tfmot\n" \
                  "sparsity = tfmot.sparsity.keras"
OUR_IMPORTS = "import keras\nfrom keras_gcnprune import pruning as sparsity"


def run_script(imports: str, weights) -> list:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(imports=imports),
         json.dumps([w.tolist() for w in weights])],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_model_optimization") is None,
                    reason="needs the tfmot extra: pip install -e '.[tfmot]'")
def test_a_toolkit_script_gives_the_same_masks_after_changing_its_imports():
    # Weights on a grid of distinct magnitudes: no ties, so the masks are one answer.
    rng = np.random.default_rng(0)
    weights = []
    for weight in classifier().get_weights():
        values = rng.permutation(weight.size).reshape(weight.shape) + 1.0
        weights.append((values * rng.choice([-1.0, 1.0], weight.shape) / weight.size)
                       .astype("float32"))
    theirs, ours = run_script(TOOLKIT_IMPORTS, weights), run_script(OUR_IMPORTS, weights)
    assert len(theirs) == len(ours) == 8
    for step, (a, b) in enumerate(zip(theirs, ours)):
        assert len(a) == len(b) == 3
        for layer, (mask_a, mask_b) in enumerate(zip(a, b)):
            np.testing.assert_array_equal(np.array(mask_a), np.array(mask_b),
                                          err_msg=f"step {step}, layer {layer}")
    assert 0.8 < 1 - np.mean([np.mean(m) for m in ours[-1]]) < 0.9


def test_layers_made_prunable_one_by_one_follow_their_own_schedules():
    keras.utils.set_random_seed(0)
    hidden = prune_low_magnitude(keras.layers.Dense(20, activation="relu", name="hidden"),
                                 ConstantSparsity(0.5, 0, frequency=1))
    logits = prune_low_magnitude(keras.layers.Dense(4, name="logits"),
                                 PolynomialDecay(0.0, 0.8, 0, 3, frequency=1))
    model = keras.Sequential([keras.Input((10,)), hidden, keras.layers.Dense(6), logits])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.random.default_rng(0).standard_normal((8, 10)).astype("float32")
    model.fit(x, np.zeros((8, 4)), batch_size=2, epochs=1, verbose=0,
              callbacks=[UpdatePruningStep()])
    assert np.mean(hidden.kernel_mask.numpy()) == pytest.approx(0.5)
    assert np.mean(logits.kernel_mask.numpy()) == pytest.approx(0.2, abs=0.02)
    assert type(strip_pruning(model).layers[2]) is keras.layers.Dense


def test_magnitude_pruning_of_a_stock_model_equals_update_pruning_step():
    schedule = PolynomialDecay(0.0, 0.7, 0, 4, frequency=1)
    models = [prune_low_magnitude(classifier(), schedule) for _ in range(2)]
    x = inputs_for(models[0], count=8)
    for model, callback in zip(models, [UpdatePruningStep(), MagnitudePruning(schedule)]):
        model.compile(keras.optimizers.SGD(0.0), "mse")
        model.fit(x, np.zeros((8, 4)), batch_size=2, epochs=1, verbose=0, callbacks=[callback])
    for a, b in zip(*(model.get_weights() for model in models)):
        np.testing.assert_array_equal(a, b)


def test_a_separable_convolution_keeps_its_outputs_strips_back_and_narrows_its_kernels():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 1, name="first")(inputs)
    x = keras.layers.SeparableConv2D(8, 3, strides=2, padding="same", depth_multiplier=2,
                                     activation="relu", name="separable")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    stock = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    model = prune_low_magnitude(stock)
    x = inputs_for(model)
    np.testing.assert_allclose(model(x).numpy(), stock(x).numpy(), atol=1e-6, rtol=0)
    assign_masks(model, topologically_consistent_masks(model, 0.9, block_density=0.5))
    assert disconnected_fraction(model) == 0.0
    small = compact(model)
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    kept_in, kept_out = small.get_layer("first").filters, small.get_layer("separable").filters
    assert kept_in < 6 and kept_out < 8
    separable = small.get_layer("separable")
    assert separable.depthwise_kernel.shape == (3, 3, kept_in, 2)
    assert separable.pointwise_kernel.shape == (1, 1, 2 * kept_in, kept_out)
    stripped = strip_pruning(model)
    assert type(stripped.get_layer("separable")) is keras.layers.SeparableConv2D
    np.testing.assert_allclose(stripped(x).numpy(), model(x).numpy(), atol=1e-6, rtol=0)
