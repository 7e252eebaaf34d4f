import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gcnprune.graphs import build_adjacency
from keras_gcnprune.layers import GraphAttention, GraphConv, MaskedDense, TemporalConv

RNG = np.random.default_rng(0)


def random_inputs(*shape):
    return RNG.standard_normal(shape).astype("float32")


def random_mask(variable):
    mask = (RNG.random(variable.shape) > 0.5).astype("float32")
    variable.assign(mask)
    return mask


def test_graph_conv_matches_einsum_with_mask_and_learned_adjacency():
    adjacency = build_adjacency("sbu", "spatial")
    layer = GraphConv(6, adjacency, learnable_adjacency=True, bias_initializer="random_normal")
    x = random_inputs(2, 4, 15, 5)
    layer(x)
    mask = random_mask(layer.kernel_mask)
    offset = random_inputs(3, 15, 15) * 0.1
    layer.adjacency_offset.assign(offset)
    offset_mask = random_mask(layer.adjacency_offset_mask)
    expected = np.einsum(
        "ntvc,cfk,kvw->ntwf", x, layer.kernel.numpy() * mask, adjacency + offset * offset_mask
    ) + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)
    assert [w.role for w in layer.masked_weights()] == ["channels", "adjacency"]


def test_graph_attention_matches_per_head_reference():
    layer = GraphAttention(3, 4, build_adjacency("jhmdb", "uniform"))
    x = random_inputs(2, 3, 15, 2)
    layer(x)
    kernel_mask = random_mask(layer.kernel_mask)
    adjacency_mask = random_mask(layer.head_adjacency_mask)
    kernel = layer.kernel.numpy() * kernel_mask
    adjacency = layer.head_adjacency.numpy() * adjacency_mask
    expected = np.einsum("ntvc,chf,hvw->ntwhf", x, kernel, adjacency).reshape(2, 3, 15, 12)
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)


def test_graph_attention_heads_of_unequal_widths_match_per_head_reference():
    layer = GraphAttention(3, [1, 4, 2], build_adjacency("jhmdb", "uniform"))
    x = random_inputs(2, 3, 15, 2)
    assert layer(x).shape == (2, 3, 15, 7) and layer.kernel.shape == (2, 7)
    layer.bias.assign(random_inputs(7))
    kernel = layer.kernel.numpy() * random_mask(layer.kernel_mask)
    adjacency = layer.head_adjacency.numpy()
    heads = [0, 1, 1, 1, 1, 2, 2]
    expected = np.stack([np.einsum("ntvc,c,vw->ntw", x, kernel[:, k], adjacency[h])
                         for k, h in enumerate(heads)], axis=-1) + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("heads, channels", [(0, 2), (2, 0), (2, [3]), (2, [3, 0])])
def test_graph_attention_refuses_bad_widths(heads, channels):
    with pytest.raises(ValueError, match="one positive width per head"):
        GraphAttention(heads, channels, build_adjacency("sbu", "uniform"))


def test_graph_attention_heads_start_from_the_layout_adjacency():
    adjacency = build_adjacency("sbu", "uniform")[0]
    layer = GraphAttention(4, 2, adjacency, adjacency_noise=0.0)
    layer(random_inputs(1, 1, 15, 3))
    np.testing.assert_allclose(layer.head_adjacency.numpy(), np.stack([adjacency] * 4))


@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), (1, 2)])
def test_temporal_conv_matches_direct_convolution(strides, dilation):
    layer = TemporalConv(3, kernel_size=3, strides=strides, dilation_rate=dilation)
    x = random_inputs(1, 7, 2, 2)
    layer(x)
    mask = random_mask(layer.kernel_mask)
    kernel = layer.kernel.numpy()[:, 0] * mask[:, 0]  # (k, C_in, C_out)
    pad = dilation * (3 - 1) // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (0, 0), (0, 0)))
    frames = range(0, 7, strides)
    expected = np.stack([
        sum(padded[:, t + tap * dilation] @ kernel[tap] for tap in range(3)) for t in frames
    ], axis=1) + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)


def test_temporal_conv_refuses_stride_with_dilation():
    with pytest.raises(ValueError, match="not both"):
        TemporalConv(4, strides=2, dilation_rate=2)


def test_masked_dense_on_rank_2_and_rank_4_inputs():
    layer = MaskedDense(3)
    x = random_inputs(4, 2, 5, 6)
    layer(x)
    mask = random_mask(layer.kernel_mask)
    expected = x @ (layer.kernel.numpy() * mask) + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(layer(x[:, 0, 0]).numpy(), expected[:, 0, 0], atol=1e-5)


