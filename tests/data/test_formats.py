import json

import numpy as np
import pytest

from keras_gcnprune.data import (
    SkeletonFileError,
    load_archive,
    load_dataset,
    load_fpha,
    load_msr,
    load_ntu,
    load_sbu,
    split,
)
from keras_gcnprune.data.formats.fpha import FPHA_TO_MEDIAPIPE
from keras_gcnprune.data.formats.sbu import sbu_to_metres

RNG = np.random.default_rng(0)


def write_sbu(root, set_name, klass, seq, frames):
    folder = root / set_name / f"{klass:02d}" / f"{seq:03d}"
    folder.mkdir(parents=True)
    lines = [",".join([str(i)] + [f"{v:.5f}" for v in frame.ravel()])
             for i, frame in enumerate(frames)]
    (folder / "skeleton_pos.txt").write_text("\n".join(lines) + "\n")
    return folder / "skeleton_pos.txt"


def test_sbu_reads_both_persons_in_order(tmp_path):
    frames = RNG.random((5, 2, 15, 3))
    write_sbu(tmp_path, "s01s02", 3, 1, frames)
    write_sbu(tmp_path, "s01s03", 8, 2, RNG.random((4, 2, 15, 3)))
    ds = load_sbu(tmp_path)
    assert len(ds) == 2 and ds.layout == "sbu_pair"
    np.testing.assert_allclose(ds.sequences[0], sbu_to_metres(frames.reshape(5, 30, 3)),
                               atol=1e-4)
    assert ds.labels.tolist() == [2, 7] and ds.class_names[2] == "kicking"
    assert ds.meta["group"].tolist() == ["s01s02", "s01s03"]


def test_sbu_coordinates_are_read_in_metres_as_the_dataset_documents_them():
    stored = np.array([[0.25, 0.75, 0.5], [0.5, 0.5, 0.78125]])
    expected = [[1280 - 2560 * 0.25, 960 - 1920 * 0.75, 10000 * 0.5 / 7.8125], [0, 0, 1000]]
    np.testing.assert_allclose(sbu_to_metres(stored), np.array(expected) / 1000)


def test_sbu_fold_uses_the_documented_sets(tmp_path):
    for set_name in ("s01s02", "s03s04", "s02s01"):  # sets 1, 9 (fold 1) and 4 (fold 4)
        write_sbu(tmp_path, set_name, 1, 1, RNG.random((3, 2, 15, 3)))
    train, test = split(load_sbu(tmp_path), "fold1")
    assert sorted(test.meta["group"]) == ["s01s02", "s03s04"]
    assert train.meta["group"].tolist() == ["s02s01"]


@pytest.mark.parametrize("content, reason", [
    ("", "empty file"),
    ("0," + ",".join(["0.5"] * 90) + "\n1,0.5,0.5\n", "truncated"),
    ("0," + ",".join(["0.5"] * 45) + "\n", "expected 91"),
    ("0," + ",".join(["nan"] * 90) + "\n", "NaN"),
])
def test_bad_sbu_files_are_refused_or_skipped(tmp_path, content, reason):
    good = write_sbu(tmp_path, "s01s02", 1, 1, RNG.random((3, 2, 15, 3)))
    bad = good.parents[1] / "002" / "skeleton_pos.txt"
    bad.parent.mkdir()
    bad.write_text(content)
    with pytest.raises(SkeletonFileError, match=reason) as error:
        load_sbu(tmp_path)
    assert error.value.path == str(bad)
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        ds = load_sbu(tmp_path, on_error="skip")
    assert len(ds) == 1 and ds.skipped == [(str(bad), error.value.reason)]


