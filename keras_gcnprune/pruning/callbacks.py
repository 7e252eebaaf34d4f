"""Keras callbacks that update masks on a schedule during `model.fit`."""

from __future__ import annotations

import math

import keras

from keras_gcnprune.pruning.masks import (
    assign_masks,
    effective_values,
    global_magnitude_masks,
    magnitude_mask,
    masked_layers,
    prunable_weights,
    realized_rate,
    rms_normalised,
)
from keras_gcnprune.pruning.multirate import MultiRateModel, band_stop_masks
from keras_gcnprune.pruning.schedules import Schedule, evaluate_schedule
from keras_gcnprune.pruning.supervision import SUPERVISION_STRENGTH, TopologicalSupervision
from keras_gcnprune.pruning.tcp import check_block_density, topologically_consistent_masks

SCOPES = ("layer", "global")


class PruningCallback(keras.callbacks.Callback):
    """Base of the pruning callbacks: counts steps, asks the schedule, updates masks.

    The step is the optimizer's iteration count plus one at the start of each training batch
    (the first batch is step 1, as in the Model Optimization Toolkit), offset by the step a
    reloaded model had reached. The steps done are stored in every masked layer's
    `pruning_step`, which `.keras` files and `keras.callbacks.BackupAndRestore` save, so that
    `model.fit` on a reloaded model (with a fresh optimizer or its own) and a training resumed
    from a backup both continue the schedule where it stopped. With `steps_per_execution > 1`
    the batch hooks run once per execution: the latest schedule turn among the steps since the
    previous hook is applied (at the end of training for a turn inside the last execution), so
    that no turn, and above all not the last, is skipped.

    Args:
        schedule: Any `schedule(step) -> (should_prune, sparsity)`, including the Model
            Optimization Toolkit's schedules.
        include_adjacency: Prune the learned joint-to-joint weights (attention heads'
            adjacencies, graph convolutions' learned offsets) with the channel kernels, so that
            the rate applies to every weight but biases and normalization (default); False:
            channel kernels only, the learned adjacencies stay dense.
    """

    def __init__(self, schedule: Schedule, include_adjacency: bool = True) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable as schedule(step), got {schedule!r}.")
        self.schedule = schedule
        self.include_adjacency = bool(include_adjacency)

    def pruned_weights(self) -> list:
        """The masked weights this callback prunes."""
        return prunable_weights(self.model, self.include_adjacency)

    def on_train_begin(self, logs=None) -> None:
        self._steps = [
            layer.pruning_step for layer in masked_layers(self.model)
            if hasattr(layer, "pruning_step")
        ]
        if not self._steps:
            raise ValueError(f"Model {self.model.name!r} has no prunable layers to prune.")
        # Read at the first batch: a `BackupAndRestore` later in the callback list restores the
        # step and the optimizer in its own `on_train_begin`, after this one.
        self._offset = None

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        if self._offset is None:
            self._step = int(keras.ops.convert_to_numpy(self._steps[0]))
            self._offset = self._step - self._iterations()
        self._prune_to(self._executed_steps() + 1)

    def _prune_to(self, step: int) -> None:
        """Advances to `step`, applying the latest schedule turn since the previous step."""
        first, self._step = self._step + 1, step
        turn = self._latest_turn(first, step)
        if turn is not None:
            self._save_step()
            self.update_masks(turn)

    def _latest_turn(self, first: int, last: int, schedule: Schedule | None = None
                     ) -> float | None:
        """The rate of the last turn of `schedule` (default: this callback's) in steps
        `first..last`, None if none."""
        for step in range(last, first - 1, -1):
            should_prune, rate = evaluate_schedule(schedule or self.schedule, step)
            if should_prune:
                return rate
        return None

    def on_train_end(self, logs=None) -> None:
        if self._offset is not None:  # a turn inside the last execution of steps
            self._prune_to(self._executed_steps())
        self._save_step()

    def _iterations(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _executed_steps(self) -> int:
        return self._offset + self._iterations()

    def _save_step(self) -> None:
        # Written only when it matters (turns, epoch ends, the end) to keep batches cheap.
        if self._offset is not None:
            executed = self._executed_steps()
            for variable in self._steps:
                variable.assign(executed)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._save_step()
        if logs is not None:
            logs["pruning_rate"] = realized_rate(self.pruned_weights())

    def update_masks(self, rate: float) -> None:
        raise NotImplementedError


class MagnitudePruning(PruningCallback):
    """Magnitude pruning, the Model Optimization Toolkit's algorithm on masked Keras 3 layers.

    At each pruning step, every prunable kernel keeps its largest effective weights
    (`kernel * mask`, so pruned weights never come back) and pruned latent weights are set to
    zero, as `prune_low_magnitude` does.

    Args:
        schedule: `schedule(step) -> (should_prune, sparsity)`.
        scope: `"layer"` (each kernel at the target rate, the toolkit's choice) or
            `"global"` (one threshold over all kernels, on magnitudes divided by each kernel's
            root mean square so that layers of different scales compete fairly).
        include_adjacency: Prune the learned adjacencies too (see `PruningCallback`); each
            adjacency is one more kernel for the `"layer"` scope.

    Example:
        >>> from keras_gcnprune.pruning import PolynomialDecay
        >>> callback = MagnitudePruning(PolynomialDecay(0.0, 0.9, 0, 1000, frequency=100))
        >>> # model.fit(data, epochs=10, callbacks=[callback])
    """

    def __init__(self, schedule: Schedule, scope: str = "layer",
                 include_adjacency: bool = True) -> None:
        super().__init__(schedule, include_adjacency)
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}.")
        self.scope = scope

    def update_masks(self, rate: float) -> None:
        weights = self.pruned_weights()
        values = [effective_values(w) for w in weights]
        if self.scope == "layer":
            masks = [magnitude_mask(v, rate) for v in values]
        else:
            masks = global_magnitude_masks([rms_normalised(v) for v in values], rate)
        for weight, value, mask in zip(weights, values, masks):
            weight.mask.assign(mask)
            weight.kernel.assign(value * mask)


