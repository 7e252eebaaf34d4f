import json

import keras
import numpy as np
import pytest

from keras_gcnprune import models
from keras_gcnprune.data import Preprocessing, make_synthetic_gestures
from keras_gcnprune.pruning import (
    ConstantSparsity,
    TopologicalPruning,
    compact,
    disconnected_fraction,
    prunable_weights,
    realized_rate,
    strip_pruning,
)
from keras_gcnprune.training import (
    PruningConfig,
    TrainConfig,
    evaluate,
    evaluate_arrays,
    extract_run,
    prepare_data,
    train,
)


@pytest.fixture(scope="module")
def gestures():
    return make_synthetic_gestures(subjects=4, test_subjects=1, repetitions=3, seed=0)


@pytest.mark.parametrize("method", ["magnitude", "tcp"])
def test_pruned_training_run_reaches_the_rate_and_writes_its_report(gestures, tmp_path, method):
    config = TrainConfig(model="attention_gcn", epochs=4, preprocessing=Preprocessing(frames=16),
                         pruning=PruningConfig(method=method, rate=0.9, frequency=5))
    metrics = train(config, tmp_path, dataset=gestures, verbose=0)
    assert metrics["realized_rate"] == pytest.approx(0.9, abs=0.005)
    if method == "tcp":
        assert metrics["disconnected_fraction"] == 0.0
    report = json.loads((tmp_path / "connectivity.json").read_text())
    assert report["total"]["kept"] == metrics["kept_weights"]
    model = keras.models.load_model(tmp_path / "model.keras")
    assert realized_rate(prunable_weights(model)) == pytest.approx(0.9, abs=0.005)
    # Nonzero weights: every weight but the pruned kernel entries (adjacencies, biases and
    # batch norm stay whole and count).
    kernels = sum(int(np.prod(w.kernel.shape)) for w in prunable_weights(model))
    assert metrics["nonzero_parameters"] == \
        metrics["parameters"] - kernels + metrics["kept_weights"]
    assert evaluate(tmp_path, dataset="synthetic")["test_samples"] > 0


def test_block_tcp_run_trains_a_model_that_compacts_to_its_block(gestures, tmp_path):
    config = TrainConfig(model="attention_gcn", epochs=4, preprocessing=Preprocessing(frames=16),
                         pruning=PruningConfig(method="tcp", rate=0.95, block_density=0.5))
    metrics = train(config, tmp_path, dataset=gestures, verbose=0)
    assert metrics["realized_rate"] == pytest.approx(0.95, abs=0.005)
    assert metrics["disconnected_fraction"] == 0.0
    model = keras.models.load_model(tmp_path / "model.keras")
    small = compact(model)
    kernels = sum(int(np.prod(w.kernel.shape)) for w in prunable_weights(small))
    assert kernels <= 3 * metrics["kept_weights"]
    x = np.random.default_rng(0).standard_normal((2, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method, density, message", [
    ("magnitude", 0.5, "block_density applies to tcp only"),
    ("tcp", 1.5, "block_density must be in"),
])
def test_bad_block_density_settings_are_refused(method, density, message):
    with pytest.raises(ValueError, match=message):
        PruningConfig(method=method, rate=0.9, block_density=density)


def test_tcp_prunes_in_channel_blocks_to_a_rate_and_unstructured_to_a_budget():
    from keras_gcnprune.pruning import BLOCK_DENSITY

    assert PruningConfig(method="tcp").block_density == BLOCK_DENSITY  # to a rate
    assert PruningConfig(method="tcp", block_density=None).block_density is None
    assert PruningConfig(method="tcp", budgets=(5000,)).block_density is None
    assert PruningConfig(method="tcp", budgets=(5000,), block_density=1.0).block_density == 1.0
    assert PruningConfig.preset("tcp", rate=0.9).block_density is None  # the paper's
    assert PruningConfig.preset("tcp_accessibility", rate=0.9).block_density is None
    for method, extra in [("magnitude", {}), ("srmp", {}), ("mrmp", {"rates": (0.5, 0.9)})]:
        assert PruningConfig(method=method, **extra).block_density is None, method


