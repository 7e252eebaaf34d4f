"""Loaders on the real datasets of ../shared/data (skipped when it is absent)."""

import numpy as np
import pytest

from keras_gcnprune.data import load_jhmdb, load_msr, load_sbu, protocol_names, split
from keras_gcnprune.graphs import get_layout

pytestmark = pytest.mark.real_data


def test_sbu_has_282_sequences_and_the_documented_fold_sizes(real_data):
    ds = load_sbu(real_data / "sbu_kinect_interaction")
    assert len(ds) == 282 and ds.num_classes == 8 and ds.num_joints == 30
    lengths = [len(s) for s in ds.sequences]
    assert (min(lengths), max(lengths), int(np.median(lengths))) == (10, 46, 23)
    assert [len(split(ds, f"fold{k}")[1]) for k in range(1, 6)] == [55, 52, 56, 54, 65]


def test_sbu_skeletons_keep_their_bone_lengths_as_they_move(real_data):
    """In metres a bone's length varies little over a sequence; read as stored (each axis
    scaled differently) it varies more than twice as much."""
    ds = load_sbu(real_data / "sbu_kinect_interaction")
    i, j = np.array(get_layout("sbu").edges).T
    variation = []
    for sequence in ds.sequences:
        for person in sequence.reshape(len(sequence), 2, 15, 3).transpose(1, 0, 2, 3):
            lengths = np.linalg.norm(person[:, i] - person[:, j], axis=-1)
            variation.append((lengths.std(axis=0) / lengths.mean(axis=0)).mean())
    assert np.mean(variation) < 0.03


def test_msr_reports_the_known_bad_file_and_keeps_the_rest(real_data):
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        ds = load_msr(real_data / "msr_action3d", on_error="skip")
    assert [path.endswith("a13_s09_e02_skeleton3D.txt") for path, _ in ds.skipped] == [True]
    assert "all" in ds.skipped[0][1] and "zero" in ds.skipped[0][1]
    partially_zero = ds.sequences[list(ds.meta["source"]).index("a13_s09_e03_skeleton3D.txt")]
    assert len(partially_zero) == 936 - 740
    assert all(np.any(s != 0, axis=(1, 2)).all() for s in ds.sequences)
    train, test = split(ds, "cross_subject")
    assert (len(train), len(test)) == (291, 275)


def test_jhmdb_merges_the_three_splits(real_data):
    ds = load_jhmdb(real_data / "jhmdb")
    assert len(ds) == 609 and ds.num_classes == 14 and ds.channels == 2
    assert protocol_names("jhmdb") == ("split1", "split2", "split3")
    sizes = [tuple(len(part) for part in split(ds, f"split{k}")) for k in (1, 2, 3)]
    assert sizes == [(433, 176), (433, 176), (434, 175)]


def test_mediapipe_gestures_load_from_their_zip_with_the_documented_split(real_data):
    from keras_gcnprune.data import load_dataset, split

    with pytest.warns(UserWarning, match="general/64: all 30 frames are zero"):
        dataset = load_dataset(f"landmarks:{real_data / 'mediapipe_gestures'}", on_error="skip")
    assert len(dataset) == 508 and dataset.num_classes == 8
    train, test = split(dataset, "mod5")
    assert (len(train), len(test)) == (408, 100)


def test_shrec21_reads_its_zip_and_skips_the_known_bad_annotation(real_data):
    from keras_gcnprune.data.formats.shrec21 import shrec21_streams

    with pytest.warns(UserWarning, match="sequence 64's gesture TAP;1135;162"):
        recordings = shrec21_streams(real_data / "shrec21")
    assert len(recordings) == 108
    assert sum(len(r.gestures) for r in recordings) == 407