class TopologicalPruning(PruningCallback):
    """Topologically consistent pruning (TCP): the best-magnitude subnetwork whose every kept
    weight lies on an input-to-output path, supervised during training (docs/design.md).

    At each pruning step the masks are re-selected from the latent weights
    (`topologically_consistent_masks`). Between selections, the training forward pass uses the
    consistent mask with smooth surrogates of the mask and of both propagations
    (`TopologicalSupervision`), so gradients reach pruned latent weights and those that would
    connect or keep connected the subnetwork, and they compete at the next selection.

    Args:
        schedule: `schedule(step) -> (should_prune, sparsity)`.
        supervise: Supervise the latent weights during training; `False` leaves the selection
            only (an ablation).
        accessibility: Supervise through the forward propagation from the inputs.
        coaccessibility: Supervise through the backward propagation from the logits.
        sharpness: Slope of the mask surrogate (see `TopologicalSupervision`).
        strength: Scale of the propagations' gradient (see `TopologicalSupervision`).
        feedback: Pass every entry's gradient to pruned latent weights too.
        block_density: Select inside a block of whole channels filled to this density, so that
            compaction removes the other channels (see `topologically_consistent_masks`);
            None: unstructured.
        include_adjacency: Prune the learned adjacencies too (see `PruningCallback`).

    Example:
        >>> from keras_gcnprune.pruning import ConstantSparsity
        >>> callback = TopologicalPruning(ConstantSparsity(0.98, frequency=100))
        >>> # model.fit(data, epochs=10, callbacks=[callback])
    """

    def __init__(self, schedule: Schedule, supervise: bool = True, accessibility: bool = True,
                 coaccessibility: bool = True, sharpness: float = 10.0,
                 strength: float = SUPERVISION_STRENGTH,
                 feedback: bool = False, block_density: float | None = None,
                 include_adjacency: bool = True) -> None:
        super().__init__(schedule, include_adjacency)
        check_block_density(block_density)
        self.block_density = block_density
        self.supervision = TopologicalSupervision(
            accessibility, coaccessibility, sharpness, feedback, strength, include_adjacency
        ) if supervise else None

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        if self.supervision is not None:
            self.supervision.attach(self.model)

    def on_train_end(self, logs=None) -> None:
        super().on_train_end(logs)
        if self.supervision is not None:
            self.supervision.detach()

    def update_masks(self, rate: float) -> None:
        assign_masks(self.model, topologically_consistent_masks(
            self.model, rate, block_density=self.block_density,
            include_adjacency=self.include_adjacency))


class MultiRatePruning(PruningCallback):
    """Ramps the rates of a `MultiRateModel` and anneals its band-stop steepness.

    The schedule's rate `s` (ramping to the largest rate) sets every rate `r` of the model
    to `r * s / max(rates)`, and the steepness moves geometrically from `steepness[0]` to
    `steepness[1]` as `s` reaches the largest rate, so the masks are crisp for the rest of
    training. The network's mask variables follow the crisp band-stop at the largest rate (at
    every schedule turn, epoch end and the end of training), so reports, TensorBoard scalars and
    the logged `pruning_rate` see the current masks. Which weights are pruned is the model's
    `include_adjacency`.

    Args:
        schedule: `schedule(step) -> (should_prune, sparsity)`, e.g. a `PolynomialDecay` to
            the largest rate.
        steepness: `(start, end)` band-stop steepness.

    Example:
        >>> from keras_gcnprune.pruning import PolynomialDecay
        >>> callback = MultiRatePruning(PolynomialDecay(0.0, 0.99, 100, 2000, frequency=50))
    """

    def __init__(self, schedule: Schedule,
                 steepness: tuple[float, float] = (5.0, 200.0)) -> None:
        super().__init__(schedule)
        if not 0 < steepness[0] <= steepness[1]:
            raise ValueError(f"steepness must be (start, end) with 0 < start <= end, got "
                             f"{steepness}.")
        self.steepness = steepness

    def on_train_begin(self, logs=None) -> None:
        if not isinstance(self.model, MultiRateModel):
            raise TypeError(
                f"MultiRatePruning trains a MultiRateModel, got {type(self.model).__name__}: "
                "wrap the network with MultiRateModel(network, rates) and fit the wrapper.")
        self.include_adjacency = self.model.include_adjacency
        super().on_train_begin(logs)

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        # A fresh training starts the rates where the schedule starts; a resumed or reloaded
        # one keeps the rates and steepness it saved (a schedule value between turns would
        # differ from the last turn's).
        fresh = self._offset is None and int(keras.ops.convert_to_numpy(self._steps[0])) == 0
        super().on_train_batch_begin(batch, logs)
        if fresh:
            self.update_masks(evaluate_schedule(self.schedule, self._step)[1])

    def update_masks(self, rate: float) -> None:
        model = self.model
        progress = min(1.0, rate / model.rates[-1])
        rates = [r * progress for r in model.rates]
        model.thresholds.assign(model.prior.thresholds(rates))
        start, end = self.steepness
        model.steepness.assign(start * (end / start) ** progress)
        self._sync_masks()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._sync_masks()
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None) -> None:
        super().on_train_end(logs)
        self._sync_masks()

    def _sync_masks(self) -> None:
        # The latent weights move between schedule turns; the mask variables follow them.
        network = self.model.network
        assign_masks(network, band_stop_masks(network, float(self.model.thresholds.numpy()[-1]),
                                              self.include_adjacency))


