"""Skeleton layouts and the adjacency strategies computed from them."""

from keras_gcnprune.graphs.adjacency import (
    NORMALISATIONS,
    STRATEGIES,
    build_adjacency,
    normalise,
)
from keras_gcnprune.graphs.layouts import BUILTIN_LAYOUTS, SkeletonLayout, get_layout

__all__ = [
    "BUILTIN_LAYOUTS",
    "NORMALISATIONS",
    "STRATEGIES",
    "SkeletonLayout",
    "build_adjacency",
    "get_layout",
    "normalise",
]
