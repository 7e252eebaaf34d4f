"""Pruning during `model.fit`: schedules, magnitude pruning, topologically consistent pruning
and multi-rate magnitude pruning; compaction; and the Model Optimization Toolkit's API
(`prune_low_magnitude`, `UpdatePruningStep`, `strip_pruning`) for stock Keras 3 models."""

from keras_gcnprune.pruning.callbacks import (
    METHODS,
    MULTI_RATE_METHODS,
    AlignmentSchedule,
    MagnitudePruning,
    MultiRatePruning,
    PruningCallback,
    TopologicalPruning,
    pruning_callback,
)
from keras_gcnprune.pruning.compaction import compact
from keras_gcnprune.pruning.config import (
    BLOCK_DENSITY,
    PRUNING_PRESETS,
    PruningConfig,
    pruning_settings,
    settings_used_by,
)
from keras_gcnprune.pruning.masks import (
    assign_masks,
    magnitude_mask,
    prunable_weights,
    realized_rate,
)
from keras_gcnprune.pruning.multirate import (
    MultiRateModel,
    align_with_prior,
    alignment_divergence,
    closed_form_rate,
    extract,
    extraction_masks,
    recalibrate_batch_norm,
    requested_weights,
)
from keras_gcnprune.pruning.priors import GAUSSIAN, LAPLACE, PRIORS, UNIFORM, Prior, get_prior
from keras_gcnprune.pruning.schedules import ConstantSparsity, PolynomialDecay
from keras_gcnprune.pruning.strip import strip_pruning
from keras_gcnprune.pruning.supervision import TopologicalSupervision
from keras_gcnprune.pruning.tcp import topologically_consistent_masks
from keras_gcnprune.pruning.toolkit import UpdatePruningStep, prune_low_magnitude
from keras_gcnprune.pruning.topology import (
    consistent_masks,
    current_masks,
    disconnected_fraction,
    reachability,
)

__all__ = [
    "BLOCK_DENSITY",
    "GAUSSIAN",
    "LAPLACE",
    "METHODS",
    "MULTI_RATE_METHODS",
    "PRIORS",
    "PRUNING_PRESETS",
    "UNIFORM",
    "AlignmentSchedule",
    "MultiRateModel",
    "MultiRatePruning",
    "Prior",
    "align_with_prior",
    "alignment_divergence",
    "assign_masks",
    "closed_form_rate",
    "compact",
    "extract",
    "extraction_masks",
    "get_prior",
    "recalibrate_batch_norm",
    "requested_weights",
    "ConstantSparsity",
    "MagnitudePruning",
    "PolynomialDecay",
    "PruningCallback",
    "PruningConfig",
    "TopologicalPruning",
    "TopologicalSupervision",
    "UpdatePruningStep",
    "consistent_masks",
    "current_masks",
    "disconnected_fraction",
    "magnitude_mask",
    "prunable_weights",
    "prune_low_magnitude",
    "pruning_callback",
    "pruning_settings",
    "reachability",
    "realized_rate",
    "settings_used_by",
    "strip_pruning",
    "topologically_consistent_masks",
]
