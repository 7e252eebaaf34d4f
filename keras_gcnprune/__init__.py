"""keras-gcnprune: skeleton graph convolutional networks for Keras 3, pruned for phones.

Importing the package registers every Keras class that a saved run refers to (layers, the
multi-rate model, the training losses and metrics), so that `keras.models.load_model` reads
a run's `model.keras` after `import keras_gcnprune` alone.
"""

__version__ = "0.1.0"

from keras_gcnprune import layers, models, pruning, training  # noqa: E402, F401 (registration)
