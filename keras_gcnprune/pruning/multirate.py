"""Multi-rate magnitude pruning (SRMP / MRMP): band-stop masks on latent weights aligned with a
prior, one training for every pruning rate (docs/design.md, Methods).

Every pruned kernel `w` (channel kernels and, by default, learned adjacencies) is used as
`w * g(w)` with the band-stop
`g(w) = sigmoid(steepness * (|w| / rms(w) - z(r)))`: near 0 for `|w| < z(r) rms(w)`, near 1
outside. `z(r) = Prior.threshold(r)` is the prior's quantile for rate `r` in units of the
kernel's root mean square. A KL divergence (`alignment_divergence`) pulls the distribution of
every kernel's standardized magnitudes towards the prior's, so the fraction of weights inside the
band is `r` by construction, at every rate, trained or not: `extract(model, r)` prunes at any `r`
without retraining. Training uses the closed-form band; extraction keeps each kernel's
largest-magnitude weights up to its share of the requested count (the empirical quantile, which
the closed-form threshold approximates), so that every extracted model keeps exactly the weights
asked for and methods compare at equal budgets; `closed_form_rate` reports what the closed-form
threshold alone would have realized.

`MultiRateModel` wraps a network and trains it with `model.fit`: each step evaluates the network
at several rates on the same latent weights (SRMP is one rate); the callback
`keras_gcnprune.pruning.MultiRatePruning` ramps the rates and anneals the steepness so the masks
end crisp.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gcnprune.losses import logit_divergence
from keras_gcnprune.pruning.masks import (
    kept_count,
    masked_layers,
    prunable_entries,
    prunable_weights,
    rms_normalised,
    split_like,
)
from keras_gcnprune.pruning.priors import Prior, get_prior
from keras_gcnprune.pruning.strip import strip_pruning
from keras_gcnprune.pruning.tcp import topologically_consistent_masks

ALIGNMENT_SCOPES = ("layer", "global")
# Rates whose thresholds set the widths of the histogram's sigmoid steps: a 0.05 grid plus the
# tail, where the distribution decides the realized rates that matter.
STEP_WIDTH_RATES = tuple(round(0.05 * k, 2) for k in range(1, 20)) + (
    0.96, 0.97, 0.98, 0.99, 0.995, 0.998)
# Rates whose thresholds are the bin edges: that grid, refined to every 0.01 from 0.80 to 0.99
# where rates are asked for and unseen rates fall between trained ones (a bin constrains only
# its total mass, so weights could pile up inside a wide one, just above a trained threshold).
HISTOGRAM_RATES = tuple(sorted({*STEP_WIDTH_RATES, *(round(0.01 * k, 2) for k in range(80, 100))}))
_EPSILON = 1e-12


def standardized_magnitudes(kernel):
    """`|w| / rms(w)`, the RMS held constant for the gradient (it sets the unit, not a target)."""
    rms = ops.sqrt(ops.mean(ops.square(kernel)))
    return ops.abs(kernel) / ops.stop_gradient(ops.maximum(rms, _EPSILON))


def band_stop(kernel, threshold, steepness):
    """The smooth band-stop `sigmoid(steepness * (|w| / rms(w) - threshold))` of a kernel."""
    return ops.sigmoid(steepness * (standardized_magnitudes(kernel) - threshold))


def band_stop_mask(values: np.ndarray, threshold: float) -> np.ndarray:
    """The crisp band-stop of an array: 1 where `|w| / rms(w) >= threshold`, else 0 (float32)."""
    standardized = rms_normalised(np.asarray(values, dtype=np.float32))
    return (np.abs(standardized) >= np.float32(threshold)).astype(np.float32)


def band_stop_masks(network: keras.Model, threshold: float, include_adjacency: bool = True
                    ) -> dict[str, np.ndarray]:
    """The crisp band-stop masks of every pruned kernel of `network`, by mask path
    (`include_adjacency`: see `prunable_weights`)."""
    return {w.mask.path: band_stop_mask(w.kernel.numpy(), threshold)
            for w in prunable_weights(network, include_adjacency)}


def align_with_prior(network: keras.Model, prior: str | Prior = "gaussian",
                     include_adjacency: bool = True) -> None:
    """Reshapes every pruned kernel's distribution into the prior's, keeping its magnitude
    ranking, signs and RMS: the weight of rank `i` in `|w|` becomes `rms(w) * z((i + 0.5) / n)`.

    On freshly initialized kernels this is a random draw from the prior (ranks are random), so
    training starts aligned and realized rates are right from the first step; on trained
    kernels it keeps which weights are largest.

    Args:
        network: A model built from the package's masked layers; changed in place.
        prior: The prior.
        include_adjacency: Align the learned adjacencies too (see `prunable_weights`).
    """
    prior = get_prior(prior)
    for weight in prunable_weights(network, include_adjacency):
        values = weight.kernel.numpy()
        ranks = np.argsort(np.argsort(np.abs(values), axis=None, kind="stable"))
        quantiles = prior.thresholds((ranks + 0.5) / ranks.size).reshape(values.shape)
        rms = np.sqrt(np.mean(np.square(values)))
        weight.kernel.assign((np.sign(values) * quantiles * rms).astype(np.float32))


class Histogram:
    """The alignment histogram: bins of standardized magnitudes whose edges are the prior's
    thresholds for `HISTOGRAM_RATES`, so a bin's prior mass is exactly a difference of rates.

    Estimator (the reason for this choice): a weight's soft membership of a bin is a difference
    of sigmoid steps at the bin's edges (memberships sum to one, gradients are non-zero near
    edges). The estimated mass above an edge is then a smooth count of the weights above that
    threshold, which is exactly what decides the realized rate at that edge: matching the
    histogram to the prior's masses matches the realized rates of the grid, and the quantile map
    fixes the rest. Each step is as wide as a quarter of the gap between neighbouring
    thresholds of `step_width_rates`, interpolated at the edges: steps as narrow as the fine
    edges would leave most weights outside every step early in training, with little gradient.
    """

    def __init__(self, prior: Prior, rates: Sequence[float] = HISTOGRAM_RATES,
                 step_width_rates: Sequence[float] = STEP_WIDTH_RATES) -> None:
        self.edges = prior.thresholds(rates)
        coarse = prior.thresholds(step_width_rates)
        self.widths = np.interp(self.edges, coarse, _step_widths(coarse)).astype(np.float32)
        self.prior_mass = np.diff(np.concatenate([[0.0], rates, [1.0]])).astype(np.float32)

    def masses(self, kernel):
        """Soft fraction of the kernel's weights in each bin, shape `(bins,)`."""
        u = ops.reshape(standardized_magnitudes(kernel), (-1, 1))
        above = ops.mean(ops.sigmoid((u - self.edges) / self.widths), axis=0)
        above = ops.concatenate([ops.ones((1,)), above, ops.zeros((1,))], axis=0)
        return above[:-1] - above[1:]

    def divergence(self, masses):
        """`KL(P || Q)` of estimated bin masses `P` against the prior's masses `Q`."""
        masses = ops.maximum(masses, _EPSILON)
        masses = masses / ops.sum(masses)
        return ops.sum(masses * ops.log(masses / self.prior_mass))


