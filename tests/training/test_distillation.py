"""Distillation from a teacher: the loss's exact value, the packed labels, and runs with it."""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gcnprune.training import (
    DistillationConfig,
    DistillationLoss,
    LabelLoss,
    PruningConfig,
    TrainConfig,
    train,
)
from keras_gcnprune.training.distillation import (
    label_accuracy,
    pack_labels,
    unpack_labels,
    with_teacher_logits,
)


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def reference_label_loss(labels, logits, smoothing=0.0):
    """Cross-entropy against `(1 - smoothing) * one_hot + smoothing / classes`."""
    targets = np.eye(logits.shape[-1])[labels] * (1 - smoothing) + smoothing / logits.shape[-1]
    return -(targets * log_softmax(logits)).sum(-1)


def reference_loss(labels, student, teacher, temperature, weight, smoothing=0.0):
    label = reference_label_loss(labels, student, smoothing)
    soft = np.exp(log_softmax(teacher / temperature))
    kl = (soft * (log_softmax(teacher / temperature) - log_softmax(student / temperature))).sum(-1)
    return np.mean((1 - weight) * label + weight * temperature ** 2 * kl)


@pytest.mark.parametrize("temperature,weight", [(1.0, 0.0), (4.0, 0.5), (2.0, 1.0)])
def test_loss_is_label_cross_entropy_plus_scaled_kl(temperature, weight):
    rng = np.random.default_rng(0)
    labels = np.array([0, 2, 1, 2])
    student = rng.standard_normal((4, 3)).astype("float32")
    teacher = 3 * rng.standard_normal((4, 3)).astype("float32")
    loss = DistillationLoss(temperature, weight)(pack_labels(labels, teacher), student)
    np.testing.assert_allclose(float(loss),
                               reference_loss(labels, student, teacher, temperature, weight),
                               rtol=1e-5)
    restored = DistillationLoss.from_config(DistillationLoss(temperature, weight).get_config())
    assert (restored.temperature, restored.weight) == (temperature, weight)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_the_reference_alone_and_inside_distillation(smoothing):
    rng = np.random.default_rng(1)
    labels = np.array([0, 2, 1, 2])
    student = rng.standard_normal((4, 3)).astype("float32")
    teacher = 3 * rng.standard_normal((4, 3)).astype("float32")
    np.testing.assert_allclose(float(LabelLoss(smoothing)(labels, student)),
                               reference_label_loss(labels, student, smoothing).mean(), rtol=1e-5)
    distilled = DistillationLoss(2.0, 0.4, smoothing)(pack_labels(labels, teacher), student)
    np.testing.assert_allclose(float(distilled),
                               reference_loss(labels, student, teacher, 2.0, 0.4, smoothing),
                               rtol=1e-5)
    for loss in (LabelLoss(smoothing), DistillationLoss(2.0, 0.4, smoothing)):
        assert type(loss).from_config(loss.get_config()).label_smoothing == smoothing


def test_packed_labels_round_trip_and_accuracy_reads_the_labels():
    packed = pack_labels(np.array([3, 0]), np.array([[0.0, 1.0, 2.0, 3.0]] * 2, "float32"))
    labels, teacher = unpack_labels(packed)
    assert labels.numpy().tolist() == [3, 0] and teacher.shape == (2, 4)
    student = np.array([[0, 0, 0, 9.0], [0, 0, 0, 9.0]], "float32")
    assert label_accuracy(packed, student).numpy().tolist() == [1.0, 0.0]


def test_the_pipeline_packs_the_teachers_logits_of_each_batch():
    teacher = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    x = np.arange(8, dtype="float32").reshape(4, 2)
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(4))).batch(2)
    batches = list(with_teacher_logits(data, teacher))
    np.testing.assert_allclose(batches[1][1][:, 1:], teacher(x[2:]), atol=1e-6)
    assert batches[1][1][:, 0].numpy().tolist() == [2.0, 3.0]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="needs a teacher"):
        DistillationConfig("")
    with pytest.raises(ValueError, match="weight must be in"):
        DistillationConfig("runs/dense", weight=1.5)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        DistillationConfig("runs/dense", temperature=0.0)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train(TrainConfig(model="attention_gcn", epochs=2), out, verbose=0)
    return out


@pytest.mark.parametrize("pruning", [
    None,
    PruningConfig(method="tcp", rate=0.9),
    PruningConfig(method="mrmp", rates=(0.8, 0.9)),
], ids=["dense", "tcp", "mrmp"])
def test_runs_distil_with_any_pruning_method(teacher_run, tmp_path, pruning):
    config = TrainConfig(model="attention_gcn", epochs=1, pruning=pruning,
                         distillation=DistillationConfig(str(teacher_run), weight=0.7))
    metrics = train(config, tmp_path, verbose=0)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    history = json.loads((tmp_path / "history.json").read_text())
    assert np.isfinite(history["loss"][-1]) and 0.0 <= history["accuracy"][-1] <= 1.0
    saved = json.loads((tmp_path / "run.json").read_text())["config"]["distillation"]
    assert saved == {"teacher": str(teacher_run), "temperature": 4.0, "weight": 0.7}


def test_a_teacher_of_other_inputs_is_refused(teacher_run, tmp_path):
    from keras_gcnprune.data import Preprocessing

    config = TrainConfig(model="attention_gcn", epochs=1, preprocessing=Preprocessing(frames=16),
                         distillation=DistillationConfig(str(teacher_run)))
    with pytest.raises(ValueError, match=r"takes inputs \(32, 21, 9\).*student takes \(16"):
        train(config, tmp_path, verbose=0)


def test_a_moved_folder_of_a_run_and_its_teacher_resumes_and_another_teacher_is_refused(
        tmp_path):
    import shutil

    from keras_gcnprune.training import RunConflictError

    def student(folder):
        return TrainConfig(model="attention_gcn", epochs=1,
                           initial_model=str(folder / "dense" / "model.keras"),
                           distillation=DistillationConfig(str(folder / "dense")))

    before, after = tmp_path / "before", tmp_path / "after"
    train(TrainConfig(model="attention_gcn", epochs=1), before / "dense", verbose=0)
    metrics = train(student(before), before / "student", verbose=0)
    shutil.move(before, after)
    written = (after / "student" / "model.keras").stat().st_mtime_ns

    assert train(student(after), after / "student", verbose=0) == metrics
    assert (after / "student" / "model.keras").stat().st_mtime_ns == written  # not retrained
    (after / "student" / "metrics.json").unlink()  # as if interrupted: it trains again
    train(student(after), after / "student", verbose=0)
    assert (after / "student" / "model.keras").stat().st_mtime_ns != written
    recorded = json.loads((after / "student" / "run.json").read_text())
    assert recorded["relative_paths"] == {"initial_model": "../dense/model.keras",
                                          "teacher": "../dense"}
    shutil.copytree(after / "dense", after / "other")
    other = replace(student(after), distillation=DistillationConfig(str(after / "other")))
    with pytest.raises(RunConflictError, match="distillation: .*'teacher'.*other"):
        train(other, after / "student", verbose=0)
