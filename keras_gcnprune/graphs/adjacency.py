"""Adjacency strategies: functions of a layout that return K normalised V x V matrices.

Convention (as in ST-GCN): `A[k, v, w]` is the weight with which joint `v` contributes to joint
`w` in subset `k`, so a graph aggregation computes `y[..., w, :] = sum_v A[k, v, w] x[..., v, :]`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_gcnprune.graphs.layouts import SkeletonLayout, get_layout

NORMALISATIONS = ("column", "symmetric", "none")
STRATEGIES = ("uniform", "distance", "spatial", "subsets")


def normalise(matrix: np.ndarray, method: str = "column") -> np.ndarray:
    """Normalises one adjacency matrix.

    Args:
        matrix: A (V, V) non-negative matrix.
        method: `"column"` divides each column by its sum (each joint averages what it receives,
            ST-GCN's `normalize_digraph`), `"symmetric"` computes `D^-1/2 A D^-1/2`, `"none"`
            returns a copy.

    Returns:
        The normalised (V, V) float32 matrix; empty columns stay zero.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if method == "none":
        return matrix.astype(np.float32)
    if method == "column":
        sums = matrix.sum(axis=0)
        scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        return (matrix * scale[None, :]).astype(np.float32)
    if method == "symmetric":
        degree = matrix.sum(axis=0)
        scale = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
        return (scale[:, None] * matrix * scale[None, :]).astype(np.float32)
    raise ValueError(f"Unknown normalisation {method!r}; choose one of {NORMALISATIONS}.")


def _directed_edges(layout: SkeletonLayout) -> tuple[np.ndarray, np.ndarray]:
    """Returns 0/1 matrices of inward (towards the centre) and outward bones."""
    distances = layout.hop_distances()
    inward = np.zeros((layout.num_joints, layout.num_joints), dtype=np.float32)
    for i, j in layout.edges:
        far, near = (i, j) if distances[i] >= distances[j] else (j, i)
        inward[far, near] = 1.0
    return inward, inward.T.copy()


def uniform(layout: SkeletonLayout, normalisation: str = "column") -> np.ndarray:
    """One subset: every joint and its neighbours, shape (1, V, V)."""
    identity = np.eye(layout.num_joints, dtype=np.float32)
    return normalise(identity + layout.adjacency(), normalisation)[None]


def distance(layout: SkeletonLayout, normalisation: str = "column") -> np.ndarray:
    """Two subsets by hop distance: the joint itself, then its neighbours, shape (2, V, V)."""
    full = normalise(np.eye(layout.num_joints) + layout.adjacency(), normalisation)
    identity = np.eye(layout.num_joints, dtype=bool)
    return np.stack([np.where(identity, full, 0.0), np.where(identity, 0.0, full)]).astype(
        np.float32
    )


def spatial(layout: SkeletonLayout, normalisation: str = "column") -> np.ndarray:
    """ST-GCN spatial partition: root, centripetal and centrifugal subsets, shape (3, V, V).

    Each neighbour of a joint goes to the centripetal subset when it is closer to the centre
    joint, to the centrifugal subset when it is farther, and to the root subset when it is the
    joint itself or as far as the joint. All subsets share the normalisation of the full graph.
    """
    full = normalise(np.eye(layout.num_joints) + layout.adjacency(), normalisation)
    distances = layout.hop_distances()
    source = distances[:, None]
    target = distances[None, :]
    connected = full != 0
    root = np.where(connected & (source == target), full, 0.0)
    centripetal = np.where(connected & (source < target), full, 0.0)
    centrifugal = np.where(connected & (source > target), full, 0.0)
    return np.stack([root, centripetal, centrifugal]).astype(np.float32)


def subsets(layout: SkeletonLayout, normalisation: str = "column") -> np.ndarray:
    """Identity, inward and outward subsets (2s-AGCN), each normalised, shape (3, V, V)."""
    inward, outward = _directed_edges(layout)
    identity = np.eye(layout.num_joints, dtype=np.float32)
    return np.stack(
        [identity, normalise(inward, normalisation), normalise(outward, normalisation)]
    )


_STRATEGY_FUNCTIONS: dict[str, Callable[[SkeletonLayout, str], np.ndarray]] = {
    "uniform": uniform,
    "distance": distance,
    "spatial": spatial,
    "subsets": subsets,
}


def build_adjacency(
    layout: SkeletonLayout | str | dict,
    strategy: str = "spatial",
    normalisation: str = "column",
) -> np.ndarray:
    """Returns the (K, V, V) adjacency subsets of a layout for a strategy.

    Args:
        layout: A `SkeletonLayout` or anything `get_layout` accepts.
        strategy: `"uniform"` (K=1), `"distance"` (K=2), `"spatial"` (K=3, ST-GCN partition) or
            `"subsets"` (K=3, identity / inward / outward).
        normalisation: See `normalise`.

    Returns:
        A float32 array of shape (K, V, V).

    Example:
        >>> build_adjacency("sbu", "spatial").shape
        (3, 15, 15)
    """
    if strategy not in _STRATEGY_FUNCTIONS:
        raise ValueError(f"Unknown adjacency strategy {strategy!r}; choose one of {STRATEGIES}.")
    if normalisation not in NORMALISATIONS:
        raise ValueError(
            f"Unknown normalisation {normalisation!r}; choose one of {NORMALISATIONS}."
        )
    return _STRATEGY_FUNCTIONS[strategy](get_layout(layout), normalisation)