def _step_widths(edges: np.ndarray) -> np.ndarray:
    """A quarter of the gap from each edge to its nearest neighbour."""
    gaps = np.diff(np.concatenate([[0.0], edges, [edges[-1] + (edges[-1] - edges[-2])]]))
    return 0.25 * np.minimum(gaps[:-1], gaps[1:])


def alignment_divergence(kernels: Sequence, histogram: Histogram, scope: str = "layer"):
    """KL divergence between the latent weights' standardized magnitudes and the prior.

    Args:
        kernels: The latent kernels (variables or tensors).
        histogram: The `Histogram` of the prior.
        scope: `"layer"`: the mean over kernels of each kernel's divergence (every kernel is
            aligned, so every kernel reaches the rate); `"global"`: one divergence of all
            weights pooled (per-kernel deviations may cancel).

    Returns:
        A scalar tensor.
    """
    if scope not in ALIGNMENT_SCOPES:
        raise ValueError(f"scope must be one of {ALIGNMENT_SCOPES}, got {scope!r}.")
    masses = [histogram.masses(kernel) for kernel in kernels]
    if scope == "layer":
        return ops.mean(ops.stack([histogram.divergence(m) for m in masses]))
    sizes = np.array([np.prod(kernel.shape) for kernel in kernels], dtype=np.float32)
    pooled = ops.sum(ops.stack(masses) * (sizes / sizes.sum())[:, None], axis=0)
    return histogram.divergence(pooled)


