"""Knowledge distillation from a trained teacher, as a loss: it composes with every pruning method.

The data pipeline computes the teacher's logits of every (augmented) batch and packs them with
the labels, `y = [label, teacher logits...]` (`with_teacher_logits`). `DistillationLoss` is then
an ordinary Keras loss on `(y, student logits)`, and `label_accuracy` an ordinary metric, so that
`model.fit` trains as usual: TCP's supervision (in the forward pass), MRMP's multi-rate step
(which repeats `y` for every rate) and magnitude pruning's callbacks see nothing different.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import ops

from keras_gcnprune.losses import logit_divergence


@dataclass
class DistillationConfig:
    """Distillation from a trained teacher during a run.

    Args:
        teacher: The teacher: a run directory or a `.keras` model (typically the dense run
            of the same data, protocol and seed).
        temperature: Softening temperature `T` of both logits.
        weight: Share `w` of the loss that is distillation: `(1 - w) * label loss +
            w * T^2 * KL(teacher || student)`, in [0, 1].
    """

    teacher: str = ""
    temperature: float = 4.0
    weight: float = 0.5

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ValueError("Distillation needs a teacher: a trained run directory or .keras "
                             "model.")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {self.temperature}.")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}.")


def pack_labels(labels, teacher_logits):
    """`[label, teacher logits...]` per sample, float32 `(N, 1 + classes)`."""
    labels = ops.reshape(ops.cast(labels, "float32"), (-1, 1))
    return ops.concatenate([labels, ops.cast(teacher_logits, "float32")], axis=1)


def unpack_labels(packed):
    """`(labels int32 (N,), teacher logits (N, classes))` from `pack_labels`' output."""
    return ops.cast(packed[:, 0], "int32"), packed[:, 1:]


def with_teacher_logits(dataset: tf.data.Dataset, teacher: keras.Model) -> tf.data.Dataset:
    """Packs the teacher's logits of every batch `(x, y)` with its labels (`pack_labels`).

    Args:
        dataset: Batches `(x, y)`, after any augmentation (the teacher sees what the student
            sees).
        teacher: A logits model taking `x`.

    Returns:
        Batches `(x, [y, teacher(x)])`.

    Example:
        >>> packed = with_teacher_logits(train_data, dense_model)  # doctest: +SKIP
    """
    def pack(x, y):
        return x, pack_labels(y, teacher(x, training=False))

    return dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE)


def label_cross_entropy(labels, logits, label_smoothing: float = 0.0):
    """Cross-entropy of integer `labels` and `logits`, each label's probability smoothed
    towards the uniform distribution by `label_smoothing` (0: plain sparse cross-entropy)."""
    if not label_smoothing:
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    targets = ops.one_hot(ops.cast(labels, "int32"), ops.shape(logits)[-1])
    return keras.losses.categorical_crossentropy(targets, logits, from_logits=True,
                                                 label_smoothing=label_smoothing)


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class LabelLoss(keras.losses.Loss):
    """Sparse (integer-label) cross-entropy on logits, with optional label smoothing, which
    Keras' `SparseCategoricalCrossentropy` lacks.

    Args:
        label_smoothing: Share of each label's probability spread over all classes.
        name: Loss name.

    Example:
        >>> import numpy as np
        >>> loss = LabelLoss(label_smoothing=0.1)
        >>> round(float(loss(np.array([0]), np.array([[0.0, 0.0]], "float32"))), 4)
        0.6931
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "label_loss",
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        return label_cross_entropy(y_true, y_pred, self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class DistillationLoss(keras.losses.Loss):
    """Label cross-entropy plus softened-logit KL divergence from a teacher (Hinton et al.).

    `(1 - weight) * CE(label, student) + weight * T^2 * KL(softmax(teacher / T) ||
    softmax(student / T))`; the `T^2` keeps the soft term's gradient on the scale of the
    label term's whatever the temperature. `y_true` is `pack_labels`' output.

    Args:
        temperature: `T`.
        weight: Share of the distillation term, in [0, 1].
        label_smoothing: Label smoothing of the label term (see `LabelLoss`).
        name: Loss name.

    Example:
        >>> import numpy as np
        >>> loss = DistillationLoss(temperature=4.0, weight=0.5)
        >>> y_true = pack_labels(np.array([0]), np.array([[2.0, 0.0]], "float32"))
        >>> float(loss(y_true, np.array([[2.0, 0.0]], "float32"))) < 0.1
        True
    """

    def __init__(self, temperature: float = 4.0, weight: float = 0.5,
                 label_smoothing: float = 0.0, name: str = "distillation", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels, teacher = unpack_labels(y_true)
        label_loss = label_cross_entropy(labels, y_pred, self.label_smoothing)
        t = self.temperature
        return (1.0 - self.weight) * label_loss \
            + self.weight * t * t * logit_divergence(teacher, y_pred, t)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature, "weight": self.weight,
                "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="keras_gcnprune")
def label_accuracy(y_true, y_pred):
    """Top-1 accuracy against the labels of `pack_labels`' output."""
    labels, _ = unpack_labels(y_true)
    predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    return ops.cast(ops.equal(predicted, labels), "float32")
