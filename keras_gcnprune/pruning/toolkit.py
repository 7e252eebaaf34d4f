"""The Model Optimization Toolkit's pruning API on Keras 3: `prune_low_magnitude`,
`UpdatePruningStep` and (in `strip.py`) `strip_pruning`, with the toolkit's argument names, so
that a toolkit pruning script runs after changing its imports.

`prune_low_magnitude` clones a model (`keras.models.clone_model` with a `clone_function`, nested
models included), replacing every stock layer that has a prunable form (`Dense`, `Conv1D`,
`Conv2D`, `DepthwiseConv2D`: `prunable_forms()`) by that form with the same weights and
name, and recording the schedule on it. The pruned model is an ordinary model of masked
layers: magnitude, TCP and multi-rate pruning, reports and compaction all apply to it.
"""

from __future__ import annotations

import keras

from keras_gcnprune.layers import MaskedLayer
from keras_gcnprune.layers.masked import stock_input_shape
from keras_gcnprune.pruning.callbacks import PruningCallback
from keras_gcnprune.pruning.masks import (
    cloned_pairs,
    effective_values,
    magnitude_mask,
    masked_layers,
)
from keras_gcnprune.pruning.schedules import ConstantSparsity, Schedule
from keras_gcnprune.pruning.stock import UNPRUNED_WEIGHTS

# The toolkit's options that would change which weights are pruned: refused unless default.
TOOLKIT_DEFAULTS = {"block_size": (1, 1), "block_pooling_type": "AVG", "pruning_policy": None,
                    "sparsity_m_by_n": None}


def prunable_forms() -> dict[type, type]:
    """Every stock layer class with a prunable form, and that form: the `MaskedLayer` types
    that name a `stock_class` of their own (the first defined wins), so that a new form is one
    class and nothing else.

    Example:
        >>> prunable_forms()[keras.layers.Dense].__name__
        'MaskedDense'
    """
    forms: dict[type, type] = {}
    pending = [MaskedLayer]
    while pending:
        form = pending.pop(0)
        pending += form.__subclasses__()
        stock = form.__dict__.get("stock_class")
        if stock is not None:
            forms.setdefault(stock, form)
    return forms


def prune_low_magnitude(to_prune, pruning_schedule: Schedule | None = None, **kwargs):
    """Makes a model, a layer or a list of layers prunable, as the toolkit's function of the
    same name: train it with `UpdatePruningStep` among the callbacks, then `strip_pruning`.

    Args:
        to_prune: A `keras.Model` (functional or Sequential, nested models included), a stock
            layer, or a list of stock layers.
        pruning_schedule: A schedule (`ConstantSparsity`, `PolynomialDecay` or any
            `schedule(step) -> (should_prune, sparsity)`); default `ConstantSparsity(0.5, 0)`,
            the toolkit's.
        **kwargs: The toolkit's `block_size`, `block_pooling_type`, `pruning_policy` and
            `sparsity_m_by_n`, accepted at their defaults only.

    Returns:
        A model cloned with prunable layers and its weights, or the prunable layer(s).

    Raises:
        ValueError: For a layer that has weights and no prunable form (it is named), or an
            option off the toolkit's default.

    Example:
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
        >>> pruned = prune_low_magnitude(model, ConstantSparsity(0.5, 0, frequency=1))
        >>> type(pruned.layers[0]).__name__
        'MaskedDense'
    """
    for option, value in kwargs.items():
        if option not in TOOLKIT_DEFAULTS:
            raise TypeError(f"prune_low_magnitude got an unexpected option {option!r}.")
        if _as_plain(value) != _as_plain(TOOLKIT_DEFAULTS[option]):
            raise ValueError(f"{option}={value!r} is not supported; leave it at the toolkit's "
                             f"default {TOOLKIT_DEFAULTS[option]!r} (unstructured pruning).")
    schedule = pruning_schedule if pruning_schedule is not None else ConstantSparsity(0.5, 0)
    if not callable(schedule):
        raise TypeError(f"pruning_schedule must be callable as schedule(step), got "
                        f"{schedule!r}.")
    if isinstance(to_prune, (list, tuple)):
        return [prune_low_magnitude(layer, schedule) for layer in to_prune]
    if isinstance(to_prune, keras.Model):
        return _pruned_model(to_prune, schedule)
    if isinstance(to_prune, keras.layers.Layer):
        return _prunable_layer(to_prune, schedule)
    raise TypeError(f"to_prune must be a keras.Model, a layer or a list of layers, got "
                    f"{type(to_prune).__name__}.")