def test_masked_weights_reduce_to_channel_connections():
    layer = GraphConv(4, build_adjacency("sbu", "spatial"))
    layer(random_inputs(1, 2, 15, 3))
    (weight,) = layer.masked_weights()
    mask = np.zeros((3, 4, 3), "float32")
    mask[1, 2, :] = 1
    mask[0, 3, 0] = 1
    weight.mask.assign(mask)
    expected = np.zeros((3, 4))
    expected[1, 2], expected[0, 3] = 3, 1
    np.testing.assert_array_equal(weight.connections(), expected)
    attention = GraphAttention(2, 3, build_adjacency("sbu", "uniform"))
    attention(random_inputs(1, 1, 15, 5))
    kernel, adjacency = attention.masked_weights()
    assert kernel.connections().shape == (5, 6) and adjacency.role == "adjacency"


def test_freeze_pruned_keeps_pruned_weights_at_zero_through_fit():
    inputs = keras.Input((4, 15, 3))
    layer = GraphConv(4, build_adjacency("sbu", "spatial"), freeze_pruned=True)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(layer(inputs)))
    mask = random_mask(layer.kernel_mask)
    layer.kernel.assign(layer.kernel.numpy() * mask)
    model.compile("adam", "mse")
    model.fit(random_inputs(8, 4, 15, 3), random_inputs(8, 4), epochs=2, verbose=0)
    kernel = layer.kernel.numpy()
    assert np.all(kernel[mask == 0] == 0) and np.all(kernel[mask == 1] != 0)


def test_unfrozen_latent_weights_keep_training_but_do_not_act():
    inputs = keras.Input((4, 15, 3))
    layer = GraphConv(4, build_adjacency("sbu", "spatial"))
    model = keras.Model(inputs, layer(inputs))
    layer.kernel_mask.assign(np.zeros(layer.kernel_mask.shape, "float32"))
    x = random_inputs(2, 4, 15, 3)
    np.testing.assert_allclose(model(x).numpy(), np.broadcast_to(layer.bias.numpy(), (2, 4, 15, 4)))


@pytest.mark.parametrize("layer", [
    GraphConv(5, build_adjacency("sbu", "spatial"), learnable_adjacency=True, freeze_pruned=True),
    GraphAttention(2, 3, build_adjacency("sbu", "uniform")),
    GraphAttention(2, [1, 3], build_adjacency("sbu", "uniform")),
    TemporalConv(5, kernel_size=3, strides=2),
    MaskedDense(5, activation="relu"),
], ids=lambda layer: type(layer).__name__)
def test_layers_rebuild_from_config(layer):
    x = random_inputs(2, 4, 15, 3)
    layer(x)
    clone = type(layer).from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), layer(x).numpy(), atol=1e-6)
    assert clone.freeze_pruned == layer.freeze_pruned


def test_wrong_joint_count_is_reported():
    with pytest.raises(ValueError, match="V=15"):
        GraphConv(4, build_adjacency("sbu", "spatial"))(random_inputs(1, 2, 20, 3))


def max_traced_rank(model, batch=1):
    spec = tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    ranks = [
        output.shape.rank for op in graph.get_operations() for output in op.outputs
        if output.shape.rank is not None
    ]
    return max(ranks)


def test_graph_layers_trace_with_tensors_of_rank_at_most_4():
    inputs = keras.Input((8, 15, 3))
    x = GraphAttention(2, 4, build_adjacency("sbu", "uniform"))(inputs)
    x = GraphConv(4, build_adjacency("sbu", "spatial"), learnable_adjacency=True)(x)
    x = TemporalConv(4, 3, strides=2)(x)
    outputs = MaskedDense(3)(keras.layers.Flatten()(x))
    assert max_traced_rank(keras.Model(inputs, outputs)) <= 4


def test_strided_pointwise_temporal_conv_equals_subsample_then_project():
    layer = TemporalConv(4, kernel_size=1, strides=3)
    x = random_inputs(2, 10, 3, 5)
    layer(x)
    kernel = (layer.kernel.numpy() * layer.kernel_mask.numpy())[0, 0]
    expected = x[:, ::3] @ kernel + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)
    assert layer.compute_output_shape((None, 10, 3, 5)) == (None, 4, 3, 4)


STRIDED_FIT = """
import numpy as np, keras
from keras_gcnprune.models import build
model = build("stgcn", "sbu", num_classes=2, frames=16, widths=(8, 16), strides=(1, 2))
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).standard_normal((45, 16, 15, 3)).astype("float32")
model.fit(x, np.arange(45) % 2, batch_size=8, epochs=40, verbose=0)
print("finished")
"""


def test_stgcn_with_strided_residual_trains_on_partial_batches_without_crashing():
    # Regression: a strided 1x1 Conv2D under oneDNN (TF 2.21) aborted the process with
    # "double free or corruption" in about half of such runs.
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", STRIDED_FIT], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "finished" in result.stdout, result.stderr[-2000:]
