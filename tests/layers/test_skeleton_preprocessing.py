"""SkeletonPreprocessing computes in the graph what Preprocessing computes in numpy."""

import itertools

import keras
import numpy as np
import pytest

from keras_gcnprune.data import Preprocessing
from keras_gcnprune.layers import SkeletonPreprocessing
from keras_gcnprune.layers.skeleton_preprocessing import parse_axes

STREAM_CHOICES = [("joint",), ("bone",), ("motion",), ("joint", "bone", "motion"),
                  ("motion", "joint")]


def windows(seed=0, count=4, frames=12, joints=15):
    """Raw windows with missing joints (all zero), including the centre joint in frame 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.4, (count, frames, joints, 3)) + rng.normal(0.0, 2.0, (count, 1, 1, 3))
    x[0, :, 3] = 0.0
    x[1, 0, 1] = 0.0   # SBU's centre joint, missing in the first frame
    x[2, 5:7] = 0.0    # a whole person missing for two frames
    x[3] = 0.0         # nothing tracked at all
    return x.astype("float32")


@pytest.mark.parametrize(("centre", "scale", "streams"),
                         list(itertools.product([True, False], [True, False], STREAM_CHOICES)))
def test_it_equals_the_numpy_preprocessing(centre, scale, streams):
    x = windows()
    preprocessing = Preprocessing(frames=12, centre=centre, scale=scale, streams=streams)
    expected = np.stack([preprocessing.transform(w, "sbu") for w in x])
    layer = SkeletonPreprocessing("sbu", centre, scale, streams)
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5, rtol=0)


def test_axes_read_the_sensor_convention():
    x = windows(seed=1)
    sensor = x[..., [2, 0, 1]] * np.array([1.0, -1.0, 1.0], "float32")  # (z, -x, y)
    layer = SkeletonPreprocessing("sbu", axes="-y,z,x")
    expected = np.stack([Preprocessing(frames=12).transform(w, "sbu") for w in x])
    np.testing.assert_allclose(layer(sensor).numpy(), expected, atol=1e-5, rtol=0)


def test_two_dimensional_joints_need_no_axes_spec():
    x = windows(seed=3)[..., :2]
    layer = SkeletonPreprocessing("sbu")
    expected = np.stack([Preprocessing(frames=12).transform(w, "sbu") for w in x])
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5, rtol=0)
    assert layer.axes == "x,y"


@pytest.mark.parametrize(("spec", "channels"), [("x,y", 3), ("x,x,z", 3), ("x,w,z", 3),
                                                 ("x,-y,z", 2), ("", 2)])
def test_bad_axes_are_refused_with_an_example(spec, channels):
    with pytest.raises(ValueError, match="for example 'x,-y,z'"):
        parse_axes(spec, channels)


def test_it_serializes():
    layer = SkeletonPreprocessing("sbu", scale=False, streams=("joint", "bone"), axes="x,-y,z")
    inputs = keras.Input((12, 15, 3))
    model = keras.Model(inputs, layer(inputs))
    restored = keras.Model.from_config(model.get_config())
    x = windows(seed=2)
    np.testing.assert_array_equal(restored(x).numpy(), model(x).numpy())
    config = restored.layers[-1].get_config()
    assert config["axes"] == "x,-y,z" and config["streams"] == ["joint", "bone"]
    assert config["layout"]["name"] == "sbu"


def test_select_streams_takes_channel_groups_in_the_order_asked():
    from keras_gcnprune.layers import SelectStreams

    x = np.arange(2 * 4 * 3 * 9, dtype="float32").reshape(2, 4, 3, 9)
    layer = SelectStreams(("joint", "bone", "motion"), take=("motion", "joint"))
    np.testing.assert_array_equal(layer(x).numpy(), np.concatenate([x[..., 6:], x[..., :3]], -1))
    again = SelectStreams.from_config(layer.get_config())
    assert again.streams == layer.streams and again.take == layer.take
    np.testing.assert_array_equal(SelectStreams(("joint", "motion"), ("motion",))(x[..., :6]),
                                  x[..., 3:6])


@pytest.mark.parametrize("streams, take, match", [
    (("joint", "bone"), ("motion",), "lack"),
    (("joint", "joint"), ("joint",), "distinct"),
    (("joint",), ("speed",), "one of"),
])
def test_select_streams_refuses_streams_it_cannot_take(streams, take, match):
    from keras_gcnprune.layers import SelectStreams

    with pytest.raises(ValueError, match=match):
        SelectStreams(streams, take)
