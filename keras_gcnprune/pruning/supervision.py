"""Bi-directional supervision of topologically consistent pruning during training.

During a training step, every prunable kernel's forward pass uses the *consistent* mask

    M_l * U_l(M),    U_l = entries on an input-to-output path (accessibility forward from the
                     inputs, co-accessibility backward from the logits, docs/design.md),

computed in the graph of the step, with straight-through gradients:

- with `feedback`, `kernel * M` passes the gradient of every entry to its latent weight (pruned
  ones included), so pruned weights keep learning as if kept (off by default: on SBU the churn
  it causes at every selection cost accuracy);
- `U` carries the gradient of both propagations run with smooth surrogates: each mask is
  replaced by `sigmoid(sharpness * (s - t))` of its RMS-normalised magnitude `s` (`t` the
  lowest kept score, the threshold the selection last used) and the step by the smooth OR
  `1 - exp(-x)`. A weight whose strength keeps other connections reachable is pulled by the
  loss those connections carry; the gradient is largest where reachability hinges on few
  connections, and vanishes where many paths make it certain. It is scaled by `strength`.

Either propagation can be switched off for ablations; without both, only `feedback` is left.
"""

from __future__ import annotations

import threading

import keras
import tensorflow as tf
from keras import ops

from keras_gcnprune.layers.shadow import SOFT, Shadow
from keras_gcnprune.pruning.masks import masked_layers, prunable_weights
from keras_gcnprune.pruning.topology import propagate

SUPERVISION_STRENGTH = 0.03  # the default `strength`, chosen on validation


def _straight_through(hard, soft):
    """The value of `hard` with the gradient of `soft`."""
    return hard + (soft - ops.stop_gradient(soft))


def _with_feedback(kernel, mask):
    """`kernel * mask` in value, with the gradient of `kernel` for every entry: pruned latent
    weights learn as if they were kept, and compete again at the next selection."""
    return kernel * mask + (kernel - ops.stop_gradient(kernel)) * (1.0 - mask)


class TopologicalSupervision:
    """Puts the consistent mask and its smooth surrogates into the training forward pass.

    Args:
        accessibility: Supervise through the forward propagation from the inputs.
        coaccessibility: Supervise through the backward propagation from the logits.
        sharpness: Slope of the mask surrogate, in units of RMS-normalised magnitude: weights
            within about `4 / sharpness` of the threshold receive gradients.
        feedback: Also pass every entry's gradient to its latent weight through the mask
            (straight-through), so that pruned weights learn as if kept.
        strength: Scale of the propagations' gradient (their forward value is unchanged).
            The default, 0.03, was chosen on the validation parts carved from the training
            splits of SBU, JHMDB and MSR Action3D at a 99% rate, against 0.1, 0.3 and 1
            (`docs/tcp_strength.md`). An earlier 0.1 had been chosen on SBU's test folds.
        include_adjacency: Supervise the learned adjacencies too (those that are pruned).

    Example:
        >>> supervision = TopologicalSupervision(coaccessibility=False)  # an ablation
    """

    def __init__(self, accessibility: bool = True, coaccessibility: bool = True,
                 sharpness: float = 10.0, feedback: bool = False,
                 strength: float = SUPERVISION_STRENGTH,
                 include_adjacency: bool = True) -> None:
        if sharpness <= 0:
            raise ValueError(f"sharpness must be positive, got {sharpness}.")
        self.accessibility = bool(accessibility)
        self.coaccessibility = bool(coaccessibility)
        self.sharpness = float(sharpness)
        self.feedback = bool(feedback)
        self.strength = float(strength)
        self.include_adjacency = bool(include_adjacency)
        self._model = None
        self._cache: dict = {}

    def attach(self, model: keras.Model) -> None:
        """Installs the supervision in `model`'s masked layers and retraces its train step."""
        self._model, self._cache = model, {}
        for layer in masked_layers(model):
            layer.mask_source = self
        model.make_train_function(force=True)

    def detach(self) -> None:
        """Removes the supervision; the next `fit` traces a plain train step."""
        if self._model is None:
            return
        for layer in masked_layers(self._model):
            layer.mask_source = None
        self._model.train_function = None
        self._model, self._cache = None, {}

    def __call__(self, layer, kernel: keras.Variable, mask: keras.Variable, training=None):
        """The effective kernel of a training step (see the module docstring)."""
        if not training:
            return kernel * mask
        multipliers = self._multipliers_of_this_step()
        if mask.path not in multipliers:
            return kernel * mask
        masked = _with_feedback(kernel, mask) if self.feedback else kernel * mask
        return masked * multipliers[mask.path]

    def _multipliers_of_this_step(self) -> dict:
        # One computation per traced step (and per replica thread under a distribution
        # strategy); eagerly, values change every step, so nothing is reused.
        if tf.executing_eagerly():
            return self.path_multipliers()
        key = (tf.compat.v1.get_default_graph(), threading.get_ident())
        if key not in self._cache:
            self._cache[key] = self.path_multipliers()
        return self._cache[key]

    def path_multipliers(self) -> dict:
        """By mask path: 1 where an entry lies on an input-to-output path if kept, else 0, with
        the gradient of the smooth propagations (ones when both directions are off)."""
        weights = prunable_weights(self._model, self.include_adjacency)
        if not (self.accessibility or self.coaccessibility):
            return {w.mask.path: ops.ones(w.mask.shape) for w in weights}
        hard = {w.mask.path: ops.convert_to_tensor(w.mask) for w in weights}
        *_, used = propagate(self._model, Shadow(SOFT, self._mask_surrogates(weights, hard)),
                             accessibility=self.accessibility, coaccessibility=self.coaccessibility)
        # The surrogate masks carry the hard values forward, and the smooth step is positive
        # exactly where the hard one is 1: the hard used entries are the positive soft ones.
        return {
            path: _straight_through(ops.cast(soft > 0, "float32"), self.strength * soft)
            for path, soft in used.items() if path in hard
        }

    def consistent_masks(self) -> dict:
        """The masks the training forward pass applies: each mask times its path multiplier."""
        weights = prunable_weights(self._model, self.include_adjacency)
        multipliers = self.path_multipliers()
        return {w.mask.path: w.mask * multipliers[w.mask.path] for w in weights}

    def _mask_surrogates(self, weights, hard: dict) -> dict:
        scores = {}
        for weight in weights:
            magnitude = ops.abs(ops.convert_to_tensor(weight.kernel))
            rms = ops.stop_gradient(ops.sqrt(ops.mean(ops.square(magnitude))))
            scores[weight.mask.path] = magnitude / ops.maximum(rms, 1e-12)
        threshold = ops.min(ops.stack([
            ops.min(ops.where(hard[path] > 0, ops.stop_gradient(score), float("inf")))
            for path, score in scores.items()
        ]))
        return {
            path: _straight_through(hard[path], ops.sigmoid(self.sharpness * (score - threshold)))
            for path, score in scores.items()
        }
