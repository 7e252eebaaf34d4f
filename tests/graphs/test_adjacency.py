import numpy as np
import pytest

from keras_gcnprune.graphs import STRATEGIES, build_adjacency, get_layout, normalise


@pytest.mark.parametrize("strategy, subsets", [("uniform", 1), ("distance", 2), ("spatial", 3),
                                               ("subsets", 3)])
def test_shapes(strategy, subsets):
    assert build_adjacency("ntu_rgbd", strategy).shape == (subsets, 25, 25)


@pytest.mark.parametrize("strategy", ["uniform", "distance", "spatial"])
def test_partitions_sum_to_the_column_normalised_graph(strategy):
    layout = get_layout("sbu")
    full = build_adjacency(layout, strategy).sum(axis=0)
    expected = np.eye(15) + layout.adjacency()
    np.testing.assert_allclose(full, expected / expected.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(full.sum(axis=0), np.ones(15), rtol=1e-6)


def test_spatial_subsets_are_root_centripetal_centrifugal():
    layout = get_layout("sbu")
    root, centripetal, centrifugal = build_adjacency(layout, "spatial")
    distances = layout.hop_distances()
    neck, head = 1, 0
    # The head is farther from the torso than the neck: neck -> head flows outwards.
    assert distances[head] > distances[neck]
    assert centripetal[neck, head] > 0 and centrifugal[head, neck] > 0
    assert root[neck, neck] > 0 and centripetal[head, neck] == 0


def test_subsets_inward_is_outward_transposed_before_normalisation():
    identity, inward, outward = build_adjacency("mediapipe_hand", "subsets", "none")
    np.testing.assert_array_equal(identity, np.eye(21))
    np.testing.assert_array_equal(inward, outward.T)
    assert inward.sum() == get_layout("mediapipe_hand").num_edges


def test_symmetric_normalisation():
    matrix = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=float)
    expected = matrix / np.sqrt(np.outer(matrix.sum(0), matrix.sum(0)))
    np.testing.assert_allclose(normalise(matrix, "symmetric"), expected, rtol=1e-6)


def test_unknown_strategy_and_normalisation():
    with pytest.raises(ValueError, match="strategy"):
        build_adjacency("sbu", "random")
    with pytest.raises(ValueError, match="normalisation"):
        build_adjacency("sbu", "spatial", "l2")
    assert set(STRATEGIES) == {"uniform", "distance", "spatial", "subsets"}
