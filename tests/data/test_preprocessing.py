import numpy as np
import pytest
import tensorflow as tf

from keras_gcnprune.data import Augmentation, Preprocessing, make_tf_dataset
from keras_gcnprune.data.preprocessing import (
    bones,
    centre_on_root,
    motion,
    normalise_scale,
    resample,
)
from keras_gcnprune.graphs import get_layout

RNG = np.random.default_rng(0)


def test_resample_keeps_endpoints_and_interpolates_linearly():
    sequence = np.arange(5, dtype=float)[:, None, None] * np.ones((5, 2, 3))
    out = resample(sequence, 9)
    np.testing.assert_allclose(out[:, 0, 0], np.linspace(0, 4, 9))
    np.testing.assert_allclose(resample(sequence[:1], 4), np.repeat(sequence[:1], 4, axis=0))


def test_centre_uses_first_frame_root_and_keeps_absent_joints_zero():
    layout = get_layout("sbu_pair")
    sequence = RNG.random((3, 30, 3)) + 1
    sequence[:, 20] = 0.0
    out = centre_on_root(sequence, layout)
    np.testing.assert_allclose(out[0, layout.centre], 0.0)
    np.testing.assert_allclose(out[2, 5], sequence[2, 5] - sequence[0, layout.centre])
    assert np.all(out[:, 20] == 0)


def test_scale_gives_unit_mean_bone_length():
    layout = get_layout("jhmdb")
    out = normalise_scale(RNG.random((4, 15, 2)) * 37.0, layout)
    i, j = np.array(layout.edges).T
    assert np.linalg.norm(out[:, i] - out[:, j], axis=-1).mean() == pytest.approx(1.0)


def test_bone_and_motion_streams():
    layout = get_layout("sbu")
    sequence = RNG.random((4, 15, 3))
    bone = bones(sequence, layout)
    np.testing.assert_allclose(bone[:, 0], sequence[:, 0] - sequence[:, 1])  # head - neck
    np.testing.assert_allclose(bone[:, layout.centre], 0.0)
    moved = motion(sequence)
    np.testing.assert_allclose(moved[:3], sequence[1:] - sequence[:-1])
    np.testing.assert_allclose(moved[3], 0.0)


def test_preprocessing_concatenates_streams_and_round_trips_its_config():
    prep = Preprocessing(frames=12, streams=("joint", "bone", "motion"))
    out = prep.transform(RNG.random((30, 21, 3)), "mediapipe_hand")
    assert out.shape == (12, 21, 9) and out.dtype == np.float32
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    with pytest.raises(ValueError, match="streams"):
        Preprocessing(streams=("velocity",))


def test_augmentation_rotates_and_scales_each_point_group_rigidly():
    augmentation = Augmentation(rotation=30.0, scale=0.0, noise=0.0)
    x = RNG.standard_normal((8, 5, 6)).astype("float32")  # two 3-D streams
    out = augmentation(tf.constant(x), tf.constant([1, 2])).numpy()
    norms = np.linalg.norm(x.reshape(-1, 3), axis=-1)
    np.testing.assert_allclose(np.linalg.norm(out.reshape(-1, 3), axis=-1), norms, rtol=1e-5)
    assert not np.allclose(out, x)
    flat_in, flat_out = x.reshape(-1, 3), out.reshape(-1, 3)
    rotation, *_ = np.linalg.lstsq(flat_in, flat_out, rcond=None)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-4)


def test_augmentation_in_2d_and_scaling_range():
    augmentation = Augmentation(rotation=0.0, scale=0.2, noise=0.0, point_dims=2)
    x = RNG.standard_normal((4, 15, 2)).astype("float32")
    out = augmentation(tf.constant(x), tf.constant([3, 4])).numpy()
    ratio = out / x
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-4) and 0.8 <= ratio.flat[0] <= 1.2


def test_tf_dataset_batches_and_repeats_deterministically():
    x = RNG.standard_normal((10, 4, 15, 3)).astype("float32")
    y = np.arange(10)
    def epoch(seed):
        ds = make_tf_dataset(x, y, 4, training=True, augmentation=Augmentation(), seed=seed)
        return [batch for batch in ds]
    first, again = epoch(7), epoch(7)
    assert [b[0].shape[0] for b in first] == [4, 4, 2]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    labels = np.concatenate([b[1].numpy() for b in first])
    assert sorted(labels) == list(range(10)) and labels.tolist() != list(range(10))
    test = list(make_tf_dataset(x, y, 4))
    np.testing.assert_array_equal(test[0][0].numpy(), x[:4])


def test_person_permutation_swaps_whole_persons_only():
    augmentation = Augmentation(rotation=0.0, scale=0.0, noise=0.0, persons=2)
    x = RNG.standard_normal((3, 30, 3)).astype("float32")
    outcomes = set()
    for seed in range(12):
        out = augmentation(tf.constant(x), tf.constant([seed, 0])).numpy()
        swapped = np.concatenate([x[:, 15:], x[:, :15]], axis=1)
        assert np.array_equal(out, x) or np.array_equal(out, swapped)
        outcomes.add(np.array_equal(out, x))
    assert outcomes == {True, False}