@pytest.mark.parametrize("method, options, message", [
    ("tcp", {"scope": "global"}, "scope='global' applies to magnitude pruning only, not tcp"),
    ("srmp", {"scope": "global"}, "scope='global' applies to magnitude pruning only, not srmp"),
    ("magnitude", {"supervision": "none"}, "supervision='none' applies to tcp only"),
    ("srmp", {"block_density": 0.5}, "block_density applies to tcp only, not srmp"),
    ("magnitude", {"strength": 1.0}, r"supervision strength \(1.0\) applies to tcp only"),
])
def test_an_option_the_method_would_ignore_is_refused(method, options, message):
    from keras_gcnprune.pruning import ConstantSparsity, pruning_callback

    config_options = {("supervision_strength" if k == "strength" else k): v
                      for k, v in options.items()}
    with pytest.raises(ValueError, match=message):
        PruningConfig(method=method, rate=0.9, **config_options)
    with pytest.raises(ValueError, match=message):
        pruning_callback(method, ConstantSparsity(0.9), **options)


def test_multi_rate_run_reports_every_rate_and_extracts_a_family(gestures, tmp_path):
    config = TrainConfig(model="attention_gcn", epochs=5, preprocessing=Preprocessing(frames=16),
                         pruning=PruningConfig(method="mrmp", rates=(0.8, 0.5), frequency=5))
    metrics = train(config, tmp_path / "mrmp", dataset=gestures, verbose=0)
    assert config.pruning.rate == 0.8 and sorted(metrics["rates"]) == ["0.5", "0.8"]
    for rate, row in metrics["rates"].items():
        assert row["realized_rate"] == pytest.approx(float(rate), abs=0.03)
    # The saved model is the recalibrated network at the largest rate.
    assert metrics["test_accuracy"] == metrics["rates"]["0.8"]["test_accuracy"]
    x_test, y_test = prepare_data(config, gestures).test
    saved = keras.models.load_model(tmp_path / "mrmp" / "model.keras")
    assert evaluate_arrays(saved, x_test, y_test) == metrics["test_accuracy"]
    assert not (tmp_path / "mrmp" / "backup").exists()
    # The default synthetic dataset, not the fixture: calibration and test data differ.
    family = extract_run(tmp_path / "mrmp", [0.65, 0.8], tmp_path / "family")
    assert [row["trained"] for row in family] == [False, True]
    unseen = keras.models.load_model(tmp_path / "family" / "rate_0.65" / "model.keras")
    assert realized_rate(prunable_weights(unseen)) == family[0]["realized_rate"]
    assert evaluate(tmp_path / "family" / "rate_0.65")["test_accuracy"] == \
        family[0]["test_accuracy"]


def test_extraction_refuses_runs_not_trained_for_it(gestures, tmp_path):
    config = TrainConfig(model="attention_gcn", epochs=1, preprocessing=Preprocessing(frames=16),
                         pruning=PruningConfig(method="magnitude", rate=0.5))
    train(config, tmp_path, dataset=gestures, verbose=0)
    with pytest.raises(ValueError, match="aligned with a prior"):
        extract_run(tmp_path, [0.5], tmp_path / "family")
    with pytest.raises(ValueError, match="give rates"):
        PruningConfig(method="mrmp")
    with pytest.raises(ValueError, match="mrmp only"):
        PruningConfig(method="tcp", rates=(0.5, 0.9))
    with pytest.raises(ValueError, match="Unknown pruning method"):
        PruningConfig(method="lottery")
    with pytest.raises(ValueError, match="tcp trains one rate"):
        PruningConfig(method="tcp", rate=0.9, rate_weights=(1.0,))
    with pytest.raises(ValueError, match="rate_weights must be 2 positive numbers"):
        PruningConfig(method="mrmp", rates=(0.5, 0.9), rate_weights=(1.0, 2.0, 3.0))