class BandStopSource:
    """The `mask_source` that `MultiRateModel` installs in the network's masked layers.

    Training: the smooth band-stop at the active threshold; inference: the crisp one. Kernels
    outside `kernels` (learned adjacencies when they are not pruned) keep their own masks.
    """

    def __init__(self, kernels: Iterable[str], threshold, steepness) -> None:
        self.kernels = set(kernels)
        self.threshold = threshold
        self.steepness = steepness

    def __call__(self, layer, kernel, mask, training=None):
        if kernel.path not in self.kernels:
            return kernel * mask
        if training:
            return kernel * band_stop(kernel, self.threshold, self.steepness)
        keep = standardized_magnitudes(kernel) >= self.threshold
        return kernel * ops.cast(keep, kernel.dtype)


@contextmanager
def _installed(network: keras.Model, source: BandStopSource):
    layers = masked_layers(network)
    for layer in layers:
        layer.mask_source = source
    try:
        yield
    finally:
        for layer in layers:
            layer.mask_source = None


def sort_rates(rates: Sequence[float], weights: Sequence[float] | None = None
               ) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """`rates` sorted (see `check_rates`) and their loss `weights`, given in the order of
    `rates`, put in the same order.

    Raises:
        ValueError: for rates `check_rates` refuses, or unless `weights` is None or one
            positive number per rate.
    """
    if weights is None:
        return check_rates(rates), None
    weights = tuple(float(w) for w in np.asarray(weights, dtype=np.float64).ravel())
    if len(weights) != len(rates) or min(weights, default=0.0) <= 0:
        raise ValueError(f"rate_weights must be {len(rates)} positive numbers, one per rate "
                         f"{list(rates)}, got {list(weights)}.")
    order = np.argsort(np.asarray(rates, dtype=np.float64), kind="stable")
    return check_rates(rates), tuple(weights[i] for i in order)


SELF_DISTILLATION_TEACHERS = ("densest", "next")


def check_self_distillation(weight: float, rates: int, rates_per_step: int | None,
                            teacher: str = "densest") -> None:
    """Refuses a self-distillation weight that is negative, not finite, or that has no
    denser rate to learn from (one rate per step), and an unknown teacher."""
    if teacher not in SELF_DISTILLATION_TEACHERS:
        raise ValueError(f"self_distillation_teacher must be one of "
                         f"{SELF_DISTILLATION_TEACHERS}, got {teacher!r}.")
    if not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"self_distillation must be a non-negative number, got {weight}.")
    if weight and min(rates_per_step or rates, rates) < 2:
        raise ValueError(
            f"self_distillation={weight} needs two rates per step or more, so that a sparser "
            f"rate learns from a denser one; got {rates} rate(s), rates_per_step "
            f"{rates_per_step}. Train more rates (mrmp) or set self_distillation 0.")


