"""The training-time supervision of TCP: exact forward masks, gradients through both surrogates."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gcnprune import models
from keras_gcnprune.pruning import (
    ConstantSparsity,
    TopologicalPruning,
    consistent_masks,
    prunable_weights,
    topologically_consistent_masks,
)
from keras_gcnprune.pruning.masks import masked_layers
from keras_gcnprune.pruning.supervision import TopologicalSupervision
from tests.pruning.test_topology import SMALL_MODELS, random_masks


def assign(model, masks):
    for weight in prunable_weights(model, include_adjacency=True):
        weight.mask.assign(masks.get(weight.mask.path, weight.mask.numpy()))


def compiled(name):
    keras.utils.set_random_seed(3)
    model = SMALL_MODELS[name]()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def data(model, samples=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, *model.input_shape[1:])).astype("float32")
    return x, rng.integers(0, 3, samples)


def kernel_gradients(model, supervision):
    """Gradients of the training loss with respect to every prunable latent kernel."""
    if supervision is not None:
        supervision.attach(model)
    x, y = data(model, samples=8)
    weights = prunable_weights(model)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    gradients = tape.gradient(loss, [w.kernel for w in weights])
    if supervision is not None:
        supervision.detach()
    return {w.mask.path: g.numpy() for w, g in zip(weights, gradients)}


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_forward_mask_is_exactly_the_consistent_mask(name):
    model = compiled(name)
    assign(model, random_masks(model, 0.9, seed=2))
    supervision = TopologicalSupervision()
    supervision.attach(model)
    forward = supervision.consistent_masks()
    expected = consistent_masks(model)
    for weight in prunable_weights(model):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(forward[weight.mask.path]),
                                      expected[weight.mask.path])
    assert not all(np.array_equal(expected[w.mask.path], w.mask.numpy())
                   for w in prunable_weights(model)), "the random masks should be inconsistent"


def test_without_both_propagations_the_forward_mask_is_the_mask():
    model = compiled("stgcn")
    assign(model, random_masks(model, 0.9, seed=2))
    supervision = TopologicalSupervision(accessibility=False, coaccessibility=False)
    supervision.attach(model)
    forward = supervision.consistent_masks()
    for weight in prunable_weights(model):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(forward[weight.mask.path]),
                                      weight.mask.numpy())


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_gradients_reach_pruned_latent_weights_only_when_supervised(name):
    model = compiled(name)
    assign(model, topologically_consistent_masks(model, 0.9))
    pruned = {w.mask.path: w.mask.numpy() == 0 for w in prunable_weights(model)}
    plain = kernel_gradients(model, None)
    supervised = kernel_gradients(model, TopologicalSupervision())
    assert all(not plain[path][pruned[path]].any() for path in pruned)
    assert sum(int((supervised[path][pruned[path]] != 0).sum()) for path in pruned) > 0


def test_each_propagation_adds_its_own_gradient():
    model = compiled("attention_gcn")
    assign(model, topologically_consistent_masks(model, 0.97))
    gradients = {
        (forward, backward): kernel_gradients(model, TopologicalSupervision(forward, backward))
        for forward in (False, True) for backward in (False, True)
    }

    def differ(a, b):
        return any(not np.allclose(gradients[a][p], gradients[b][p]) for p in gradients[a])

    assert differ((True, False), (False, False)), "accessibility adds no gradient"
    assert differ((False, True), (False, False)), "co-accessibility adds no gradient"
    assert differ((True, True), (True, False)), "co-accessibility adds nothing to both"


@pytest.mark.parametrize("supervise", [False, True])
def test_fit_revives_pruned_latent_weights_only_when_supervised(supervise):
    model = compiled("attention_gcn")
    initial = {w.mask.path: w.kernel.numpy() for w in prunable_weights(model)}
    x, y = data(model)
    # One selection at the first step, before any update; plain Adam has no weight decay.
    callback = TopologicalPruning(ConstantSparsity(0.9, begin_step=1, frequency=10**6),
                                  supervise=supervise)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert np.isfinite(history.history["loss"]).all()
    moved = sum(
        int((w.kernel.numpy() != initial[w.mask.path])[w.mask.numpy() == 0].sum())
        for w in prunable_weights(model)
    )
    assert (moved > 0) == supervise
    assert all(layer.mask_source is None for layer in masked_layers(model))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # a plain fit afterwards still works


def test_unknown_supervision_is_refused():
    from keras_gcnprune.pruning import pruning_callback

    with pytest.raises(ValueError, match="'sideways'.*both"):
        pruning_callback("tcp", ConstantSparsity(0.9), supervision="sideways")


def test_kept_weights_get_their_plain_gradient_and_pruned_ones_feedback():
    keras.utils.set_random_seed(3)
    model = models.build("stgcn", "sbu", num_classes=3, frames=8, widths=(6, 12, 12),
                         strides=(1, 2, 1), temporal_kernel=3, dropout=0.0)  # deterministic
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assign(model, topologically_consistent_masks(model, 0.9))
    plain = kernel_gradients(model, None)
    feedback = kernel_gradients(model, TopologicalSupervision(False, False, feedback=True))
    for weight in prunable_weights(model):
        kept = weight.mask.numpy() == 1
        np.testing.assert_allclose(feedback[weight.mask.path][kept],
                                   plain[weight.mask.path][kept], rtol=1e-5, atol=1e-7)
    assert sum(int((feedback[w.mask.path][w.mask.numpy() == 0] != 0).sum())
               for w in prunable_weights(model)) > 0
