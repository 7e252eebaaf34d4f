"""Multi-rate magnitude pruning: band-stop masks, alignment, the multi-rate step, extraction."""

import keras
import numpy as np
import pytest

from keras_gcnprune import models
from keras_gcnprune.data import Preprocessing, load_dataset, split
from keras_gcnprune.pruning import (
    GAUSSIAN,
    AlignmentSchedule,
    MultiRateModel,
    MultiRatePruning,
    PolynomialDecay,
    align_with_prior,
    alignment_divergence,
    closed_form_rate,
    disconnected_fraction,
    extract,
    extraction_masks,
    get_prior,
    prunable_weights,
    realized_rate,
    recalibrate_batch_norm,
    requested_weights,
    strip_pruning,
    topologically_consistent_masks,
)
from keras_gcnprune.pruning.multirate import (
    Histogram,
    band_stop,
    band_stop_mask,
    band_stop_masks,
    quantile_keys,
)
from tests.pruning.test_topology import SMALL_MODELS

RATES = (0.5, 0.9, 0.95)


def small_network(name="attention_gcn", seed=1):
    keras.utils.set_random_seed(seed)
    return SMALL_MODELS[name]()


def gaussian_kernels(network, seed=0):
    """Latent kernels drawn from a Gaussian, i.e. perfectly aligned with the default prior."""
    rng = np.random.default_rng(seed)
    for weight in prunable_weights(network):
        weight.kernel.assign(rng.standard_normal(weight.kernel.shape).astype("float32") * 0.1)


def inputs(network, samples=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, *network.input_shape[1:])).astype("float32")
    return x, rng.integers(0, 3, samples)


def test_band_stop_masks_are_exact_and_the_smooth_one_tends_to_them():
    values = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 2.0, 4.0], np.float32)
    rms = np.sqrt(np.mean(values ** 2))  # 1.91...
    expected = (np.abs(values) >= 0.5 * rms).astype(np.float32)
    np.testing.assert_array_equal(band_stop_mask(values, 0.5), expected)
    np.testing.assert_array_equal(expected, [1, 1, 0, 0, 0, 0, 1, 1])
    steep = keras.ops.convert_to_numpy(band_stop(values, 0.5, 1e4))
    np.testing.assert_allclose(steep, expected, atol=1e-6)
    soft = keras.ops.convert_to_numpy(band_stop(values, 0.5, 1.0))
    assert np.all((soft > 0.2) & (soft < 0.95))


def test_histogram_divergence_is_near_zero_for_the_prior_and_large_for_another_shape():
    histogram = Histogram(GAUSSIAN)
    assert histogram.prior_mass.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    aligned = rng.standard_normal(200_000).astype("float32") * 0.03
    uniform = rng.uniform(-1, 1, 200_000).astype("float32")
    masses = keras.ops.convert_to_numpy(histogram.masses(aligned))
    assert masses.sum() == pytest.approx(1.0, abs=1e-5)
    assert float(histogram.divergence(masses)) < 2e-3
    assert float(histogram.divergence(histogram.masses(uniform))) > 0.1


def test_layer_alignment_sees_one_misaligned_kernel_that_pooling_dilutes():
    rng = np.random.default_rng(1)
    aligned = [rng.standard_normal(20_000).astype("float32") for _ in range(3)]
    kernels = aligned + [rng.uniform(-1, 1, 500).astype("float32")]
    histogram = Histogram(GAUSSIAN)
    per_layer = float(alignment_divergence(kernels, histogram, "layer"))
    pooled = float(alignment_divergence(kernels, histogram, "global"))
    assert per_layer > 5 * pooled > 0
    with pytest.raises(ValueError, match="scope"):
        alignment_divergence(kernels, histogram, "network")