def _normalized_rate_weights(rates: tuple[float, ...],
                             weights: tuple[float, ...] | None) -> np.ndarray:
    """The per-rate loss weights scaled to mean 1 (default: `1 / sqrt(1 - rate)`)."""
    if weights is None:
        weights = 1.0 / np.sqrt(1.0 - np.asarray(rates))
    weights = np.asarray(weights, dtype=np.float64)
    return (weights / weights.mean()).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class MultiRateModel(keras.Model):
    """Trains a network for several pruning rates at once on the same latent weights.

    Each training step runs the network once per evaluated rate, each time with every pruned
    kernel behind a smooth band-stop at that rate's threshold, and minimizes the weighted mean
    of their losses (`rate_weights`, normalized to mean 1, so the learning rate means what it
    means for one rate) plus `alignment_weight` times the prior-alignment divergence, which the
    model adds with `add_loss` and logs as `alignment`. Inference (validation, `evaluate`,
    `predict`) uses crisp band-stops at the largest rate. With one rate this is single-rate
    pruning (SRMP).

    Batch normalization: the network's moving statistics mix all rates during training;
    `extract` recalibrates them for the rate it extracts (exact per-channel moments of each
    batch-norm input over a few training batches, layer after layer), which also serves rates
    never trained. Keeping per-rate statistics instead would need one set per rate and none
    exists for unseen rates.

    Args:
        network: A model built from the package's masked layers (it is trained in place).
        rates: The pruning rates, in (0, 1).
        prior: `"gaussian"`, `"laplace"`, `"uniform"` or a `Prior`.
        alignment_weight: Coefficient of the divergence (a variable: callbacks may schedule
            it, see `AlignmentSchedule`).
        alignment_scope: `"layer"` or `"global"` (see `alignment_divergence`).
        rates_per_step: Rates evaluated per step (None: all). Otherwise the largest rate and
            `rates_per_step - 1` others drawn at random every step.
        rate_weights: Weights of the per-rate losses, one per rate in the order of `rates`
            (None: proportional to `1 / sqrt(1 - rate)`): the sparsest networks are the
            hardest to train, and their few weights are shared by every denser one.
        self_distillation: Weight of self-distillation: every sparser rate evaluated in a
            step also learns the densest evaluated rate's predicted distribution, as
            `self_distillation` times their KL divergence (weighted per rate like the losses;
            the densest rate's logits are a fixed target, no gradient flows back through
            them; the network must output logits, as the package's models do). 0: none. It
            needs two rates per step or more.
        self_distillation_teacher: Which rate each sparser rate learns from: `"densest"`,
            the densest rate evaluated in the step, or `"next"`, the next denser one
            evaluated (a chain: 99% from 98%, 98% from 95%, ...).
        steepness: Initial band-stop steepness (`MultiRatePruning` anneals it).
        seed: Seed of the rate sampling.
        include_adjacency: Prune the learned adjacencies with the channel kernels (see
            `prunable_weights`); False: they stay dense.
        **kwargs: Passed to `keras.Model`.

    Example:
        >>> from keras_gcnprune import models
        >>> from keras_gcnprune.graphs import get_layout
        >>> network = models.build("attention_gcn", layout=get_layout("sbu"), num_classes=8,
        ...                        frames=16, channels=3)
        >>> trainer = MultiRateModel(network, rates=(0.9, 0.95, 0.99))
        >>> trainer.compile("adam", "sparse_categorical_crossentropy")
        >>> # trainer.fit(data, epochs=30, callbacks=[MultiRatePruning(schedule)])
        >>> # pruned = extract(trainer, 0.97, calibration_data=x_train)
    """

    def __init__(self, network: keras.Model, rates: Sequence[float], prior: str | Prior =
                 "gaussian", alignment_weight: float = 10.0, alignment_scope: str = "layer",
                 rates_per_step: int | None = None,
                 rate_weights: Sequence[float] | None = None, self_distillation: float = 0.0,
                 self_distillation_teacher: str = "densest", steepness: float = 20.0,
                 seed: int | None = None,
                 include_adjacency: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rates, rate_weights = sort_rates(rates, rate_weights)
        if rates_per_step is not None and not 1 <= rates_per_step <= len(self.rates):
            raise ValueError(f"rates_per_step must be in [1, {len(self.rates)}] (the number of "
                             f"rates) or None, got {rates_per_step}.")
        check_self_distillation(self_distillation, len(self.rates), rates_per_step,
                                self_distillation_teacher)
        if alignment_scope not in ALIGNMENT_SCOPES:
            raise ValueError(f"alignment_scope must be one of {ALIGNMENT_SCOPES}, got "
                             f"{alignment_scope!r}.")
        self.network = network
        self.prior = get_prior(prior)
        self.alignment_scope = alignment_scope
        self.rates_per_step = rates_per_step
        self.rate_weights = _normalized_rate_weights(self.rates, rate_weights)
        self.self_distillation = float(self_distillation)
        self.self_distillation_teacher = self_distillation_teacher
        self.seed = seed
        self.include_adjacency = bool(include_adjacency)
        self.histogram = Histogram(self.prior)
        self.thresholds = self.add_weight(
            name="thresholds", shape=(len(self.rates),), trainable=False,
            initializer=keras.initializers.Constant(self.prior.thresholds(self.rates)))
        self.steepness = self.add_weight(
            name="steepness", shape=(), trainable=False,
            initializer=keras.initializers.Constant(steepness))
        self.alignment_weight = self.add_weight(
            name="alignment_weight", shape=(), trainable=False,
            initializer=keras.initializers.Constant(alignment_weight))
        self.alignment_tracker = keras.metrics.Mean(name="alignment")
        self._seed_generator = keras.random.SeedGenerator(seed)
        self._active_threshold = None
        if network.built:
            self.build(network.input_shape)

    def build(self, input_shape=None) -> None:
        # Every variable is created above; building marks the model ready for callbacks such as
        # BackupAndRestore that need a built model before the first step.
        if not self.network.built:
            self.network.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        threshold = self.thresholds[-1] if self._active_threshold is None \
            else self._active_threshold
        kernels = (w.kernel.path for w in self.pruned_weights())
        source = BandStopSource(kernels, threshold, self.steepness)
        with _installed(self.network, source):
            outputs = self.network(inputs, training=training)
        if not training:
            self._alignment()  # logged as val_alignment during evaluation
        return outputs

    def pruned_weights(self) -> list:
        """The network's masked weights behind band-stops."""
        return prunable_weights(self.network, self.include_adjacency)

    def _alignment(self):
        """The divergence of the latent weights from the prior, tracked as `alignment`."""
        kernels = [w.kernel for w in self.pruned_weights()]
        divergence = alignment_divergence(kernels, self.histogram, self.alignment_scope)
        self.alignment_tracker.update_state(divergence)
        return divergence

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        indices = self._rates_of_this_step()
        with tf.GradientTape() as tape:
            predictions = []
            for index in indices:
                self._active_threshold = ops.take(self.thresholds, index)
                predictions.append(self(x, training=True))
            self._active_threshold = None
            # Once per step: every rate shares the latent weights, hence the divergence.
            self.add_loss(self.alignment_weight * self._alignment())
            if self.self_distillation:
                self.add_loss(self.self_distillation
                              * self._self_distillation_loss(predictions, indices))
            y_pred = ops.concatenate(predictions, axis=0)
            if sample_weight is None:
                sample_weight = ops.ones(ops.shape(y)[:1])
            loss_weight = ops.concatenate(
                [sample_weight * ops.take(self.rate_weights, index) for index in indices], axis=0)
            y, sample_weight = (ops.concatenate([t] * len(indices), axis=0)
                                for t in (y, sample_weight))
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=loss_weight,
                                     training=True)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def _self_distillation_loss(self, predictions: list, indices: list):
        """Mean over the evaluated rates (weighted like their losses) of the KL divergence of
        each rate's predicted distribution from its teacher's (the densest evaluated rate, or
        the next denser one), held fixed."""
        indices = ops.stack([ops.cast(index, "int32") for index in indices])
        order = ops.argsort(indices)  # densest first; a sampled step lists the largest first
        logits = ops.take(ops.stack(predictions), order, axis=0)
        teachers = logits[:1] if self.self_distillation_teacher == "densest" else \
            ops.concatenate([logits[:1], logits[:-1]], axis=0)
        divergence = logit_divergence(ops.stop_gradient(teachers), logits)
        weights = ops.take(self.rate_weights, ops.take(indices, order))
        return ops.mean(ops.mean(divergence, axis=1) * weights)

    def _rates_of_this_step(self) -> list:
        """Indices of the rates this step evaluates: all, or the largest and others drawn."""
        count = len(self.rates)
        if self.rates_per_step is None or self.rates_per_step == count:
            return list(range(count))
        others = keras.random.shuffle(ops.arange(count - 1), seed=self._seed_generator)
        return [count - 1] + [others[i] for i in range(self.rates_per_step - 1)]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            rates=list(self.rates),
            prior=self.prior.name,
            alignment_weight=float(self.alignment_weight.numpy()),
            alignment_scope=self.alignment_scope,
            rates_per_step=self.rates_per_step,
            rate_weights=[float(w) for w in self.rate_weights],
            self_distillation=self.self_distillation,
            self_distillation_teacher=self.self_distillation_teacher,
            steepness=float(self.steepness.numpy()),
            seed=self.seed,
            include_adjacency=self.include_adjacency,
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> MultiRateModel:
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


