"""Pruning during `model.fit`: schedules, magnitude pruning and topologically consistent pruning."""

from keras_gcnprune.pruning.callbacks import MagnitudePruning, PruningCallback, TopologicalPruning
from keras_gcnprune.pruning.masks import magnitude_mask, prunable_weights, sparsity_of
from keras_gcnprune.pruning.schedules import ConstantSparsity, PolynomialDecay
from keras_gcnprune.pruning.tcp import topologically_consistent_masks
from keras_gcnprune.pruning.topology import (
    consistent_masks,
    current_masks,
    disconnected_fraction,
    reachability,
)

__all__ = [
    "ConstantSparsity",
    "MagnitudePruning",
    "PolynomialDecay",
    "PruningCallback",
    "TopologicalPruning",
    "consistent_masks",
    "current_masks",
    "disconnected_fraction",
    "magnitude_mask",
    "prunable_weights",
    "reachability",
    "sparsity_of",
    "topologically_consistent_masks",
]