def _as_plain(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _prunable_layer(layer: keras.layers.Layer, schedule: Schedule) -> keras.layers.Layer:
    """The prunable form of a stock layer (with its weights when built) and the schedule."""
    form = prunable_forms().get(type(layer))
    if form is None:
        raise _cannot_prune(layer)
    pruned = form.from_stock(layer)
    if layer.built:
        pruned.build(stock_input_shape(layer.weights[0]))
        pruned.load_stock_weights(layer)
    pruned.pruning_schedule = schedule
    return pruned


def _cannot_prune(layer) -> ValueError:
    return ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) cannot be pruned: prunable stock "
        f"layers are {sorted(cls.__name__ for cls in prunable_forms())}; "
        f"{sorted(cls.__name__ for cls in UNPRUNED_WEIGHTS)}, the keras_gcnprune layers and "
        "layers without weights are kept as they are.")


def _clone(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new, unbuilt layer of the same config (its weights are copied once it is built)."""
    if layer.weights and not isinstance(layer, (*UNPRUNED_WEIGHTS, MaskedLayer)):
        raise _cannot_prune(layer)
    return layer.__class__.from_config(layer.get_config())


def _copy_weights(source: keras.layers.Layer, target: keras.layers.Layer) -> None:
    """Copies a layer's weights to its clone; a stock layer's kernel and bias to its
    prunable form."""
    if isinstance(target, MaskedLayer) and target.strip_to_stock:
        target.load_stock_weights(source)
    else:
        target.set_weights(source.get_weights())


def _pruned_model(model: keras.Model, schedule: Schedule) -> keras.Model:
    forms = prunable_forms()

    def clone_function(layer):
        if type(layer) in forms:
            return forms[type(layer)].from_stock(layer)
        return _clone(layer)

    pruned = keras.models.clone_model(model, clone_function=clone_function, recursive=True)
    for layer, clone in cloned_pairs(model, pruned):
        _copy_weights(layer, clone)
        if isinstance(clone, MaskedLayer):
            clone.pruning_schedule = schedule
    return pruned


class UpdatePruningStep(PruningCallback):
    """The toolkit's `UpdatePruningStep` callback: magnitude pruning of every layer that
    `prune_low_magnitude` made prunable, each kernel at its own layer's schedule (the toolkit's
    per-layer scope), giving the toolkit's masks step by step.

    The schedules are those given to `prune_low_magnitude`, layer by layer; a model it never
    saw (for example reloaded from a `.keras` file, which keeps masks and the pruning step but
    not the schedule objects) is refused with what to do.

    Example:
        >>> callback = UpdatePruningStep()
        >>> # model.fit(data, epochs=2, callbacks=[callback])
    """

    def __init__(self) -> None:
        super().__init__(schedule=_no_turns)  # the layers hold the schedules

    def set_model(self, model) -> None:
        super().set_model(model)
        groups: dict[int, tuple] = {}
        for layer in masked_layers(model):
            schedule = getattr(layer, "pruning_schedule", None)
            if schedule is not None:
                groups.setdefault(id(schedule), (schedule, []))[1].append(layer)
        if not groups:
            raise ValueError(
                f"UpdatePruningStep needs a model from prune_low_magnitude; {model.name!r} has "
                "no layer with a pruning schedule. For a reloaded model, call "
                "prune_low_magnitude(model, pruning_schedule=...) again (masks and the pruning "
                "step are kept), or use MagnitudePruning(schedule).")
        self._groups = list(groups.values())

    def _prune_to(self, step: int) -> None:
        first, self._step = self._step + 1, step
        turns = [(layers, self._latest_turn(first, step, schedule))
                 for schedule, layers in self._groups]
        if any(sparsity is not None for _, sparsity in turns):
            self._save_step()
        for layers, sparsity in turns:
            if sparsity is not None:
                for weight in (w for layer in layers for w in layer.masked_weights()):
                    value = effective_values(weight)
                    mask = magnitude_mask(value, sparsity)
                    weight.mask.assign(mask)
                    weight.kernel.assign(value * mask)


def _no_turns(step: int) -> tuple[bool, float]:
    return False, 0.0