def test_alignment_gradient_moves_uniform_weights_towards_the_prior():
    weights = keras.Variable(np.random.default_rng(2).uniform(-1, 1, 5000).astype("float32"))
    optimizer = keras.optimizers.Adam(0.01)
    histogram = Histogram(GAUSSIAN)
    import tensorflow as tf

    before = float(alignment_divergence([weights], histogram))
    for _ in range(200):
        with tf.GradientTape() as tape:
            loss = alignment_divergence([weights], histogram)
        optimizer.apply_gradients([(tape.gradient(loss, weights), weights)])
    assert float(alignment_divergence([weights], histogram)) < 0.2 * before


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_extraction_keeps_the_requested_count_near_the_closed_form_and_nests_the_masks(name):
    network = small_network(name)
    gaussian_kernels(network)
    weights = prunable_weights(network)
    assert any(w.role == "adjacency" for w in weights), "learned adjacencies are pruned too"
    previous = None
    for rate in (0.5, 0.9, 0.93, 0.97):
        masks = extraction_masks(network, rate)
        assert sum(mask.sum() for mask in masks.values()) == requested_weights(network, rate)
        for weight in weights:
            kernel, mask = np.abs(weight.kernel.numpy()), masks[weight.mask.path]
            assert kernel[mask == 1].min() >= kernel[mask == 0].max(), "the largest are kept"
            assert abs(mask.sum() - mask.size * (1 - rate)) <= 2.0, "in proportion to size"
        assert closed_form_rate(network, rate) == pytest.approx(rate, abs=0.02)
        pruned = extract(network, rate)
        assert realized_rate(prunable_weights(pruned)) == pytest.approx(rate, abs=1e-3)
        for weight in prunable_weights(pruned):
            kernel, mask = weight.kernel.numpy(), weight.mask.numpy()
            np.testing.assert_array_equal(kernel[mask == 0], 0)
        if previous is not None:
            assert all(np.all(masks[p] <= previous[p]) for p in masks)
        previous = masks


def test_extraction_of_the_channel_kernels_only_leaves_the_adjacencies_dense():
    network = small_network()
    gaussian_kernels(network)
    masks = extraction_masks(network, 0.9, include_adjacency=False)
    channels = prunable_weights(network, include_adjacency=False)
    assert set(masks) == {w.mask.path for w in channels}
    assert sum(m.sum() for m in masks.values()) == requested_weights(network, 0.9, False)
    pruned = extract(network, 0.9, include_adjacency=False)
    assert all(w.mask.numpy().all() for w in prunable_weights(pruned) if w.role == "adjacency")


def test_consistent_extraction_keeps_as_many_weights_all_on_input_to_output_paths():
    network = small_network()
    gaussian_kernels(network)
    plain, consistent = extract(network, 0.97), extract(network, 0.97, consistent=True)
    assert disconnected_fraction(plain) > 0
    assert disconnected_fraction(consistent) == 0
    kept = [sum(int(w.mask.numpy().sum()) for w in prunable_weights(m))
            for m in (plain, consistent)]
    assert kept == [requested_weights(network, 0.97)] * 2
    # TCP's selection on the extraction's ranking: the lowest quantile keys first
    scores = {w.mask.path: 1.0 - quantile_keys(w.kernel.numpy())
              for w in prunable_weights(network)}
    expected = topologically_consistent_masks(network, 0.97, scores)
    for weight in prunable_weights(consistent):
        np.testing.assert_array_equal(weight.mask.numpy(), expected[weight.mask.path])
    # where the largest-ranked weights are all on paths, both keep the same weights
    assert disconnected_fraction(extract(network, 0.5)) == 0
    for path, mask in extraction_masks(network, 0.5, consistent=True).items():
        np.testing.assert_array_equal(mask, extraction_masks(network, 0.5)[path])


