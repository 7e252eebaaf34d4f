import keras
import numpy as np
import pytest

from keras_gcnprune.layers import MaskConstraint, MaskedDense


def test_the_mask_constraint_zeroes_pruned_weights_and_refuses_to_serialize_alone():
    layer = MaskedDense(2, freeze_pruned=True)
    layer.build((None, 3))
    layer.kernel_mask.assign(np.array([[1, 0], [0, 1], [1, 1]], "float32"))
    constraint = MaskConstraint(layer.kernel_mask)
    np.testing.assert_array_equal(constraint(keras.ops.ones((3, 2))).numpy(),
                                  layer.kernel_mask.numpy())
    with pytest.raises(TypeError, match="serialize the layer instead"):
        keras.saving.serialize_keras_object(constraint)
    restored = MaskedDense.from_config(layer.get_config())  # the layer recreates it
    assert restored.get_config() == layer.get_config()
