import keras
import numpy as np
import pytest

from keras_gcnprune import models
from keras_gcnprune.layers import MaskedLayer


def masked_layers(model):
    return [layer for layer in model.layers if isinstance(layer, MaskedLayer)]


@pytest.mark.parametrize("name, layout, joints", [("attention_gcn", "sbu_pair", 30),
                                                  ("stgcn", "mediapipe_hand", 21)])
def test_build_gives_logits_of_the_right_shape_and_a_phone_size(name, layout, joints):
    model = models.build(name, layout=layout, num_classes=7, frames=16, channels=6)
    assert model.input_shape == (None, 16, joints, 6)
    assert model.output_shape == (None, 7)
    assert 10_000 <= model.count_params() <= 400_000
    logits = model(np.zeros((2, 16, joints, 6), "float32"))
    assert logits.shape == (2, 7)
    assert len(masked_layers(model)) >= 3


def test_stgcn_widths_and_strides_are_configurable():
    model = models.build("stgcn", "sbu", num_classes=3, frames=16, widths=(8, 16, 16),
                         strides=(1, 2, 2))
    assert model.get_layer("block3_tcn").output.shape == (None, 4, 15, 16)
    with pytest.raises(ValueError, match="same length"):
        models.build("stgcn", "sbu", num_classes=3, frames=16, widths=(8, 16), strides=(1,))


def test_stgcn_moving_statistics_catch_up_with_the_data_within_a_short_training():
    # Keras' default momentum (0.99) would still be 74% of the way from the initial moving mean
    # after 30 steps; the reference ST-GCN's 0.9 leaves 4%.
    model = models.build("stgcn", "sbu", num_classes=3, frames=8, widths=(8,), strides=(1,))
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(5.0, 1.0, (30 * 4, 8, 15, 3)).astype("float32")
    model.fit(x, np.zeros(len(x), "int64"), batch_size=4, epochs=1, shuffle=False, verbose=0)
    moving_mean = model.get_layer("data_bn").moving_mean.numpy()
    np.testing.assert_allclose(moving_mean, 5.0 * (1 - 0.9**30), atol=0.25)

@pytest.mark.parametrize("name", ["attention_gcn", "stgcn", "paper_gcn"])
def test_save_and_load_round_trip_weights_and_masks_exactly(name, tmp_path):
    model = models.build(name, layout="jhmdb", num_classes=5, frames=8, channels=2)
    rng = np.random.default_rng(1)
    for layer in masked_layers(model):
        for weight in layer.masked_weights():
            weight.mask.assign((rng.random(weight.mask.shape) > 0.3).astype("float32"))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for original, restored in zip(model.weights, loaded.weights):
        assert original.path == restored.path
        np.testing.assert_array_equal(original.numpy(), restored.numpy())
    x = rng.standard_normal((3, 8, 15, 2)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="attention_gcn"):
        models.build("resnet", "sbu", num_classes=2, frames=8)


def test_attention_gcn_segments_must_divide_frames():
    with pytest.raises(ValueError, match="segments"):
        models.build("attention_gcn", "sbu", num_classes=2, frames=10, segments=3)


@pytest.mark.parametrize("frames", [None, 0, 2.5])
def test_frames_must_be_a_fixed_positive_count(frames):
    with pytest.raises(ValueError, match="frames must be a positive integer.*static shapes"):
        models.build("attention_gcn", "sbu", num_classes=3, frames=frames)


def test_ensemble_refuses_members_that_do_not_fit_together():
    joint = models.build("attention_gcn", "sbu", num_classes=8, frames=16)
    other_frames = models.build("attention_gcn", "sbu", num_classes=8, frames=8)
    other_classes = models.build("attention_gcn", "sbu", num_classes=4, frames=16)
    with pytest.raises(ValueError, match="frames 8 against 16"):
        models.ensemble([joint, other_frames], [("joint",), ("motion",)])
    with pytest.raises(ValueError, match="classes 4 against 8"):
        models.ensemble([joint, other_classes], [("joint",), ("motion",)])
    with pytest.raises(ValueError, match="3 input channels for streams"):
        models.ensemble([joint, models.build("attention_gcn", "sbu", num_classes=8, frames=16)],
                        [("joint",), ("bone", "motion")])
    with pytest.raises(ValueError, match="at least 2 members"):
        models.ensemble([joint], [("joint",)])


def test_paper_gcn_features_are_the_mean_coordinates_of_four_chunks_of_each_trajectory():
    model = models.build("paper_gcn", "sbu", num_classes=8, frames=32)
    features = keras.Model(model.input, model.get_layer("segments_first").output)
    x = np.random.default_rng(0).standard_normal((2, 32, 15, 3)).astype("float32")
    expected = x.reshape(2, 4, 8, 15, 3).mean(axis=2).transpose(0, 2, 1, 3).reshape(2, 1, 15, 12)
    np.testing.assert_allclose(features(x).numpy(), expected, atol=1e-6)


def test_paper_gcn_is_three_blocks_of_single_head_attention_and_graph_convolution():
    model = models.build("paper_gcn", "sbu", num_classes=8, frames=32, filters=16)
    for index in (1, 2, 3):
        attention = model.get_layer(f"block{index}_attention")
        assert attention.heads == 1 and attention.output.shape[-1] == 16
        assert model.get_layer(f"block{index}_gcn").output.shape[-1] == 16
    assert model.get_layer("fc").output.shape[-1] == 64
    with pytest.raises(ValueError, match="multiple of chunks=4"):
        models.build("paper_gcn", "sbu", num_classes=8, frames=30)