def write_msr(root, action, subject, frames):
    lines = [f"{x:.6f} {y:.6f} {z:.6f} 1.000000" for x, y, z in frames.reshape(-1, 3)]
    path = root / f"a{action:02d}_s{subject:02d}_e01_skeleton3D.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_msr_drops_zero_frames_and_splits_by_subject_parity(tmp_path):
    frames = RNG.random((6, 20, 3))
    frames[2] = 0.0
    write_msr(tmp_path, 5, 1, frames)
    write_msr(tmp_path, 20, 2, RNG.random((3, 20, 3)))
    ds = load_msr(tmp_path)
    np.testing.assert_allclose(ds.sequences[0], np.delete(frames, 2, axis=0), atol=1e-5)
    train, test = split(ds, "cross_subject")
    assert train.labels.tolist() == [4] and test.labels.tolist() == [19]


def test_msr_all_zero_and_truncated_files(tmp_path):
    zero = write_msr(tmp_path, 1, 1, np.zeros((4, 20, 3)))
    with pytest.raises(SkeletonFileError, match="all 4 frames are zero"):
        load_msr(tmp_path)
    zero.unlink()
    truncated = write_msr(tmp_path, 1, 1, RNG.random((2, 20, 3)))
    truncated.write_text("\n".join(truncated.read_text().splitlines()[:-3]))
    with pytest.raises(SkeletonFileError, match="truncated"):
        load_msr(tmp_path)


def make_fpha(root, entries, skip_file=None):
    annotations = root / "Hand_pose_annotation_v1"
    sequences = {}
    for entry, _ in entries["train"] + entries["test"]:
        if entry == skip_file:
            continue
        frames = RNG.random((4, 21, 3)) * 100
        folder = annotations / entry
        folder.mkdir(parents=True)
        lines = [" ".join([str(i)] + [f"{v:.4f}" for v in f.ravel()]) for i, f in enumerate(frames)]
        (folder / "skeleton.txt").write_text("\n".join(lines))
        sequences[entry] = frames
    text = [f"Training {len(entries['train'])}"] + [f"{e} {label}" for e, label in entries["train"]]
    text += [f"Test {len(entries['test'])}"] + [f"{e} {label}" for e, label in entries["test"]]
    (root / "data_split_action_recognition.txt").write_text("\n".join(text) + "\n")
    return sequences


FPHA_ENTRIES = {
    "train": [("Subject_1/open_juice_bottle/1", 0), ("Subject_1/pour_milk/2", 1)],
    "test": [("Subject_2/open_juice_bottle/1", 0)],
}


def test_fpha_reorders_joints_to_mediapipe_and_follows_the_split_file(tmp_path):
    sequences = make_fpha(tmp_path, FPHA_ENTRIES)
    ds = load_fpha(tmp_path)
    assert ds.layout == "mediapipe_hand" and ds.class_names == ("open_juice_bottle", "pour_milk")
    original = sequences["Subject_1/open_juice_bottle/1"]
    np.testing.assert_allclose(ds.sequences[0], original[:, list(FPHA_TO_MEDIAPIPE)], atol=1e-3)
    # MediaPipe joint 4 is the thumb tip, FPHA joint 8 (wrist, 5 MCPs, thumb PIP, DIP, TIP).
    np.testing.assert_allclose(ds.sequences[0][:, 4], original[:, 8], atol=1e-3)
    train, test = split(ds, "official")
    assert len(train) == 2 and test.meta["group"].tolist() == ["Subject_2"]


def test_fpha_missing_split_entry_and_empty_file(tmp_path):
    make_fpha(tmp_path, FPHA_ENTRIES, skip_file="Subject_1/pour_milk/2")
    with pytest.raises(SkeletonFileError, match="split entry 'Subject_1/pour_milk/2'"):
        load_fpha(tmp_path)
    with pytest.warns(UserWarning):
        assert len(load_fpha(tmp_path, on_error="skip")) == 2
    empty = tmp_path / "Hand_pose_annotation_v1/Subject_1/pour_milk/2"
    empty.mkdir(parents=True)
    (empty / "skeleton.txt").write_text("")
    with pytest.raises(SkeletonFileError, match="empty file"):
        load_fpha(tmp_path)


