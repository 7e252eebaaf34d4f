"""Pruning during `model.fit`: schedules, magnitude pruning and topologically consistent pruning."""

from keras_gcnprune.pruning.callbacks import (
    METHODS,
    MagnitudePruning,
    PruningCallback,
    TopologicalPruning,
    pruning_callback,
)
from keras_gcnprune.pruning.masks import magnitude_mask, prunable_weights, sparsity_of
from keras_gcnprune.pruning.schedules import ConstantSparsity, PolynomialDecay
from keras_gcnprune.pruning.strip import strip_pruning
from keras_gcnprune.pruning.supervision import TopologicalSupervision
from keras_gcnprune.pruning.tcp import topologically_consistent_masks
from keras_gcnprune.pruning.topology import (
    consistent_masks,
    current_masks,
    disconnected_fraction,
    reachability,
)

__all__ = [
    "METHODS",
    "ConstantSparsity",
    "MagnitudePruning",
    "PolynomialDecay",
    "PruningCallback",
    "TopologicalPruning",
    "TopologicalSupervision",
    "consistent_masks",
    "current_masks",
    "disconnected_fraction",
    "magnitude_mask",
    "prunable_weights",
    "pruning_callback",
    "reachability",
    "sparsity_of",
    "strip_pruning",
    "topologically_consistent_masks",
]
