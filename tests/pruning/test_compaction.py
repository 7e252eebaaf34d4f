"""Compaction removes dead channels and keeps the outputs, folding constants where needed."""

import keras
import numpy as np
import pytest

from keras_gcnprune.export import export_tflite
from keras_gcnprune.layers import ConstantOffset, GraphConv, TemporalConv
from keras_gcnprune.pruning import compact, prunable_weights, topologically_consistent_masks
from keras_gcnprune.pruning.compaction import kept_channels
from keras_gcnprune.pruning.masks import magnitude_mask
from keras_gcnprune.pruning.topology import graph_steps
from keras_gcnprune.reports import model_costs
from tests.families import FAMILIES


def model_with_shifts(name, seed=1):
    """A model whose biases and batch-norm shifts are non-zero, so removed constant channels
    would change the outputs if their constants were dropped instead of folded."""
    keras.utils.set_random_seed(seed)
    model = FAMILIES[name]()
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.rsplit("/", 1)[-1] in ("bias", "beta", "moving_mean"):
            weight.assign(rng.normal(0.0, 0.5, weight.shape).astype("float32"))
    return model


def apply(model, method, rate):
    if method == "tcp":
        masks = topologically_consistent_masks(model, rate)
    else:
        masks = {w.mask.path: magnitude_mask(w.kernel.numpy(), rate)
                 for w in prunable_weights(model)}
    for weight in prunable_weights(model):
        weight.mask.assign(masks[weight.mask.path])
    return model


def widths(model):
    return {layer.name: layer.filters for layer in model.layers
            if isinstance(layer, (GraphConv, TemporalConv))}


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("method", ["magnitude", "tcp"])
@pytest.mark.parametrize("rate", [0.9, 0.97, 0.99])
def test_compacted_outputs_equal_the_masked_model(name, method, rate):
    model = apply(model_with_shifts(name), method, rate)
    small = compact(model)
    x = np.random.default_rng(2).standard_normal((6, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    assert all(small_width <= widths(model)[layer]
               for layer, small_width in widths(small).items())
    assert model_costs(small)["parameters"] <= model_costs(model)["parameters"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_kept_channels_are_the_widths_of_the_compacted_layers(name):
    model = apply(model_with_shifts(name), "magnitude", 0.97)
    kept = {layer.name: channels for (layer, _, _), channels
            in zip(graph_steps(model), kept_channels(model))}
    small = compact(model)
    assert all(len(kept[layer]) == small.get_layer(layer).output.shape[-1] for layer in kept)
    assert any(len(kept[layer]) < model.get_layer(layer).output.shape[-1] for layer in kept)


def test_high_rate_magnitude_pruning_compacts_and_folds_constants():
    model = apply(model_with_shifts("stgcn"), "magnitude", 0.99)
    small = compact(model)
    offsets = [layer for layer in small.layers if isinstance(layer, ConstantOffset)]
    assert offsets, "removed constant channels should have been folded"
    # temporal padding makes the folded constants vary along the frames at least somewhere
    assert any(layer.offset.ndim == 3 and layer.offset.shape[0] > 1 for layer in offsets)
    assert model_costs(small)["parameters"] < 0.8 * model_costs(model)["parameters"]


def test_compacted_models_save_load_and_export_gpu_clean(tmp_path):
    model = apply(model_with_shifts("stgcn"), "magnitude", 0.99)
    small = compact(model)
    small.save(tmp_path / "small.keras")
    restored = keras.models.load_model(tmp_path / "small.keras")
    x = np.random.default_rng(3).standard_normal((2, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    report = export_tflite(small, tmp_path / "small.tflite", check_inputs=x)
    assert report.max_abs_diff <= 1e-4 and report.gpu_findings == []


def test_attention_heads_lose_their_dead_channels_and_dead_heads_go(tmp_path):
    model = model_with_shifts("attention_gcn")
    attention = model.get_layer("attention")
    mask = attention.kernel_mask.numpy()
    mask[:, 0, :] = 0.0  # head 0 dies: its constant channels must be folded
    mask[:, 1, 3:] = 0.0  # head 1 keeps 3 channels
    attention.kernel_mask.assign(mask)
    small = compact(model)
    narrowed = small.get_layer("attention")
    assert narrowed.heads == 7 and narrowed.widths == (3, 8, 8, 8, 8, 8, 8)
    np.testing.assert_allclose(narrowed.head_adjacency.numpy(),
                               attention.head_adjacency.numpy()[1:])
    x = np.random.default_rng(4).standard_normal((3, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    small.save(tmp_path / "small.keras")
    restored = keras.models.load_model(tmp_path / "small.keras")
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    report = export_tflite(small, tmp_path / "small.tflite", check_inputs=x)
    assert report.max_abs_diff <= 1e-4 and report.gpu_findings == []


def test_tcp_at_high_rates_narrows_the_attention_layer():
    model = apply(model_with_shifts("attention_gcn"), "tcp", 0.995)
    small = compact(model)
    assert sum(small.get_layer("attention").widths) < 64
    x = np.random.default_rng(5).standard_normal((3, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