def ntu_text(frames_bodies):
    lines = [str(len(frames_bodies))]
    for bodies in frames_bodies:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f"{body_id} 0 1 2 1 2 0 0.1 0.1 2")
            lines.append(str(len(joints)))
            lines += [" ".join(f"{v:.5f}" for v in (*xyz, 0, 0, 0, 0, 1, 0, 0, 0)) + " 2"
                      for xyz in joints]
    return "\n".join(lines) + "\n"


def test_ntu_keeps_the_most_active_bodies_and_parses_the_name(tmp_path):
    still = np.ones((25, 3))
    moving = [RNG.random((25, 3)) for _ in range(3)]
    frames = [[("72057594037931101", still), ("72057594037931102", m)] for m in moving]
    (tmp_path / "S001C002P003R001A013.skeleton").write_text(ntu_text(frames))
    ds = load_ntu(tmp_path)
    sequence = ds.sequences[0]
    assert sequence.shape == (3, 50, 3) and ds.layout == "ntu_rgbd_x2"
    np.testing.assert_allclose(sequence[:, :25], np.stack(moving), atol=1e-5)
    np.testing.assert_allclose(sequence[:, 25:], np.stack([still] * 3), atol=1e-5)
    assert ds.labels[0] == 12 and ds.meta["camera"][0] == 2 and ds.meta["group"][0] == 3
    with pytest.raises(ValueError, match="1 training and 0 test"):
        split(ds, "xview")


def test_ntu_wrong_joint_count_and_truncation(tmp_path):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text(ntu_text([[("1", np.ones((20, 3)))]]))
    with pytest.raises(SkeletonFileError, match="20 joints, expected 25"):
        load_ntu(tmp_path)
    path.write_text(ntu_text([[("1", np.ones((25, 3)))]] * 2)[:-200])
    with pytest.raises(SkeletonFileError, match="truncated"):
        load_ntu(tmp_path)


def test_archive_round_trip_keeps_everything(tmp_path):
    ds = load_dataset("synthetic:3").subset(np.arange(0, 840, 60))
    path = ds.save(tmp_path / "gestures.npz")
    loaded = load_archive(path)
    assert loaded.name == "synthetic" and loaded.class_names == ds.class_names
    assert loaded.labels.tolist() == ds.labels.tolist()
    for a, b in zip(loaded.sequences, ds.sequences):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.meta["partition"], ds.meta["partition"])
    assert [len(s) for s in split(loaded, "cross_subject")] == [len(s) for s in split(ds)]


def test_user_written_archive_with_string_labels(tmp_path):
    poses = RNG.random((9, 15, 2)).astype("float32")
    path = tmp_path / "mine.npz"
    np.savez(path, poses=poses, lengths=np.array([4, 5]), labels=np.array(["wave", "clap"]),
             meta_partition=np.array(["train", "test"]))
    ds = load_archive(path, layout="jhmdb")
    assert ds.class_names == ("clap", "wave") and ds.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(ds.sequences[1], poses[4:])
    train, test = split(ds, "given")
    assert len(train) == len(test) == 1


def test_inconsistent_archive_and_unknown_dataset(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, poses=np.zeros((3, 15, 2)), lengths=np.array([5]), labels=np.array([0]))
    with pytest.raises(SkeletonFileError, match="lengths sum to 5 frames but poses hold 3"):
        load_archive(path, layout="jhmdb")
    with pytest.raises(ValueError, match="Unknown dataset 'kinetics'"):
        load_dataset("kinetics:/somewhere")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(f"sbu:{tmp_path / 'nothing'}")


