"""A skeleton model written with stock Keras layers (Conv2D temporal blocks and a Dense
classifier), made prunable by `prune_low_magnitude`, trained with TCP, compacted and exported:
the path a user of stock layers takes to a phone."""

import keras
import numpy as np
import pytest

from keras_gcnprune.export import export_tflite
from keras_gcnprune.pruning import (
    ConstantSparsity,
    TopologicalPruning,
    compact,
    disconnected_fraction,
    prunable_weights,
    prune_low_magnitude,
    realized_rate,
)
from keras_gcnprune.reports import model_costs


def temporal_blocks() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 15, 3))  # frames, joints, coordinates
    x = keras.layers.Conv2D(16, 1)(inputs)
    for filters, stride in ((16, 1), (32, 2)):
        x = keras.layers.Conv2D(filters, (9, 1), strides=(stride, 1), padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(8)(x))


@pytest.mark.parametrize("rate, block_density", [(0.95, None), (0.99, 0.5)])
def test_tcp_on_stock_layers_compacts_and_exports_gpu_clean(tmp_path, rate, block_density):
    model = prune_low_magnitude(temporal_blocks())
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16, 15, 3)).astype("float32")
    model.fit(x, np.arange(32) % 8, batch_size=8, epochs=2, verbose=0, callbacks=[
        TopologicalPruning(ConstantSparsity(rate, 0, frequency=2), block_density=block_density)])
    assert disconnected_fraction(model) == 0.0
    assert realized_rate(prunable_weights(model)) == pytest.approx(rate, abs=0.005)
    kept = model_costs(model)

    small = compact(model)
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    assert model_costs(small)["parameters"] < kept["parameters"]
    report = export_tflite(small, tmp_path / "small.tflite", check_inputs=x[:4])
    assert report.gpu_findings == []
    assert report.max_abs_diff <= 1e-5
