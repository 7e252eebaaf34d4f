"""Loss terms shared by the layers of the package that train models: distillation from a
teacher (`keras_gcnprune.training`) and MRMP's self-distillation (`keras_gcnprune.pruning`)."""

from __future__ import annotations

from keras import ops


def logit_divergence(teacher_logits, student_logits, temperature: float = 1.0):
    """KL divergence of the student's softened distribution from the teacher's, per sample.

    `KL(softmax(teacher / T) || softmax(student / T))`, summed over the last axis; the
    teacher is a target (no gradient is stopped here: the caller decides).

    Args:
        teacher_logits: Logits `(..., classes)`.
        student_logits: Logits of the same shape.
        temperature: Softening temperature `T`.

    Returns:
        The divergence, of shape `(...)`.

    Example:
        >>> float(logit_divergence(np.array([1.0, 0.0]), np.array([1.0, 0.0])))
        0.0
    """
    teacher = ops.log_softmax(teacher_logits / temperature, axis=-1)
    student = ops.log_softmax(student_logits / temperature, axis=-1)
    return ops.sum(ops.exp(teacher) * (teacher - student), axis=-1)
