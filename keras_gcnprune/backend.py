"""The one Keras backend the package runs on: TensorFlow.

The pruning callbacks use `tf.GradientTape`, TensorBoard scalars use `tf.summary`, and export
reads TensorFlow graphs, so no other Keras backend can work. Importing this module (which
`keras_gcnprune.layers` does first) checks it.
"""

from __future__ import annotations

import keras


def require_tensorflow_backend() -> None:
    """Refuses, at import, a Keras configured for another backend.

    Raises:
        ImportError: naming the configured backend and how to choose TensorFlow.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ImportError(
            f"keras_gcnprune runs on Keras' TensorFlow backend only; Keras is configured for "
            f"{backend!r}. Set KERAS_BACKEND=tensorflow, or the backend key of "
            "~/.keras/keras.json, before keras is imported.")


require_tensorflow_backend()