MAX_RATES = 64


def check_rates(rates: Sequence[float]) -> tuple[float, ...]:
    """Returns the rates sorted, after checking that they are distinct, in (0, 1) and at most
    `MAX_RATES` (each trained rate costs a forward pass per step, each extracted one a model)."""
    rates = tuple(sorted(float(r) for r in rates))
    if len(rates) > MAX_RATES:
        raise ValueError(f"{len(rates)} rates given; at most {MAX_RATES} are accepted (each "
                         "costs a forward pass per training step, or a model to extract).")
    if not rates or len(set(rates)) != len(rates) or not all(0.0 < r < 1.0 for r in rates):
        raise ValueError(f"rates must be distinct values in (0, 1), got {list(rates)}.")
    return rates


def quantile_keys(values: np.ndarray) -> np.ndarray:
    """Each entry's position in its array's magnitude ranking over the array's size, in
    [0, 1): 0 for the largest, `(i - 1) / n` for the `i`-th (ties by position)."""
    order = np.argsort(-np.abs(np.asarray(values, dtype=np.float32)).ravel(), kind="stable")
    keys = np.empty(order.size, dtype=np.float64)
    keys[order] = np.arange(order.size) / order.size
    return keys.reshape(np.shape(values))


def requested_weights(network: keras.Model, rate: float, include_adjacency: bool = True) -> int:
    """The weights a pruned model at `rate` keeps: `round(prunable entries * (1 - rate))`."""
    return kept_count(prunable_entries(network, include_adjacency), rate)


