import numpy as np

from keras_gcnprune.data import GESTURES, make_synthetic_gestures, split
from keras_gcnprune.graphs import get_layout


def test_synthetic_is_deterministic_by_seed_and_split_by_subject():
    a = make_synthetic_gestures(subjects=3, test_subjects=1, repetitions=1, seed=5)
    b = make_synthetic_gestures(subjects=3, test_subjects=1, repetitions=1, seed=5)
    c = make_synthetic_gestures(subjects=3, test_subjects=1, repetitions=1, seed=6)
    for x, y in zip(a.sequences, b.sequences):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.sequences[0][:10], c.sequences[0][:10])
    train, test = split(a, "cross_subject")
    assert set(test.meta["group"]) == {2} and set(train.meta["group"]) == {0, 1}
    assert len(a) == 3 * len(GESTURES)


def test_synthetic_hands_have_plausible_bones_and_varied_lengths():
    ds = make_synthetic_gestures(subjects=2, test_subjects=1, repetitions=2, noise=0.0)
    layout = get_layout(ds.layout)
    i, j = np.array(layout.edges).T
    lengths = [len(s) for s in ds.sequences]
    assert min(lengths) >= 24 and max(lengths) <= 56 and len(set(lengths)) > 5
    for sequence in ds.sequences:
        assert sequence.shape[1:] == (21, 3) and np.isfinite(sequence).all()
        bone = np.linalg.norm(sequence[:, i] - sequence[:, j], axis=-1)
        # Without sensor noise, every bone keeps its length over time: the hand is rigid.
        np.testing.assert_allclose(bone, np.broadcast_to(bone[0], bone.shape), rtol=1e-4)
        assert 0.05 < bone.mean() < 2.0
