"""TensorBoard scalars of a model being pruned, as the Model Optimization Toolkit's
`PruningSummaries` writes them: a callback beside the pruning callback."""

from __future__ import annotations

import importlib.util

import keras
import tensorflow as tf

from keras_gcnprune.pruning.masks import masked_layers
from keras_gcnprune.reports.connectivity import connectivity_report


class PruningSummaries(keras.callbacks.Callback):
    """Writes TensorBoard scalars at the end of every epoch: per masked weight its realized rate
    and its kept entries on no input-to-output path, and the same for the whole model.

    The step of every scalar is the pruning step (the steps of pruning done, which continues
    across resumed and reloaded trainings); put this callback after the pruning callback, which
    writes that step at the end of each epoch.

    Args:
        log_dir: Folder of the TensorBoard event files.

    Example:
        >>> from keras_gcnprune.pruning import ConstantSparsity, MagnitudePruning
        >>> callbacks = [MagnitudePruning(ConstantSparsity(0.9, frequency=100)),
        ...              PruningSummaries("runs/tensorboard")]
        >>> # model.fit(data, epochs=10, callbacks=callbacks)
    """

    def __init__(self, log_dir: str) -> None:
        super().__init__()
        if not log_dir:
            raise ValueError(f"log_dir must name a folder, got {log_dir!r}.")
        if importlib.util.find_spec("tensorboard") is None:
            raise ImportError(
                f"PruningSummaries({log_dir!r}) needs TensorBoard, which is not installed: "
                "pip install tensorboard.")
        self.log_dir = str(log_dir)
        self._writer = None

    def on_train_begin(self, logs=None) -> None:
        layers = [layer for layer in masked_layers(self.model) if hasattr(layer, "pruning_step")]
        if not layers:
            raise ValueError(f"Model {self.model.name!r} has no prunable layers to summarise.")
        self._step_variable = layers[0].pruning_step

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        step = int(keras.ops.convert_to_numpy(self._step_variable))
        report = connectivity_report(self.model)
        with self._writer.as_default(step=step):
            for row in report["layers"]:
                name = f"pruning/{row['layer']}/{row['role']}"
                tf.summary.scalar(f"{name}/rate", row["rate"])
                tf.summary.scalar(f"{name}/disconnected", row["disconnected"])
            tf.summary.scalar("pruning/total/rate", report["total"]["rate"])
            tf.summary.scalar("pruning/total/disconnected_fraction",
                              report["total"]["disconnected_fraction"])
        self._writer.flush()

    def on_train_end(self, logs=None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