@pytest.mark.parametrize("rate_weights", [None, (1.0, 1.0, 1.0), (1.0, 2.0, 5.0)])
def test_multi_rate_step_minimizes_the_weighted_mean_of_the_rates_losses_plus_the_alignment(
        rate_weights):
    network = models.build("attention_gcn", "sbu", num_classes=3, frames=8, heads=4,
                           head_channels=6, graph_channels=12, dropout=0.0)
    trainer = MultiRateModel(network, RATES, alignment_weight=0.5, rate_weights=rate_weights)
    if rate_weights is None:
        rate_weights = 1 / np.sqrt(1 - np.asarray(RATES))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainer.compile(keras.optimizers.SGD(0.0), loss_fn)
    x, y = inputs(network)
    logged = trainer.train_on_batch(x, y, return_dict=True)
    thresholds = trainer.thresholds.numpy()
    task = []
    for threshold in thresholds:
        trainer._active_threshold = threshold
        task.append(float(loss_fn(y, trainer(x, training=True))))
    trainer._active_threshold = None
    kernels = [w.kernel for w in prunable_weights(network)]
    alignment = float(alignment_divergence(kernels, trainer.histogram))
    task_loss = np.average(task, weights=rate_weights)
    assert logged["loss"] == pytest.approx(task_loss + 0.5 * alignment, rel=1e-5)
    assert logged["alignment"] == pytest.approx(alignment, rel=1e-5)
    assert len(set(np.round(task, 6))) == len(RATES)  # every rate is its own network


@pytest.mark.parametrize("teacher", ["densest", "next"])
def test_self_distillation_adds_each_sparser_rates_weighted_divergence_from_its_teacher(teacher):
    network = models.build("attention_gcn", "sbu", num_classes=3, frames=8, heads=4,
                           head_channels=6, graph_channels=12, dropout=0.0)
    trainer = MultiRateModel(network, RATES, alignment_weight=0.5, self_distillation=2.0,
                             self_distillation_teacher=teacher, rate_weights=(1.0, 2.0, 5.0))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainer.compile(keras.optimizers.SGD(0.0), loss_fn)
    x, y = inputs(network)
    logged = trainer.train_on_batch(x, y, return_dict=True)
    task, probabilities = [], []
    for threshold in trainer.thresholds.numpy():
        trainer._active_threshold = threshold
        logits = trainer(x, training=True)
        task.append(float(loss_fn(y, logits)))
        probabilities.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits)))
    trainer._active_threshold = None
    # the densest rate (0.5) teaches every rate, or each rate the next denser one
    teachers = [probabilities[0] if teacher == "densest" else probabilities[max(0, i - 1)]
                for i in range(len(RATES))]
    divergence = [np.mean(np.sum(t * np.log(t / p), axis=-1))
                  for t, p in zip(teachers, probabilities)]
    assert divergence[0] == 0 and min(divergence[1:]) > 0
    weights = np.array([1.0, 2.0, 5.0]) / np.mean([1.0, 2.0, 5.0])
    kernels = [w.kernel for w in prunable_weights(network)]
    alignment = float(alignment_divergence(kernels, trainer.histogram))
    expected = np.average(task, weights=weights) + 0.5 * alignment \
        + 2.0 * np.mean(weights * divergence)
    assert logged["loss"] == pytest.approx(expected, rel=1e-5)


def test_self_distillation_learns_from_the_densest_rate_drawn_in_the_step():
    network = small_network()
    trainer = MultiRateModel(network, (0.5, 0.7, 0.9), rates_per_step=2, self_distillation=1.0)
    x, _ = inputs(network)
    logits = []
    for threshold in trainer.thresholds.numpy():
        trainer._active_threshold = threshold
        logits.append(trainer(x, training=True))
    trainer._active_threshold = None
    # the largest rate comes first in a sampled step; the drawn denser one teaches it
    drawn = float(trainer._self_distillation_loss([logits[2], logits[1]], [2, 1]))
    alone = float(trainer._self_distillation_loss([logits[1], logits[1]], [2, 1]))
    assert drawn > 0 and alone == pytest.approx(0, abs=1e-6)


def test_sampled_rates_always_include_the_largest():
    network = small_network()
    trainer = MultiRateModel(network, (0.5, 0.7, 0.9, 0.95), rates_per_step=2, seed=0)
    thresholds = trainer.thresholds.numpy()
    seen = set()
    for _ in range(30):
        chosen = [float(thresholds[int(i)]) for i in trainer._rates_of_this_step()]
        assert len(chosen) == 2 and chosen[0] == pytest.approx(thresholds[-1])
        seen.add(round(chosen[1], 5))
    assert seen == {round(float(t), 5) for t in thresholds[:-1]}


