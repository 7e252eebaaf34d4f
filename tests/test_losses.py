import numpy as np
import pytest

from keras_gcnprune.losses import logit_divergence


def test_logit_divergence_is_the_kl_divergence_of_the_softened_distributions():
    teacher = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], "float32")
    student = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], "float32")
    for temperature in (1.0, 4.0):
        p = np.exp(teacher / temperature) / np.exp(teacher / temperature).sum(-1, keepdims=True)
        q = np.exp(student / temperature) / np.exp(student / temperature).sum(-1, keepdims=True)
        expected = (p * np.log(p / q)).sum(-1)
        assert np.asarray(logit_divergence(teacher, student, temperature)) == \
            pytest.approx(expected, rel=1e-4)
    assert np.asarray(logit_divergence(teacher, teacher)) == pytest.approx([0.0, 0.0], abs=1e-6)