def test_rate_weights_follow_their_rates_when_the_rates_are_sorted():
    config = PruningConfig(method="mrmp", rates=(0.99, 0.5, 0.9), rate_weights=(10, 1, 2))
    assert config.rates == (0.5, 0.9, 0.99) and config.rate_weights == (1.0, 2.0, 10.0)
    trainer = config.trainer(models.build("attention_gcn", "sbu", num_classes=3, frames=8),
                             seed=0)
    np.testing.assert_allclose(trainer.rate_weights, np.array([1, 2, 10]) / (13 / 3), rtol=1e-6)


def test_schedule_ends_exactly_on_a_pruning_turn():
    for steps in (7, 100, 1234):
        schedule = PruningConfig(rate=0.8, begin=0.1, end=0.6, frequency=50).schedule(steps)
        assert schedule(schedule.end_step) == (True, pytest.approx(0.8))
        assert schedule.end_step < steps


def test_default_schedule_ramps_in_twenty_updates_however_short_the_training():
    from keras_gcnprune.pruning.config import RAMP_UPDATES

    for steps in (320, 6400):
        schedule = PruningConfig(rate=0.98, begin=0.1, end=0.6).schedule(steps)
        turns = [step for step in range(steps) if schedule(step)[0]]
        assert len(turns) == RAMP_UPDATES + 1  # the turns from begin_step to end_step inclusive
        assert schedule(turns[-1])[1] == pytest.approx(0.98)
    assert PruningConfig(frequency=50).schedule(320).frequency == 50
    with pytest.raises(ValueError, match="frequency must be at least 1"):
        PruningConfig(frequency=0)


def test_strip_pruning_bakes_masks_and_keeps_outputs(gestures):
    from keras_gcnprune import models

    model = models.build("stgcn", "mediapipe_hand", num_classes=14, frames=8, widths=(8, 16),
                         strides=(1, 2))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).standard_normal((16, 8, 21, 3)).astype("float32")
    model.fit(x, np.arange(16) % 14, epochs=1, verbose=0,
              callbacks=[TopologicalPruning(ConstantSparsity(0.8, frequency=1))])
    stripped = strip_pruning(model)
    np.testing.assert_allclose(stripped.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    for weight in prunable_weights(stripped):
        assert np.all(weight.kernel.numpy()[weight.mask.numpy() == 0] == 0)
    assert disconnected_fraction(stripped) == 0.0
    assert all(int(layer.pruning_step.numpy()) == 0 for layer in stripped.layers
               if hasattr(layer, "pruning_step"))
    assert int(model.get_layer("block1_gcn").pruning_step.numpy()) == 1


def test_a_preset_is_its_method_with_the_settings_its_method_uses():
    from keras_gcnprune.pruning import BLOCK_DENSITY, PRUNING_PRESETS, PruningConfig

    shared = {"supervision_strength": 0.1, "self_distillation": 1.0, "rates_per_step": 2,
              "consistent_extraction": True}
    block = PruningConfig.preset("tcp_block", rate=0.9, **shared)
    assert (block.method, block.block_density, block.supervision_strength) == \
        ("tcp", BLOCK_DENSITY, 0.1)
    assert block.self_distillation == 0.0 and block.rates_per_step is None
    ablation = PruningConfig.preset("tcp_feedback", rate=0.9, **shared)
    assert ablation.supervision == "feedback" and ablation.block_density is None
    mrmp = PruningConfig.preset("mrmp", rates=(0.9, 0.5), **shared)
    assert (mrmp.rates, mrmp.self_distillation, mrmp.supervision_strength) == \
        ((0.5, 0.9), 1.0, PruningConfig.supervision_strength)
    assert PruningConfig.preset("tcp_block", rate=0.9, block_density=0.5).block_density == 0.5
    assert set(PRUNING_PRESETS) >= {"magnitude", "tcp", "srmp", "mrmp", "tcp_none", "tcp_block"}
    with pytest.raises(ValueError, match="Unknown pruning preset 'tcp_blocks'"):
        PruningConfig.preset("tcp_blocks", rate=0.9)
