"""The pruning protocol of `MaskedLayer` is all the package needs to know about a layer type: a
layer type written here, in one class, gets reachability (checked against the independent
oracle), topologically consistent selection, compaction and cost counting without any change to
the package."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_gcnprune.layers import MaskedDense, MaskedLayer
from keras_gcnprune.pruning import (
    assign_masks,
    compact,
    disconnected_fraction,
    reachability,
    topologically_consistent_masks,
)
from keras_gcnprune.reports import model_costs
from tests.pruning.test_topology import oracle_on_path, random_masks


class JointMixing(MaskedLayer):
    """`y[t, w, f] = sum_v P[v, w] sum_c x[t, v, c] W[c, f]`: a channel kernel and one learned,
    masked joint-to-joint matrix."""

    def __init__(self, filters: int, joints: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters, self.joints = int(filters), int(joints)

    def build(self, input_shape) -> None:
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (input_shape[-1], self.filters), in_axis=0, out_axes=(1,))
        self.mixing, self.mixing_mask = self.add_masked_weight(
            "mixing", (self.joints, self.joints), initializer="ones", regularize=False,
            role="adjacency")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="ones")

    def call(self, inputs, training=None):
        projected = ops.einsum("ntvc,cf->ntvf", inputs,
                               self.masked(self.kernel, self.kernel_mask, training))
        mixing = self.masked(self.mixing, self.mixing_mask, training)
        return ops.einsum("ntvf,vw->ntwf", projected, mixing) + self.bias

    def _support(self, shadow):
        weight = self.masked_weights()[1]
        return shadow.algebra.support(shadow.algebra.value(weight.kernel) * shadow.mask(weight))

    def shadow_forward(self, inputs, shadow):
        xp, mask = shadow.xp, shadow.mask(self.masked_weights()[0])
        return xp.einsum("tvf,vw->twf", xp.einsum("tvc,cf->tvf", inputs[0], mask),
                         self._support(shadow))

    def shadow_backward(self, out_co, in_shapes, shadow):
        xp, mask = shadow.xp, shadow.mask(self.masked_weights()[0])
        spread = xp.einsum("twf,vw->tvf", out_co, self._support(shadow))
        return [xp.einsum("tvf,cf->tvc", spread, mask)]

    def shadow_used(self, acc_in, co_out, shadow):
        xp, mask = shadow.xp, shadow.mask(self.masked_weights()[0])
        spread = xp.einsum("twf,vw->tvf", co_out, self._support(shadow))
        projected = xp.einsum("tvc,cf->tvf", acc_in, mask)
        return {self.kernel_mask.path: xp.einsum("tvc,tvf->cf", acc_in, spread),
                self.mixing_mask.path: xp.einsum("tvf,twf->vw", projected, co_out)}

    def narrowed_config(self, keep_out):
        return {**self.get_config(), "filters": len(keep_out)}

    def aggregation_macs(self) -> int:
        return self.joints * self.filters

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "joints": self.joints}


def mixing_model() -> keras.Model:
    inputs = keras.Input((4, 15, 3))
    x = JointMixing(8, 15, name="mix1")(inputs)
    x = keras.layers.ReLU()(x)
    x = JointMixing(6, 15, name="mix2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, MaskedDense(3, name="classifier")(x))


@pytest.mark.parametrize("rate", [0.5, 0.9, 0.97])
def test_a_new_layer_types_rules_agree_with_the_oracle(rate):
    model = mixing_model()
    masks = random_masks(model, rate, seed=int(rate * 100))
    used = reachability(model, masks).used
    for path, on_path in oracle_on_path(model, masks).items():
        np.testing.assert_array_equal(used[path] & (masks[path] > 0), on_path, err_msg=path)


def test_a_new_layer_type_is_selected_consistently_compacted_and_counted():
    keras.utils.set_random_seed(0)
    model = mixing_model()
    rng = np.random.default_rng(0)
    for weight in model.get_layer("mix1").masked_weights():
        weight.kernel.assign(rng.standard_normal(weight.kernel.shape).astype("float32"))
    assign_masks(model, topologically_consistent_masks(model, 0.9))
    assert disconnected_fraction(model) == 0.0

    small = compact(model)
    x = rng.standard_normal((5, 4, 15, 3)).astype("float32")
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    assert small.get_layer("mix1").filters < 8
    costs = model_costs(model)
    positions = 4 * 15
    assert costs["macs"] == positions * (3 * 8 + 15 * 8 + 8 * 6 + 15 * 6) + 6 * 3
    assert costs["parameters"] == (3 * 8 + 225 + 8) + (8 * 6 + 225 + 6) + (6 * 3 + 3)


def test_a_layer_type_without_the_protocol_is_named():
    class Unfinished(MaskedLayer):
        def build(self, input_shape):
            self.kernel, self.kernel_mask = self.add_masked_weight(
                "kernel", (input_shape[-1], 2), in_axis=0, out_axes=(1,))

        def call(self, inputs):
            return ops.matmul(inputs, self.kernel * self.kernel_mask)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Unfinished(name="unfinished")(inputs))
    assert not Unfinished.implements("reachability")
    with pytest.raises(ValueError, match=r"Layer 'unfinished' \(Unfinished\) lists its masked "
                                         r"weights but states no reachability rules"):
        reachability(model)

