"""The app loop: the ring buffer hands the model the last frames in order, every few frames,
and smooths and thresholds its scores; LiteRT's runtimes give the Keras model's probabilities."""

import keras
import numpy as np
import pytest

from keras_gcnprune import models
from keras_gcnprune.data import Preprocessing
from keras_gcnprune.data.preprocessing import resample
from keras_gcnprune.deploy import LiteRtClassifier, StreamingClassifier, stream_decisions
from keras_gcnprune.export import export_metadata, export_tflite, with_raw_input
from tests.export.test_gpu import needs_engine


class Recorder:
    """A stand-in model that records the windows it is given and returns set scores."""

    def __init__(self, scores, frames=4, frame_shape=(2, 3)):
        self.frames, self.labels, self.frame_shape = frames, ["a", "b", "c"], frame_shape
        self.scores, self.windows = iter(scores), []

    def probabilities(self, window):
        self.windows.append(window.copy())
        return np.asarray(next(self.scores), dtype=np.float32)


def frames(count, joints=2):
    """Frame t holds the value t everywhere, so a window shows which frames it holds."""
    return [np.full((joints, 3), t, np.float32) for t in range(count)]


def test_the_buffer_hands_the_last_frames_in_order_every_k_frames():
    model = Recorder([[1, 0, 0]] * 10)
    stream = StreamingClassifier(model, every=3, window=6, smoothing=0.0, threshold=0.5)
    decisions = stream_decisions(stream, frames(15))
    assert [d.frame for d in decisions] == [5, 8, 11, 14]
    for decision, window in zip(decisions, model.windows):
        held = np.arange(decision.frame - 5, decision.frame + 1, dtype=np.float32)
        expected = resample(np.broadcast_to(held[:, None, None], (6, 2, 3)), 4)
        np.testing.assert_allclose(window, expected)


def test_scores_are_smoothed_and_thresholded():
    model = Recorder([[0.9, 0.1, 0.0], [0.0, 0.7, 0.3], [0.0, 1.0, 0.0]])
    stream = StreamingClassifier(model, every=1, window=4, smoothing=0.5, threshold=0.6)
    first, second, third = stream_decisions(stream, frames(6))
    assert (first.label, first.index) == ("a", 0) and first.confidence == pytest.approx(0.9)
    assert second.label is None and second.index == 0  # a 0.45, b 0.40: below 0.6
    assert second.confidence == pytest.approx(0.45)
    assert (third.label, third.index) == ("b", 1) and third.confidence == pytest.approx(0.7)


def test_reset_forgets_the_buffer_and_the_scores():
    model = Recorder([[1, 0, 0]] * 4)
    stream = StreamingClassifier(model, every=1, window=3)
    assert len(stream_decisions(stream, frames(4))) == 2
    stream.reset()
    assert stream.push(frames(1)[0]) is None


def test_a_bad_frame_is_refused_and_the_stream_goes_on_as_if_it_never_came():
    model = Recorder([[1, 0, 0], [0, 1, 0]] * 8)
    stream = StreamingClassifier(model, every=1, window=3, smoothing=0.5)
    good = frames(5)
    nan = good[2].copy()
    nan[1, 0] = np.nan
    for bad, message in ((nan, "Frame 2 holds NaN"), (np.zeros(3), r"\(2, 3\) for this model, "
                                                                     r"got shape \(3,\)"),
                         (np.zeros((1, 3)), "got shape"), (np.zeros((2, 2)), "got shape")):
        assert [stream.push(frame) for frame in good[:2]] == [None, None]
        with pytest.raises(ValueError, match=message):
            stream.push(bad)
        decisions = [stream.push(frame) for frame in good[2:]]
        assert all(np.isfinite(d.confidence) for d in decisions)
        np.testing.assert_array_equal(model.windows[-1][-1], resample(
            np.stack(good[2:]), 4)[-1])  # the window holds good frames only
        stream.reset()


@pytest.mark.parametrize("settings", [{"every": 0}, {"smoothing": 1.0}, {"threshold": 1.5}])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValueError, match="Need every >= 1"):
        StreamingClassifier(Recorder([]), **settings)


@pytest.fixture(scope="module")
def app_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    plain = models.build("stgcn", "sbu", num_classes=8, frames=16, channels=6)
    model = with_raw_input(plain, Preprocessing(frames=16, streams=("joint", "motion")), "sbu",
                           probabilities=True)
    path = tmp_path_factory.mktemp("app") / "app.tflite"
    export_tflite(model, path, metadata=export_metadata(model), gpu_engine="off")
    return model, path


def window(seed=0):
    return np.random.default_rng(seed).normal(0, 1, (16, 15, 3)).astype("float32")


def test_the_cpu_runtime_gives_the_keras_probabilities(app_file):
    model, path = app_file
    classifier = LiteRtClassifier(path)
    np.testing.assert_allclose(classifier.probabilities(window()), model(window()[None])[0],
                               atol=1e-5)
    assert classifier.frames == 16 and len(classifier.labels) == 8


@needs_engine
def test_the_gpu_engine_gives_the_cpu_probabilities(app_file):
    _, path = app_file
    cpu, gpu = LiteRtClassifier(path), LiteRtClassifier(path, "gpu")
    for seed in range(3):
        np.testing.assert_allclose(gpu.probabilities(window(seed)),
                                   cpu.probabilities(window(seed)), atol=1e-5)


def test_a_file_that_takes_preprocessed_inputs_is_refused(tmp_path):
    model = models.build("stgcn", "sbu", num_classes=8, frames=16)
    export_tflite(model, tmp_path / "plain.tflite", metadata=export_metadata(model),
                  gpu_engine="off")
    with pytest.raises(ValueError, match="--raw-input"):
        LiteRtClassifier(tmp_path / "plain.tflite")


def test_onsets_are_reported_once_when_confirmed_and_again_after_a_pause():
    from keras_gcnprune.deploy import Decision, OnsetDetector

    labels = [None, "none", "a", "a", "a", "b", "b", "none", "b", "b", "a", None, "a", "a"]
    decisions = [Decision(10 + 2 * i, label, 0, 0.9, 0.0) for i, label in enumerate(labels)]
    detector = OnsetDetector(background="none", confirm=2, lag=5)
    found = [d for d in map(detector.push, decisions) if d is not None]
    assert [(d.label, d.frame, d.start) for d in found] == [
        ("a", 16, 9), ("b", 22, 15), ("b", 28, 21), ("a", 36, 29)]
    with pytest.raises(ValueError, match="confirm >= 1"):
        OnsetDetector(confirm=0)
