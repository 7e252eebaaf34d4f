"""Accessibility, co-accessibility and TCP selection, checked against an independent oracle.

The oracle never uses keras_gcnprune.pruning: it runs the real Keras model as its non-negative
shadow (kernels 1 under their masks, learned adjacencies and offsets replaced by their support,
biases 0, batch norm as the identity), feeds ones and differentiates the sum of the logits with
respect to every kernel. All factors are non-negative, so a kept weight gets a positive gradient
exactly when an input-to-output path goes through it.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gcnprune import models
from keras_gcnprune.graphs import build_adjacency
from keras_gcnprune.layers import GraphAttention, GraphConv, MaskedLayer
from keras_gcnprune.pruning import (
    consistent_masks,
    current_masks,
    disconnected_fraction,
    prunable_weights,
    reachability,
    topologically_consistent_masks,
)


def small_stgcn():
    """A small ST-GCN whose learned adjacency offsets are nonzero, as after training (a zero
    offset entry carries nothing, kept or not)."""
    model = models.build("stgcn", "sbu", num_classes=3, frames=8, widths=(6, 12, 12),
                         strides=(1, 2, 1), temporal_kernel=3)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, GraphConv) and layer.adjacency_offset is not None:
            shape = layer.adjacency_offset.shape
            layer.adjacency_offset.assign(0.01 * rng.standard_normal(shape).astype("float32"))
    return model


SMALL_MODELS = {
    "attention_gcn": lambda: models.build("attention_gcn", "sbu", num_classes=3, frames=8,
                                          heads=4, head_channels=6, graph_channels=12),
    "stgcn": small_stgcn,
}


def oracle_on_path(model, masks):
    """Kept entries of every masked weight that lie on an input-to-output path, by mask path."""
    shadow = keras.models.clone_model(model)
    shadow.set_weights(model.get_weights())
    kernels = {}
    for original, layer in zip(model.layers, shadow.layers):
        if isinstance(layer, keras.layers.BatchNormalization):
            for name in ("gamma", "moving_variance"):
                getattr(layer, name).assign(np.ones(layer.gamma.shape, "float32"))
            for name in ("beta", "moving_mean"):
                getattr(layer, name).assign(np.zeros(layer.gamma.shape, "float32"))
        if not isinstance(layer, MaskedLayer):
            continue
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
        for mine, theirs in zip(layer.masked_weights(), original.masked_weights()):
            mask = masks.get(theirs.mask.path, theirs.mask.numpy())
            value = (theirs.kernel.numpy() != 0) if mine.role == "adjacency" else 1.0
            mine.kernel.assign(np.broadcast_to(value, mine.kernel.shape).astype("float32"))
            mine.mask.assign(mask)
            kernels[theirs.mask.path] = (mine.kernel, mask)
    ones = np.ones((1, *model.input_shape[1:]), "float32")
    variables = [kernel for kernel, _ in kernels.values()]
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(shadow(ones, training=False))
    gradients = tape.gradient(total, variables)
    return {
        path: (gradient.numpy() > 0) & (mask > 0)
        for (path, (_, mask)), gradient in zip(kernels.items(), gradients)
    }


def random_masks(model, rate, seed):
    rng = np.random.default_rng(seed)
    return {w.mask.path: (rng.random(w.mask.shape) >= rate).astype("float32")
            for w in prunable_weights(model, include_adjacency=True)}


def train_briefly(model):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, *model.input_shape[1:])).astype("float32")
    model.fit(x, rng.integers(0, 3, 32), epochs=2, batch_size=8, verbose=0)


def realized_rate(model, masks):
    weights = prunable_weights(model)
    kept = sum(masks[w.mask.path].sum() for w in weights)
    return 1.0 - kept / sum(w.mask.numpy().size for w in weights)


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
@pytest.mark.parametrize("rate", [0.5, 0.9, 0.97, 0.99])
def test_reachability_agrees_with_the_oracle_on_random_masks(name, rate):
    model = SMALL_MODELS[name]()
    masks = random_masks(model, rate, seed=int(rate * 1000))
    used = reachability(model, masks).used
    expected = oracle_on_path(model, masks)
    for path, on_path in expected.items():
        np.testing.assert_array_equal(used[path] & (masks[path] > 0), on_path, err_msg=path)


@pytest.mark.parametrize("rate", [0.5, 0.9])
def test_reachability_through_heads_of_unequal_widths_agrees_with_the_oracle(rate):
    inputs = keras.Input((4, 15, 3))
    x = GraphAttention(3, [2, 5, 1], build_adjacency("sbu", "uniform"))(inputs)
    x = GraphConv(4, build_adjacency("sbu", "spatial"))(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    masks = random_masks(model, rate, seed=7)
    used = reachability(model, masks).used
    for path, on_path in oracle_on_path(model, masks).items():
        np.testing.assert_array_equal(used[path] & (masks[path] > 0), on_path, err_msg=path)


def test_dense_models_are_fully_connected():
    for build in SMALL_MODELS.values():
        model = build()
        assert disconnected_fraction(model) == 0.0
        assert all(u.all() for u in reachability(model).used.values())


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
@pytest.mark.parametrize("trained", [False, True], ids=["random", "trained"])
@pytest.mark.parametrize("rate", [0.5, 0.9, 0.98, 0.99, 0.995, 0.999])
def test_tcp_keeps_only_weights_on_paths_at_the_target_rate(name, trained, rate):
    model = SMALL_MODELS[name]()
    if trained:
        train_briefly(model)
    masks = topologically_consistent_masks(model, rate)
    on_path = oracle_on_path(model, masks)
    for weight in prunable_weights(model):
        path = weight.mask.path
        kept = masks[path] > 0
        assert np.array_equal(on_path[path], kept), f"{path}: kept weights off every path"
    assert abs(realized_rate(model, masks) - rate) <= 0.005
    assert sum(m.sum() for m in masks.values()) > 0


def test_magnitude_pruning_wastes_weights_that_tcp_does_not():
    model = SMALL_MODELS["stgcn"]()
    masks = random_masks(model, 0.98, seed=3)
    assert disconnected_fraction(model, masks) > 0.2
    cleaned = consistent_masks(model, masks)
    assert disconnected_fraction(model, cleaned) == 0.0
    for path, mask in cleaned.items():
        assert np.all(mask <= masks[path])


def test_unsupported_layers_are_named():
    inputs = keras.Input((8, 15, 3))
    x = GraphConv(4, np.eye(15, dtype="float32")[None])(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="plain_conv")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="plain_conv.*Conv2D"):
        reachability(model)


def test_current_masks_cover_attention_adjacency():
    model = SMALL_MODELS["attention_gcn"]()
    attention = next(layer for layer in model.layers if isinstance(layer, GraphAttention))
    assert attention.head_adjacency_mask.path in current_masks(model)


def test_the_training_graphs_temporal_rules_agree_with_the_exact_ones():
    """In the SOFT algebra a temporal rule is one convolution (its input and kernel gradients
    backward); it marks the entries the exact per-tap rules mark, for strided, strided 1x1,
    dilated and wide kernels."""
    from keras_gcnprune.layers import MaskedDense, TemporalConv
    from keras_gcnprune.layers.shadow import EXACT, SOFT, Shadow
    from keras_gcnprune.pruning.topology import propagate

    inputs = keras.Input((16, 5, 3))
    x = TemporalConv(4, 3, dilation_rate=2)(inputs)
    x = TemporalConv(6, 3, strides=2)(x)
    x = TemporalConv(5, 1, strides=2)(x)
    x = TemporalConv(5, 5)(x)
    model = keras.Model(inputs, MaskedDense(3)(keras.layers.Flatten()(x)))
    partial = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        for weight in prunable_weights(model):
            weight.mask.assign((rng.random(tuple(weight.mask.shape)) > 0.88).astype("float32"))
        *_, exact = propagate(model, Shadow(EXACT))
        *_, soft = propagate(model, Shadow(SOFT))
        for path, used in exact.items():
            np.testing.assert_array_equal(np.asarray(soft[path]) > 0, used > 0, err_msg=path)
            partial += 0 < (used > 0).sum() < used.size
    assert partial >= 5  # the masks leave some entries unused: the comparison can fail