def extraction_masks(network: keras.Model, rate: float, consistent: bool = False,
                     include_adjacency: bool = True) -> dict[str, np.ndarray]:
    """Masks that keep exactly `requested_weights(network, rate)` weights, by mask path.

    Every entry is ranked by its kernel's empirical quantile (`quantile_keys`) and the lowest
    keys are kept: each kernel keeps its largest-magnitude weights in proportion to its size
    (at least one, from as many weights as kernels on), which on aligned weights is the
    closed-form band-stop at `rate` up to each kernel's deviation from the prior. One ranking
    serves every rate, so the masks of higher rates are nested in those of lower ones.

    At high rates many of the weights so kept lie on no input-to-output path (a weight into a
    channel that nothing feeds, or out of one that feeds nothing) and are wasted. `consistent`
    keeps the best-ranked topologically consistent subnetwork of the same size instead
    (`topologically_consistent_masks` on this ranking), so every kept weight is on a path; its
    masks are no longer nested across rates.

    Args:
        network: The multi-rate trained network.
        rate: Pruning rate in (0, 1).
        consistent: Keep the best-ranked consistent subnetwork of the same size.
        include_adjacency: Prune the learned adjacencies too (see `prunable_weights`).
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}.")
    weights = prunable_weights(network, include_adjacency)
    keep = requested_weights(network, rate, include_adjacency)
    if keep < len(weights):
        raise ValueError(f"Rate {rate} keeps {keep} weights, fewer than the {len(weights)} "
                         f"pruned kernels of {network.name!r}: a kernel without weights cuts "
                         "the network. Choose a lower rate.")
    keys = [quantile_keys(w.kernel.numpy()) for w in weights]
    if consistent:  # the lowest keys rank first
        scores = {w.mask.path: 1.0 - key for w, key in zip(weights, keys)}
        return topologically_consistent_masks(network, rate, scores,
                                              include_adjacency=include_adjacency)
    flat = np.concatenate([k.ravel() for k in keys])
    kept = np.zeros(flat.size, dtype=np.float32)
    kept[np.argsort(flat, kind="stable")[:keep]] = 1.0
    return {w.mask.path: mask for w, mask in zip(weights, split_like(kept, keys))}


def closed_form_rate(network: keras.Model, rate: float, prior: str | Prior = "gaussian",
                     include_adjacency: bool = True) -> float:
    """The rate the closed-form band-stop threshold `a(rate)` realizes on the latent weights
    (what training used; extraction keeps the exact count instead)."""
    masks = band_stop_masks(network, get_prior(prior).threshold(rate), include_adjacency)
    total = sum(mask.size for mask in masks.values())
    return 1.0 - sum(float(mask.sum()) for mask in masks.values()) / total


def extract(model: keras.Model, rate: float, consistent: bool = False, calibration_data=None,
            calibration_batches: int = 10, include_adjacency: bool = True) -> keras.Model:
    """A plain pruned model at any rate from a multi-rate trained model, without retraining.

    It keeps exactly `requested_weights(network, rate)` weights (see `extraction_masks`),
    whatever the rate, trained or not.

    Args:
        model: A `MultiRateModel`, or its network.
        rate: Pruning rate in (0, 1), trained or not.
        consistent: Keep the best-ranked subnetwork whose every weight lies on an
            input-to-output path (see `extraction_masks`), of the same size.
        calibration_data: Inputs to recalibrate batch normalization on (an array of inputs,
            or an iterable of batches `x` or `(x, y)`); None keeps the trained statistics.
        calibration_batches: Batches of `calibration_data` used (arrays: batches of 32 drawn
            at random with a fixed seed).
        include_adjacency: Whether the learned adjacencies were pruned in training (a
            network only; a `MultiRateModel` knows).

    Returns:
        A copy of the network whose kernels hold `kernel * mask`, masks at `rate` (see
        `strip_pruning`).

    Example:
        >>> pruned = extract(trainer, 0.97, calibration_data=x_train)  # doctest: +SKIP
    """
    if isinstance(model, MultiRateModel):
        network, include_adjacency = model.network, model.include_adjacency
    else:
        network = model
    masks = extraction_masks(network, rate, consistent, include_adjacency)
    extracted = strip_pruning(network, masks)
    if calibration_data is not None:
        recalibrate_batch_norm(extracted, calibration_data, calibration_batches)
    return extracted


def _batches(data, count: int, batch_size: int = 32):
    if isinstance(data, np.ndarray):
        # A fixed random sample: datasets are often stored sorted by class.
        order = np.random.default_rng(0).permutation(len(data))[:count * batch_size]
        data = [data[order[i:i + batch_size]] for i in range(0, len(order), batch_size)]
    for index, batch in enumerate(data):
        if index == count:
            return
        yield batch[0] if isinstance(batch, tuple | list) else batch


def recalibrate_batch_norm(model: keras.Model, data, batches: int = 10) -> None:
    """Sets every batch norm's moving statistics to the exact moments of its inputs.

    Layers are recalibrated in order, each on inputs computed with the layers before it already
    recalibrated (inference mode: no dropout, no batch statistics).

    Args:
        model: A functional model; changed in place.
        data: An array of inputs, or an iterable of batches `x` or `(x, y)`.
        batches: Number of batches used.
    """
    if batches < 1:
        raise ValueError(f"batches must be at least 1, got {batches}.")
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    inputs = [np.asarray(x) for x in _batches(data, batches)]
    if norms and not inputs:
        raise ValueError("calibration_data yielded no batch; pass training inputs.")
    for norm in norms:
        probe = keras.Model(model.input, norm.input)
        axes = tuple(a for a in range(len(norm.input.shape)) if a != norm.axis % len(
            norm.input.shape))
        total, total_square, count = 0.0, 0.0, 0
        for x in inputs:
            values = np.asarray(probe(x, training=False), dtype=np.float64)
            total = total + values.sum(axis=axes)
            total_square = total_square + np.square(values).sum(axis=axes)
            count += values.size // values.shape[norm.axis]
        mean = total / count
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(np.maximum(total_square / count - mean ** 2, 0.0)
                                    .astype(np.float32))