def test_inference_uses_the_crisp_masks_of_the_largest_rate():
    network = small_network()
    gaussian_kernels(network)
    trainer = MultiRateModel(network, RATES)
    x, _ = inputs(network)
    crisp = band_stop_masks(network, GAUSSIAN.threshold(max(RATES)))
    expected = strip_pruning(network, crisp)(x, training=False)
    np.testing.assert_allclose(trainer.predict(x, verbose=0), expected, atol=1e-5)
    # Outside the wrapper the network is its own masked model again.
    np.testing.assert_allclose(network(x), network(x, training=False))
    assert all(w.mask.numpy().all() for w in prunable_weights(network))


def test_bad_settings_are_refused():
    network = small_network()
    with pytest.raises(ValueError, match="distinct values in"):
        MultiRateModel(network, (0.9, 0.9))
    with pytest.raises(ValueError, match="distinct values in"):
        MultiRateModel(network, (0.5, 1.0))
    with pytest.raises(ValueError, match="rates_per_step"):
        MultiRateModel(network, (0.5, 0.9), rates_per_step=3)
    with pytest.raises(ValueError, match="rate_weights must be 2 positive"):
        MultiRateModel(network, (0.5, 0.9), rate_weights=(1.0, 0.0))
    with pytest.raises(ValueError, match="rate_weights must be 2 positive"):
        MultiRateModel(network, (0.5, 0.9), rate_weights=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="needs two rates per step or more"):
        MultiRateModel(network, (0.5, 0.9), rates_per_step=1, self_distillation=0.5)
    with pytest.raises(ValueError, match="non-negative number, got -1"):
        MultiRateModel(network, (0.5, 0.9), self_distillation=-1.0)
    with pytest.raises(ValueError, match="self_distillation_teacher must be one of"):
        MultiRateModel(network, (0.5, 0.9), self_distillation=1.0,
                       self_distillation_teacher="sparsest")
    with pytest.raises(ValueError, match="rate must be in"):
        extract(network, 1.0)
    with pytest.raises(ValueError, match="Rate 0.999999 keeps 1 weights, fewer than the"):
        extract(network, 0.999999)
    with pytest.raises(ValueError, match="1000 rates given; at most 64"):
        MultiRateModel(network, tuple(np.linspace(0.001, 0.999, 1000)))
    network.compile("adam", "mse")
    x, _ = inputs(network, 4)
    with pytest.raises(TypeError, match="MultiRateModel"):
        network.fit(x, np.zeros((4, 3)), callbacks=[MultiRatePruning(PolynomialDecay(
            0.0, 0.9, 0, 2, frequency=1))], verbose=0)


def test_configuration_round_trip():
    network = small_network()
    trainer = MultiRateModel(network, RATES, prior="laplace", alignment_weight=2.0,
                             rates_per_step=2, rate_weights=(1.0, 2.0, 3.0),
                             self_distillation=0.5, self_distillation_teacher="next", seed=4)
    restored = MultiRateModel.from_config(trainer.get_config())
    assert restored.self_distillation == 0.5 and restored.self_distillation_teacher == "next"
    np.testing.assert_allclose(restored.rate_weights, [0.5, 1.0, 1.5])
    unsorted = MultiRateModel(network, RATES[::-1], rate_weights=(3.0, 2.0, 1.0))
    assert unsorted.rates == RATES
    np.testing.assert_allclose(unsorted.rate_weights, [0.5, 1.0, 1.5])
    assert restored.rates == RATES and restored.prior.name == "laplace"
    assert restored.rates_per_step == 2 and float(restored.alignment_weight.numpy()) == 2.0
    restored.set_weights(trainer.get_weights())
    x, _ = inputs(network)
    np.testing.assert_allclose(restored.predict(x, verbose=0), trainer.predict(x, verbose=0),
                               atol=1e-6)


