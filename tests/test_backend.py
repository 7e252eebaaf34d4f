import keras
import pytest

from keras_gcnprune.backend import require_tensorflow_backend


def test_another_keras_backend_is_refused_naming_it(monkeypatch):
    require_tensorflow_backend()  # the suite runs on TensorFlow
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ImportError, match="TensorFlow backend only; Keras is configured for "
                                          "'jax'. Set KERAS_BACKEND=tensorflow"):
        require_tensorflow_backend()