def test_training_dataset_epochs_are_a_function_of_their_number():
    x = RNG.standard_normal((10, 4, 15, 3)).astype("float32")
    y = np.arange(10)

    def epochs(count, start=0):
        epoch = tf.Variable(start, dtype=tf.int64)
        ds = make_tf_dataset(x, y, 4, training=True, augmentation=Augmentation(), seed=3,
                             epoch=epoch)
        return [np.concatenate([b[0].numpy() for b in ds]) for _ in range(count)]

    first, second, third = epochs(3)
    assert not np.allclose(first, second) and not np.allclose(second, third)
    resumed = epochs(1, start=2)[0]  # a training resumed at epoch 2
    np.testing.assert_array_equal(resumed, third)


def _ramp(frames: int = 32) -> np.ndarray:
    """Joint x rises one unit per frame; the motion stream holds those differences."""
    x = np.zeros((frames, 2, 6), np.float32)
    x[:, :, 0] = np.arange(frames)[:, None]
    x[:, :, 3] = 1.0
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temporal_crop_resamples_a_span_of_at_least_crop_and_rescales_motion(seed):
    augmentation = Augmentation(rotation=0.0, scale=0.0, noise=0.0, crop=0.5,
                                streams=("joint", "motion"))
    out = augmentation(tf.constant(_ramp()), tf.constant([seed, 7])).numpy()
    joint, motion = out[:, 0, 0], out[:, 0, 3]
    steps = np.diff(joint)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-4)  # a linear ramp stays linear
    span = joint[-1] - joint[0]
    assert 0.5 * 31 - 1e-3 <= span <= 31 + 1e-3 and joint[0] >= 0 and joint[-1] <= 31 + 1e-4
    np.testing.assert_allclose(motion, steps[0], rtol=1e-4)  # differences of the crop
    np.testing.assert_array_equal(out[:, :, 1:3], 0.0)


def test_no_crop_leaves_time_alone_and_crops_differ_between_seeds():
    still = Augmentation(rotation=0.0, scale=0.0, noise=0.0, streams=("joint", "motion"))
    np.testing.assert_array_equal(still(tf.constant(_ramp()), tf.constant([1, 2])).numpy(),
                                  _ramp())
    crop = Augmentation(rotation=0.0, scale=0.0, noise=0.0, crop=0.6)
    starts = {round(float(crop(tf.constant(_ramp()), tf.constant([s, 0]))[0, 0, 0]), 3)
              for s in range(6)}
    assert len(starts) > 1


def test_shear_is_one_linear_map_with_unit_diagonal_and_bounded_entries():
    augmentation = Augmentation(rotation=0.0, scale=0.0, noise=0.0, shear=0.3)
    basis = np.tile(np.eye(3, dtype=np.float32)[None], (4, 1, 1))  # joints e1, e2, e3
    out = augmentation(tf.constant(basis), tf.constant([5, 6])).numpy()
    matrix = out[0].T  # column j is the image of e_j
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    off = matrix[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off) <= 0.3) and np.any(off != 0)
    np.testing.assert_array_equal(out, np.broadcast_to(out[0], out.shape))


@pytest.mark.parametrize("settings, message", [
    ({"crop": 0.0}, "crop"), ({"crop": 1.5}, "crop"), ({"shear": -0.1}, "shear"),
    ({"rotation": float("nan")}, "rotation"),
])
def test_bad_augmentation_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        Augmentation(**settings)


def test_random_windows_are_parts_of_their_clip_or_its_end_and_the_start_of_another():
    from keras_gcnprune.data import make_synthetic_gestures, with_random_windows

    dataset = make_synthetic_gestures(subjects=4, repetitions=1)
    windows = with_random_windows(dataset, 3, seed=1)
    assert len(windows) == 4 * len(dataset)
    kinds = set()
    for i, clip in enumerate(dataset.sequences):
        assert windows.sequences[4 * i] is clip
        for window in windows.sequences[4 * i + 1:4 * i + 4]:
            inside = any(np.array_equal(clip[s:s + len(window)], window)
                         for s in range(len(clip) - len(window) + 1))
            if inside:
                assert len(window) >= np.ceil(len(clip) / 2)
                kinds.add("inside")
                continue
            tail = max(t for t in range(1, min(len(clip), len(window)) + 1)
                       if np.array_equal(clip[-t:], window[:t]))
            head = window[tail:]
            assert tail >= len(window) / 2  # the majority of the window is its clip's
            assert any(np.array_equal(other[:len(head)], head) for other in dataset.sequences)
            kinds.add("straddling")
        assert set(windows.labels[4 * i:4 * i + 4]) == {dataset.labels[i]}
    assert kinds == {"inside", "straddling"}
    assert with_random_windows(dataset, 0) is dataset