class AlignmentSchedule(keras.callbacks.Callback):
    """Sets a `MultiRateModel`'s alignment weight at the start of every epoch.

    Args:
        schedule: `schedule(epoch) -> weight` (epochs counted from 0).

    Example:
        >>> warm_up = AlignmentSchedule(lambda epoch: min(1.0, epoch / 10))
    """

    def __init__(self, schedule) -> None:
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.model.alignment_weight.assign(float(self.schedule(epoch)))


MULTI_RATE_METHODS = ("srmp", "mrmp")
METHODS = ("magnitude", "tcp", *MULTI_RATE_METHODS)
SUPERVISION = {
    "both": {},
    "accessibility": {"coaccessibility": False},
    "coaccessibility": {"accessibility": False},
    "feedback": {"accessibility": False, "coaccessibility": False, "feedback": True},
    "none": {"supervise": False},
}


def check_method_options(method: str, scope: str = "layer", supervision: str = "both",
                         block_density: float | None = None,
                         strength: float = SUPERVISION_STRENGTH) -> None:
    """Refuses an option that the method would ignore: `scope` other than `"layer"` is
    magnitude pruning's, and `supervision` other than `"both"`, `block_density` and a
    supervision `strength` other than the default are TCP's.

    Raises:
        ValueError: naming the option, its value and the method it belongs to.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown pruning method {method!r}; choose one of {METHODS}.")
    if scope != "layer" and method != "magnitude":
        raise ValueError(f"scope={scope!r} applies to magnitude pruning only, not {method}.")
    if method != "tcp":
        if supervision != "both":
            raise ValueError(f"supervision={supervision!r} applies to tcp only, not {method}.")
        if block_density is not None:
            raise ValueError(f"block_density applies to tcp only, not {method}.")
        if strength != SUPERVISION_STRENGTH:
            raise ValueError(f"A supervision strength ({strength}) applies to tcp only, not "
                             f"{method}.")
    elif not (math.isfinite(strength) and strength >= 0):
        raise ValueError(f"strength must be a number >= 0, got {strength}.")


def pruning_callback(method: str, schedule: Schedule, scope: str = "layer",
                     supervision: str = "both", block_density: float | None = None,
                     include_adjacency: bool = True,
                     strength: float = SUPERVISION_STRENGTH) -> PruningCallback:
    """Returns the callback of a pruning method by name.

    Args:
        method: `"magnitude"`, `"tcp"`, or `"srmp"` / `"mrmp"` (both `MultiRatePruning`, for a
            `MultiRateModel` with one rate or several).
        schedule: `schedule(step) -> (should_prune, sparsity)`.
        scope: Ranking scope of magnitude pruning (`"layer"` or `"global"`).
        supervision: Which propagations supervise TCP training: `"both"`, `"accessibility"`,
            `"coaccessibility"`, `"feedback"` (straight-through gradients to pruned weights
            instead of the propagations) or `"none"` (selection only).
        block_density: TCP inside blocks of whole channels (see `TopologicalPruning`).
        include_adjacency: Prune the learned adjacencies too (magnitude, tcp; srmp and mrmp
            take it from their `MultiRateModel`).
        strength: Scale of TCP's supervision gradient (see `TopologicalSupervision`).
    """
    check_method_options(method, scope, supervision, block_density, strength)
    if method == "magnitude":
        return MagnitudePruning(schedule, scope=scope, include_adjacency=include_adjacency)
    if method == "tcp":
        if supervision not in SUPERVISION:
            raise ValueError(
                f"Unknown supervision {supervision!r}; choose one of {tuple(SUPERVISION)}."
            )
        return TopologicalPruning(schedule, block_density=block_density,
                                  include_adjacency=include_adjacency, strength=strength,
                                  **SUPERVISION[supervision])
    return MultiRatePruning(schedule)