def test_recalibration_sets_the_exact_moments_of_every_batch_norm_input():
    network = small_network("stgcn")
    x, _ = inputs(network, samples=64)
    recalibrate_batch_norm(network, x, batches=2)
    for layer in network.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        probe = keras.Model(network.input, layer.input)
        order = np.random.default_rng(0).permutation(64)
        values = keras.ops.convert_to_numpy(probe(x[order]))
        axes = tuple(range(values.ndim - 1))
        np.testing.assert_allclose(layer.moving_mean.numpy(), values.mean(axis=axes),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance.numpy(), values.var(axis=axes),
                                   rtol=1e-3, atol=1e-5)


def test_one_training_prunes_every_rate_and_extracts_unseen_rates():
    dataset = load_dataset("synthetic")
    preprocessing = Preprocessing(frames=16)
    (x_train, y_train), (x_test, y_test) = (preprocessing.arrays(part)
                                            for part in split(dataset))
    keras.utils.set_random_seed(0)
    network = models.build("attention_gcn", dataset.skeleton, num_classes=dataset.num_classes,
                           frames=16, channels=3)
    rates = (0.8, 0.9, 0.95)
    trainer = MultiRateModel(network, rates)
    trainer.compile(keras.optimizers.Adam(3e-3),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    begin = -(-len(x_train) // 32) * 12 // 10
    callback = MultiRatePruning(PolynomialDecay(0.0, 0.95, begin, begin + 100, frequency=10),
                                steepness=(5.0, 100.0))
    history = trainer.fit(x_train, y_train, batch_size=32, epochs=12, callbacks=[callback],
                          verbose=0)
    assert float(trainer.steepness.numpy()) == pytest.approx(100.0)
    # Training's crisp band-stop is close to the requested rate; extraction is exact.
    assert history.history["pruning_rate"][-1] == pytest.approx(0.95, abs=0.015)
    for rate in (*rates, 0.85, 0.93):
        pruned = extract(trainer, rate, calibration_data=x_train)
        assert realized_rate(prunable_weights(pruned)) == pytest.approx(rate, abs=1e-3)
        accuracy = np.mean(np.argmax(pruned.predict(x_test, verbose=0), -1) == y_test)
        assert accuracy > 3 / dataset.num_classes, (rate, accuracy)


@pytest.mark.parametrize("prior", ["gaussian", "laplace", "uniform"])
def test_align_with_prior_keeps_ranking_signs_and_scale_and_realizes_every_rate(prior):
    network = small_network()
    before = [w.kernel.numpy() for w in prunable_weights(network)]
    align_with_prior(network, prior)
    for old, weight in zip(before, prunable_weights(network)):
        new = weight.kernel.numpy()
        np.testing.assert_array_equal(np.sign(new), np.sign(old))
        np.testing.assert_array_equal(np.argsort(np.abs(new), axis=None, kind="stable"),
                                      np.argsort(np.abs(old), axis=None, kind="stable"))
        assert np.sqrt(np.mean(new ** 2)) == pytest.approx(np.sqrt(np.mean(old ** 2)), rel=0.02)
        for rate in (0.5, 0.9, 0.97):
            removed = 1 - band_stop_mask(new, get_prior(prior).threshold(rate)).mean()
            assert removed == pytest.approx(rate, abs=0.01 + 2 / new.size)


def test_alignment_weight_follows_its_schedule_and_zero_leaves_the_task_loss():
    network = models.build("attention_gcn", "sbu", num_classes=3, frames=8, heads=4,
                           head_channels=6, graph_channels=12, dropout=0.0)
    trainer = MultiRateModel(network, (0.5,))
    trainer.compile(keras.optimizers.SGD(0.0),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = inputs(network)
    history = trainer.fit(x, y, batch_size=24, epochs=2, verbose=0,
                          callbacks=[AlignmentSchedule(lambda epoch: 3.0 * epoch)])
    assert float(trainer.alignment_weight.numpy()) == 3.0
    first, second = history.history["loss"]
    alignment = history.history["alignment"][0]
    assert alignment > 0 and second == pytest.approx(first + 3.0 * alignment, rel=1e-4)
