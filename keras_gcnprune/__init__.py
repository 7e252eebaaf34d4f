"""keras-gcnprune: skeleton graph convolutional networks for Keras 3, pruned for phones."""

__version__ = "0.1.0"
