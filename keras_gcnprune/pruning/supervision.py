"""Bi-directional supervision of topologically consistent pruning during training.

During a training step, every prunable kernel's forward pass uses the *consistent* mask

    M_l * U_l(M),    U_l = entries on an input-to-output path (accessibility forward from the
                     inputs, co-accessibility backward from the logits, DESIGN.md section 3),

computed in the graph of the step. Both factors are straight-through estimators: the forward
value is the hard one, the gradient is a smooth surrogate's.

- The mask surrogate is `sigmoid(sharpness * (s - t))` of each weight's RMS-normalised magnitude
  `s`, with `t` the lowest score still kept (the threshold the selection last used). Pruned
  latent weights near the threshold get gradients through it, so they can grow back in at the
  next selection.
- The path surrogate runs both propagations with the smooth OR `1 - exp(-x)` in place of the step
  and with the surrogate masks: a weight whose strength would make other connections reachable
  (or keep them reachable) is pulled by the loss those connections carry.

Either propagation can be switched off for ablations; without both, only the mask surrogate is
left.
"""

from __future__ import annotations

import threading

import keras
import tensorflow as tf
from keras import ops

from keras_gcnprune.pruning.masks import masked_layers, prunable_weights
from keras_gcnprune.pruning.topology import SOFT, Shadow, propagate


def _straight_through(hard, soft):
    """The value of `hard` with the gradient of `soft`."""
    return hard + (soft - ops.stop_gradient(soft))


class TopologicalSupervision:
    """Puts the consistent mask and its smooth surrogates into the training forward pass.

    Args:
        accessibility: Supervise through the forward propagation from the inputs.
        coaccessibility: Supervise through the backward propagation from the logits.
        sharpness: Slope of the mask surrogate, in units of RMS-normalised magnitude: weights
            within about `4 / sharpness` of the threshold receive gradients.

    Example:
        >>> supervision = TopologicalSupervision(coaccessibility=False)  # an ablation
        >>> # TopologicalPruning(schedule, supervision=supervision)
    """

    def __init__(self, accessibility: bool = True, coaccessibility: bool = True,
                 sharpness: float = 10.0) -> None:
        if sharpness <= 0:
            raise ValueError(f"sharpness must be positive, got {sharpness}.")
        self.accessibility = bool(accessibility)
        self.coaccessibility = bool(coaccessibility)
        self.sharpness = float(sharpness)
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

    def __call__(self, layer, mask: keras.Variable):
        masks = self._masks_of_this_step()
        return masks.get(mask.path, mask)

    def _masks_of_this_step(self) -> dict:
        # One computation per traced step (and per replica thread under a distribution
        # strategy); eagerly, values change every step, so nothing is reused.
        if tf.executing_eagerly():
            return self.consistent_masks()
        key = (tf.compat.v1.get_default_graph(), threading.get_ident())
        if key not in self._cache:
            self._cache[key] = self.consistent_masks()
        return self._cache[key]

    def consistent_masks(self) -> dict:
        """The straight-through consistent masks of the attached model, by mask path."""
        weights = prunable_weights(self._model)
        hard = {w.mask.path: ops.convert_to_tensor(w.mask) for w in weights}
        surrogate = self._mask_surrogates(weights, hard)
        if not (self.accessibility or self.coaccessibility):
            return surrogate
        *_, used = propagate(self._model, Shadow(SOFT, surrogate),
                             accessibility=self.accessibility, coaccessibility=self.coaccessibility)
        # The surrogate masks carry the hard values forward, and the smooth step is positive
        # exactly where the hard one is 1: the hard used entries are the positive soft ones.
        return {
            path: mask * _straight_through(ops.cast(used[path] > 0, "float32"), used[path])
            for path, mask in surrogate.items()
        }

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