def test_a_bare_dataset_name_without_a_data_folder_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv("GCNPRUNE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data beside it
    with pytest.raises(ValueError, match="give sbu:PATH, or set GCNPRUNE_DATA"):
        load_dataset("sbu")


def test_unknown_protocol_names_the_choices():
    with pytest.raises(ValueError, match="cross_subject"):
        split(load_dataset("synthetic"), "fold1")


def small_archive(path, **changes):
    arrays = {"poses": RNG.random((9, 15, 2)).astype("float32"), "lengths": np.array([4, 5]),
              "labels": np.array([0, 1]), "layout": np.array("jhmdb")}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def nan_at(index):
    poses = RNG.random((9, 15, 2)).astype("float32")
    poses[index] = np.nan
    return poses


def beyond_float32():
    poses = RNG.random((9, 15, 2))
    poses[6, 0, 1] = 1e39  # finite in float64, inf in float32
    return poses


@pytest.mark.parametrize("changes, reason", [
    ({"poses": nan_at((6, 2, 0))}, "sequence 1: 1 NaN, infinite or beyond-float32 values "
                                   r"\(first in frame 2\)"),
    ({"poses": beyond_float32()}, "sequence 1: 1 NaN, infinite or beyond-float32"),
    ({"lengths": np.array([-1, 10])}, "sequence 0 has length -1"),
    ({"lengths": np.array([0, 9])}, "sequence 0 has length 0"),
    ({"lengths": np.array([4.0, 5.0])}, "lengths must be a 1-D integer array"),
    ({"poses": RNG.random((9, 10, 2))}, "poses have 10 joints but layout 'jhmdb' has 15"),
    ({"labels": np.array([0.0, 1.5])}, r"labels are floats with fractional .* \[1.5\]"),
    ({"labels": np.array(["wave", "jump"]), "class_names": np.array(["wave", "clap"])},
     r"labels \['jump'\] are not in class_names"),
    ({"labels": np.array([0, 3]), "class_names": np.array(["a", "b"])},
     r"labels \[3\] are outside \[0, 2\)"),
    ({"layout": np.array("jhmdb_x100000000")}, r"persons must be in \[1, 16\]"),
    ({"meta_group": np.array([1, 2, 3])}, "meta_group has 3 entries for 2 sequences"),
    ({"labels": np.array([0, 1]), "class_names": np.array(["wave", "jump\nclap"])},
     "class_names: Class name 1 \\('jump\\\\nclap'\\) must be non-blank text"),
    ({"labels": np.array([0, 1]), "class_names": np.array(["wave", "wave"])},
     "Class name 'wave' is given twice"),
    ({"labels": np.array([0, 1]), "class_names": np.array(["wave", " "])},
     "Class name 1 .* must be non-blank"),
    ({"labels": np.array([0, 10**9])}, "label 1000000000 without class_names would make "
                                       "1,000,000,001 classes"),
    ({"layout": np.array(json.dumps({"name": "huge", "joints": [f"j{i}" for i in range(20000)],
                                     "edges": []}))}, "has 20,000 joints; at most 1,024"),
])
def test_bad_archives_are_refused_naming_the_file_and_reason(tmp_path, changes, reason):
    path = small_archive(tmp_path / "bad.npz", **changes)
    with pytest.raises(SkeletonFileError, match=reason) as error:
        load_archive(path)
    assert error.value.path == str(path)


def test_damaged_archives_are_refused_naming_the_file(tmp_path):
    good = small_archive(tmp_path / "good.npz").read_bytes()
    for name, data, reason in (("empty.npz", b"", "empty or cut short"),
                               ("cut.npz", good[:len(good) // 2], "BadZipFile"),
                               ("array.npz", None, "single .npy array")):
        path = tmp_path / name
        if data is None:
            with open(path, "wb") as handle:
                np.save(handle, np.zeros(3))
        else:
            path.write_bytes(data)
        with pytest.raises(SkeletonFileError, match=reason) as error:
            load_archive(path)
        assert error.value.path == str(path)


def test_sbu_value_beyond_float32_is_refused_not_zeroed(tmp_path):
    good = write_sbu(tmp_path, "s01s02", 1, 1, RNG.random((3, 2, 15, 3)))
    good.write_text(good.read_text().replace(good.read_text().split(",")[5], "1e39", 1))
    with pytest.raises(SkeletonFileError, match="beyond-float32"):
        load_sbu(tmp_path)


def test_fpha_split_entries_must_stay_inside_the_annotations(tmp_path):
    make_fpha(tmp_path, FPHA_ENTRIES)
    split_file = tmp_path / "data_split_action_recognition.txt"
    text = split_file.read_text()
    for bad, reason in (("../../etc/passwd 0", "'..' are refused"),
                        ("/etc/x/y 0", "absolute paths"),
                        ("Subject_1/pour_milk 0", "is not Subject_<s>/<action>/<sequence>")):
        split_file.write_text(text.replace("Subject_1/pour_milk/2 1", bad))
        with pytest.raises(ValueError, match=f"{split_file}, line 3: .*{reason}"):
            load_fpha(tmp_path)
    split_file.write_text(text.replace("Training 2", "Training two"))
    with pytest.raises(ValueError, match=f"{split_file}, line 1: the section size 'two'"):
        load_fpha(tmp_path)
    split_file.write_bytes(b"Training 2\n\xff\xfe\n")
    with pytest.raises(ValueError, match=f"{split_file}: cannot read the split file as UTF-8"):
        load_fpha(tmp_path)


def test_ntu_bad_tokens_frame_counts_and_action_name_the_file(tmp_path):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    good = ntu_text([[("1", np.ones((25, 3)))]])
    for text, reason in ((good.replace("1.00000", "abc", 1), "'abc' is not a number"),
                         ("x\n" + good, "the frame count is 'x'"),
                         ("100000000000\n1\n", "frame count 100000000000 is impossible")):
        path.write_text(text)
        with pytest.raises(SkeletonFileError, match=reason) as error:
            load_ntu(tmp_path)
        assert error.value.path == str(path)
    path.unlink()
    zero = tmp_path / "S001C001P001R001A000.skeleton"
    zero.write_text(good)
    with pytest.raises(SkeletonFileError, match="action A000") as error:
        load_ntu(tmp_path)
    assert error.value.path == str(zero)


def test_validation_holds_out_whole_groups_of_the_training_split():
    from keras_gcnprune.data import validation_split

    train, test = split(load_dataset("synthetic"))
    fit, validation = validation_split(train, 0.1, seed=3)
    assert len(fit) + len(validation) == len(train)
    assert not set(fit.meta["group"]) & set(validation.meta["group"])
    assert not set(validation.meta["group"]) & set(test.meta["group"])
    assert 0.1 <= len(validation) / len(train) < 0.1 + 1 / len(set(train.meta["group"]))
    again, _ = validation_split(train, 0.1, seed=3)
    assert again.meta["group"].tolist() == fit.meta["group"].tolist()
    other, _ = validation_split(train, 0.1, seed=4)
    assert set(other.meta["group"]) != set(fit.meta["group"])


def test_validation_without_groups_takes_a_share_of_every_class():
    from keras_gcnprune.data import SkeletonDataset, validation_split

    labels = np.repeat([0, 1, 2], [10, 20, 2])
    data = SkeletonDataset([np.zeros((2, 15, 2), "float32")] * len(labels), labels,
                           ("a", "b", "c"), "jhmdb")
    fit, validation = validation_split(data, 0.25)
    assert np.bincount(validation.labels).tolist() == [3, 5, 1]
    assert np.bincount(fit.labels).tolist() == [7, 15, 1]
    with pytest.raises(ValueError, match=r"must be in \(0, 1\), got 1.0"):
        validation_split(data, 1.0)


def test_a_partition_other_than_train_or_test_is_refused_not_dropped(tmp_path):
    dataset = load_archive(small_archive(tmp_path / "a.npz",
                                         meta_partition=np.array(["train", "TEST"])))
    with pytest.raises(ValueError, match=r"holds \['TEST'\]; each sequence's partition must be "
                                         r"exactly one of \('train', 'test', 'unused'\)"):
        split(dataset, "given")


def write_landmark_folders(root, zip_path=None):
    """Two classes of two sequences, frames `<class>/<seq>/<frame>.npy` (one all-zero frame)."""
    import zipfile

    frames = {}
    for label in ("next", "stop"):
        for sequence in (3, 4):
            for frame in range(11):  # numbered past 9: the order must be numeric
                values = np.full(63, sequence * 100 + frame, dtype=np.float64)
                if frame == 5:
                    values[:] = 0  # no hand found
                frames[f"data/{label}/{sequence}/{frame}.npy"] = values
    if zip_path is None:
        for name, values in frames.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            np.save(root / name, values)
        return root
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, values in frames.items():
            buffer = __import__("io").BytesIO()
            np.save(buffer, values)
            archive.writestr(name, buffer.getvalue())
    return zip_path


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_landmarks_saved_one_npy_per_frame_load_in_frame_order(tmp_path, packed):
    from keras_gcnprune.data import load_landmark_folders

    source = write_landmark_folders(tmp_path, tmp_path / "gestures.zip" if packed else None)
    dataset = load_dataset(f"landmarks:{source}")
    assert dataset.class_names == ("next", "stop") and dataset.skeleton.name == "mediapipe_hand"
    first = dataset.sequences[0]
    assert first.shape == (10, 21, 3)  # the all-zero frame dropped
    np.testing.assert_array_equal(first[:, 0, 0], [300, 301, 302, 303, 304, 306, 307, 308,
                                                   309, 310])
    train, test = split(dataset, "mod5")  # sequence 4 of each class is the test part
    assert list(test.meta["group"]) == [4, 4] and list(train.meta["group"]) == [3, 3]
    assert load_landmark_folders(source).num_classes == 2


def write_shrec21_zip(path):
    """Two recordings of 60 frames, one with a gesture of frames 20-29, one with the track's
    kind of impossible annotation."""
    import zipfile

    def frames(offset):
        return "\n".join(";".join(str(offset + t + j / 100) for j in range(140)) + ";"
                         for t in range(60))

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("training_set/sequences/1.txt", frames(0))
        archive.writestr("training_set/sequences/5.txt", frames(1000))
        archive.writestr("training_set/annotations_revised_training.txt",
                         "1;TAP;20;29; \n5;OK;10;19;TAP;50;40;\n")
    return path


def test_shrec21_gives_gestures_and_the_background_between_them(tmp_path):
    from keras_gcnprune.data.formats.shrec21 import shrec21_streams

    path = write_shrec21_zip(tmp_path / "shrec.zip")
    with pytest.warns(UserWarning, match="sequence 5's gesture TAP;50;40 is not a known class "
                                         "from a start to a later end"):
        recordings = shrec21_streams(path)
    assert [r.number for r in recordings] == [1, 5]
    assert recordings[0].frames.shape == (60, 20, 3)
    assert recordings[0].frames[3, 1, 0] == pytest.approx(3 + 7 / 100)  # joint 1's x
    with pytest.warns(UserWarning):
        dataset = load_dataset(f"shrec21:{path}")
    assert dataset.class_names[-1] == "none" and dataset.skeleton.name == "shrec21_hand"
    clips = [(dataset.class_names[y], len(s), int(g))
             for y, s, g in zip(dataset.labels, dataset.sequences, dataset.meta["group"])]
    # The median gesture is 10 frames: background clips of 10, one every 60 frames.
    assert clips == [("none", 10, 1), ("TAP", 10, 1), ("none", 10, 1), ("none", 10, 5),
                     ("OK", 10, 5), ("none", 10, 5)]
    assert list(dataset.meta["partition"]) == ["train"] * 3 + ["test"] * 3
