import json
from dataclasses import replace

import keras
import numpy as np
import pytest

from keras_gcnprune import models
from keras_gcnprune.data import Preprocessing, make_synthetic_gestures
from keras_gcnprune.layers import MaskedLayer
from keras_gcnprune.outputs import OutputConflictError, OutputFolder
from keras_gcnprune.training import PruningConfig, TrainConfig, evaluate, prepare_data, train


@pytest.fixture(scope="module")
def gestures():
    return make_synthetic_gestures(subjects=6, test_subjects=2, repetitions=5, seed=0)


def test_synthetic_task_is_at_chance_untrained_and_not_solved_in_one_epoch(gestures, tmp_path):
    config = TrainConfig(model="attention_gcn",
                         epochs=1, preprocessing=Preprocessing(frames=32), seed=0)
    x_test, y_test = prepare_data(config, gestures).test
    untrained = models.build("attention_gcn", "mediapipe_hand", num_classes=14, frames=32)
    untrained_accuracy = np.mean(np.argmax(untrained.predict(x_test, verbose=0), -1) == y_test)
    assert untrained_accuracy < 0.2  # chance is 1/14 = 0.071
    one_epoch = train(config, tmp_path / "one", dataset=gestures, verbose=0)
    assert one_epoch["test_accuracy"] < 1.0


def test_training_learns_and_writes_a_complete_run(gestures, tmp_path):
    config = TrainConfig(model="attention_gcn",
                         epochs=12, preprocessing=Preprocessing(frames=32), seed=1)
    metrics = train(config, tmp_path, dataset=gestures, verbose=0)
    assert metrics["test_accuracy"] > 0.4  # well above chance (0.071) on unseen subjects
    for name in ("model.keras", "run.json", "history.json", "metrics.json"):
        assert (tmp_path / name).exists(), name
    assert not (tmp_path / "backup").exists()
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["loss"]) == 12 and history["loss"][-1] < history["loss"][0]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["preprocessing"]["frames"] == 32 and len(run["class_names"]) == 14
    again = evaluate(tmp_path, dataset="synthetic")
    assert again["test_samples"] == 14 * 3 * 6


def test_evaluate_reproduces_the_training_accuracy(gestures, tmp_path, monkeypatch):
    config = TrainConfig(model="attention_gcn",
                         epochs=2, preprocessing=Preprocessing(frames=16), seed=2)
    metrics = train(config, tmp_path, dataset=gestures, verbose=0)
    monkeypatch.setattr("keras_gcnprune.training.run.load_dataset", lambda spec, on_error: gestures)
    assert evaluate(tmp_path / "model.keras")["test_accuracy"] == metrics["test_accuracy"]


def test_evaluate_without_run_info_says_what_is_missing(tmp_path):
    model = models.build("attention_gcn", "sbu", num_classes=2, frames=8)
    model.save(tmp_path / "model.keras")
    with pytest.raises(FileNotFoundError, match="run.json"):
        evaluate(tmp_path / "model.keras")


class StopAfter(Exception):
    pass


def crashing_history(crash_epoch):
    from keras_gcnprune.training.callbacks import HistoryFile

    class CrashingHistory(HistoryFile):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == crash_epoch:
                raise StopAfter()

    return CrashingHistory


def test_a_crashed_run_resumes_where_it_stopped_and_keeps_its_history(gestures, tmp_path,
                                                                      monkeypatch):
    import keras

    from keras_gcnprune.training import run

    config = TrainConfig(model="attention_gcn",
                         epochs=4, preprocessing=Preprocessing(frames=16), seed=3, refit=False)
    with monkeypatch.context() as patch:
        patch.setattr(run, "HistoryFile", crashing_history(2))
        with pytest.raises(StopAfter):
            train(config, tmp_path, dataset=gestures, verbose=0)
    assert (tmp_path / "backup" / "run_config.json").exists()
    assert len(json.loads((tmp_path / "history.json").read_text())["loss"]) == 2

    seen = []
    monkeypatch.setattr(keras.Model, "fit", _recording_fit(keras.Model.fit, seen))
    train(config, tmp_path, dataset=gestures, verbose=0)
    assert seen == [2]  # resumed at epoch 2, not from scratch
    assert len(json.loads((tmp_path / "history.json").read_text())["loss"]) == 4


def _recording_fit(fit, seen):
    def recording(self, *args, **kwargs):
        history = fit(self, *args, **kwargs)
        seen.append(history.epoch[0])
        return history

    return recording


def _package_backup(folder):
    """A `backup/` recorded as the package's, as an interrupted training leaves it."""
    with OutputFolder(folder).locked() as out:
        out.claim("backup").mkdir()
    return folder / "backup"


def test_a_backup_of_another_configuration_or_a_corrupt_one_is_discarded(gestures, tmp_path):
    backup = _package_backup(tmp_path)
    (backup / "run_config.json").write_text("{}")
    (backup / "latest.weights.h5").write_text("not hdf5")
    config = TrainConfig(model="attention_gcn", epochs=1, preprocessing=Preprocessing(frames=16))
    with pytest.warns(UserWarning, match="different configuration"):
        train(config, tmp_path, dataset=gestures, verbose=0)
    (tmp_path / "metrics.json").unlink()  # as if interrupted after its last epoch
    backup.mkdir()
    (backup / "run_config.json").write_text(json.dumps(config.to_dict(), sort_keys=True))
    (backup / "latest.weights.h5").write_text("not hdf5")
    (backup / "training_metadata.json").write_text('{"epoch": 0, "batch": 0}')
    with pytest.warns(UserWarning, match="cannot be read"):
        metrics = train(config, tmp_path, dataset=gestures, verbose=0)
    assert metrics["epochs"] == 1 and not backup.exists()


def test_a_backup_folder_the_package_did_not_write_is_refused_and_kept(gestures, tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "notes.txt").write_text("mine")
    (tmp_path / "history.json").write_text("mine too")
    config = TrainConfig(model="attention_gcn", epochs=1, preprocessing=Preprocessing(frames=16))
    with pytest.raises(OutputConflictError, match="exists and was not written by gcnprune"):
        train(config, tmp_path, dataset=gestures, verbose=0)
    assert (tmp_path / "backup" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "history.json").read_text() == "mine too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "history.json"]


KILLED_RUN = """
import os, signal, sys
import keras
from keras_gcnprune.data import Preprocessing, make_synthetic_gestures
from keras_gcnprune.layers import MaskedLayer
from keras_gcnprune.outputs import OutputConflictError, OutputFolder
from keras_gcnprune.training import PruningConfig, TrainConfig, train

class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

gestures = make_synthetic_gestures(subjects=6, test_subjects=2, repetitions=5, seed=0)
config = TrainConfig(model="attention_gcn",
                     epochs=4, batch_size=8, preprocessing=Preprocessing(frames=16), seed=4,
                     pruning=PruningConfig(method=sys.argv[2], rate=0.9), refit=False)
train(config, sys.argv[1], dataset=gestures, verbose=0, callbacks=[Kill()])
"""


@pytest.mark.parametrize("method", ["tcp", "magnitude", "srmp"])
def test_a_killed_pruning_run_resumes_exactly_where_an_uninterrupted_one_would_be(
        gestures, tmp_path, method):
    import subprocess
    import sys

    import keras

    from keras_gcnprune.training import PruningConfig

    config = TrainConfig(model="attention_gcn",
                         epochs=4, batch_size=8, preprocessing=Preprocessing(frames=16), seed=4,
                         pruning=PruningConfig(method=method, rate=0.9), refit=False)
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path / "cut"), method],
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert len(json.loads((tmp_path / "cut" / "history.json").read_text())["loss"]) == 2
    resumed = train(config, tmp_path / "cut", dataset=gestures, verbose=0)
    full = train(config, tmp_path / "full", dataset=gestures, verbose=0)
    for key in ("test_accuracy", "realized_rate", "kept_weights"):
        assert resumed[key] == full[key], key
    a = keras.models.load_model(tmp_path / "full" / "model.keras")
    b = keras.models.load_model(tmp_path / "cut" / "model.keras")
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=va.path)
    steps = 4 * -(-full["train_samples"] // 8)  # epochs x batches
    assert int(b.get_layer("classifier").pruning_step.numpy()) == steps


def test_a_finished_mrmp_run_asked_for_another_extraction_is_extracted_again_not_retrained(
        gestures, tmp_path, monkeypatch):
    import keras

    from keras_gcnprune.training import RunConflictError

    def config(consistent, rates=(0.9, 0.98)):
        return TrainConfig(model="attention_gcn",
                           epochs=3, batch_size=8, preprocessing=Preprocessing(frames=16), seed=2,
                           pruning=PruningConfig(method="mrmp", rates=rates,
                                                 consistent_extraction=consistent))

    train(config(False), tmp_path / "ranked", dataset=gestures, verbose=0)
    direct = train(config(True), tmp_path / "direct", dataset=gestures, verbose=0)
    history = (tmp_path / "ranked" / "history.json").read_text()
    fitted = []
    monkeypatch.setattr(keras.Model, "fit", lambda *args, **kwargs: fitted.append(args))
    again = train(config(True), tmp_path / "ranked", dataset=gestures, verbose=0)
    assert not fitted and (tmp_path / "ranked" / "history.json").read_text() == history
    for rate in ("0.9", "0.98"):
        for key in ("test_accuracy", "validation_accuracy", "kept_weights",
                    "disconnected_fraction"):
            assert again["rates"][rate][key] == direct["rates"][rate][key], (rate, key)
    assert again["test_accuracy"] == direct["test_accuracy"]
    recorded = json.loads((tmp_path / "ranked" / "run.json").read_text())["config"]["pruning"]
    assert recorded["consistent_extraction"] is True
    # the training settings decide: another rate is a new training, refused here
    with pytest.raises(RunConflictError, match="'rates': \\[0.9, 0.98\\]"):
        train(config(True, (0.9, 0.95)), tmp_path / "ranked", dataset=gestures, verbose=0)


@pytest.mark.parametrize("value", [float("nan"), -1e-3, 0.0, float("inf")])
def test_a_learning_rate_that_is_not_a_positive_number_is_refused(value):
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        TrainConfig(model="attention_gcn", learning_rate=value)


def test_the_learning_rate_warms_up_linearly_then_decays_by_cosine_to_one_percent():
    from keras_gcnprune.training.run import learning_rate_schedule

    steps = 10  # per epoch
    plain = learning_rate_schedule(TrainConfig(model="attention_gcn",
                                               epochs=5, learning_rate=1e-2), steps)
    warm = learning_rate_schedule(TrainConfig(model="attention_gcn",
                                              epochs=5, learning_rate=1e-2, warmup_epochs=1),
                                  steps)
    np.testing.assert_allclose([float(plain(s)) for s in (0, 25, 50)], [1e-2, 5.05e-3, 1e-4],
                               rtol=1e-5)
    np.testing.assert_allclose([float(warm(s)) for s in (0, 5, 10, 30, 50)],
                               [0.0, 5e-3, 1e-2, 5.05e-3, 1e-4], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("settings, message", [
    ({"warmup_epochs": 5}, "warmup_epochs"), ({"warmup_epochs": -1}, "warmup_epochs"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
])
def test_bad_schedule_or_loss_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(model="attention_gcn", epochs=5, **settings)


def test_a_loss_that_becomes_nan_stops_training_and_writes_no_metrics(gestures, tmp_path):
    from keras_gcnprune.training import TrainingDivergedError

    config = TrainConfig(model="attention_gcn",
                         epochs=2, learning_rate=1e30, preprocessing=Preprocessing(frames=16))
    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 1, batch"):
        train(config, tmp_path, dataset=gestures, verbose=0)
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "model.keras").exists()


def test_non_finite_data_is_refused_before_training(tmp_path):
    poses = np.random.default_rng(0).random((20, 15, 2)).astype("float32")
    poses[13, 4, 1] = np.inf
    path = tmp_path / "inf.npz"
    np.savez(path, poses=poses, lengths=np.array([10, 10]), labels=np.array([0, 1]),
             layout=np.array("jhmdb"), meta_partition=np.array(["train", "test"]))
    from keras_gcnprune.data import SkeletonFileError

    with pytest.raises(SkeletonFileError, match="sequence 1: 1 NaN, infinite"):
        train(TrainConfig(model="attention_gcn",
                          dataset=str(path), epochs=1), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_run_directory_of_other_settings_is_refused_unless_overwritten(gestures, tmp_path,
                                                                         monkeypatch):
    from keras_gcnprune.training import RunConflictError, load_run, run

    first = TrainConfig(model="attention_gcn",
                        epochs=1, preprocessing=Preprocessing(frames=16), seed=0, refit=False)
    train(first, tmp_path, dataset=gestures, verbose=0)
    other = TrainConfig(model="attention_gcn",
                        epochs=1, preprocessing=Preprocessing(frames=8), seed=3, refit=False)
    with pytest.raises(RunConflictError, match=r"other settings \(preprocessing: .*'frames': 16.* "
                                               r"there, .*'frames': 8.* now; seed: 0 there, 3 now"):
        train(other, tmp_path, dataset=gestures, verbose=0)
    model, _ = load_run(tmp_path)  # the finished run is untouched
    assert model.input_shape[1] == 16
    monkeypatch.setattr(run, "HistoryFile", crashing_history(2))
    with pytest.raises(StopAfter):  # killed while overwriting
        train(replace(other, epochs=3), tmp_path, dataset=gestures, verbose=0, overwrite=True)
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "metrics.json").exists()
    with pytest.raises(FileNotFoundError, match="unfinished run"):
        load_run(tmp_path)


def test_run_files_that_contradict_or_are_damaged_are_refused_naming_the_file(gestures,
                                                                              tmp_path):
    from keras_gcnprune.training import load_run

    train(TrainConfig(model="attention_gcn",
                      epochs=1, preprocessing=Preprocessing(frames=16)), tmp_path,
          dataset=gestures, verbose=0)
    run_file, model_file = tmp_path / "run.json", tmp_path / "model.keras"
    info = json.loads(run_file.read_text())
    info["config"]["preprocessing"]["frames"] = 8
    run_file.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"run.json does not describe the model beside it "
                                         r"\(frames: 8 in run.json, 16 in the model\)"):
        load_run(tmp_path)
    run_file.write_text("{not json")
    with pytest.raises(ValueError, match=f"{run_file} is not a readable run record"):
        load_run(tmp_path)
    run_file.write_text("[]")
    with pytest.raises(ValueError, match=f"{run_file} is not a run record"):
        load_run(tmp_path)
    info["config"]["preprocessing"]["frames"] = 16
    run_file.write_text(json.dumps(info))
    model_file.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{model_file} is damaged: .* not \\(1,000 bytes"):
        load_run(tmp_path)


def test_val_accuracy_is_the_held_out_training_part_never_the_test_split(gestures, tmp_path):
    config = TrainConfig(model="attention_gcn",
                         epochs=2, preprocessing=Preprocessing(frames=16), validation=0.25,
                         refit=False)
    metrics = train(config, tmp_path, dataset=gestures, verbose=0)
    data = prepare_data(config, gestures)
    assert metrics["validation_samples"] == len(data.validation[1]) > 0
    assert metrics["train_samples"] + metrics["validation_samples"] == 4 * 14 * 5
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["val_accuracy"][-1] == pytest.approx(metrics["validation_accuracy"], abs=1e-6)
    none = train(replace(config, validation=0.0), tmp_path / "none", dataset=gestures,
                 verbose=0)
    assert "validation_accuracy" not in none and none["train_samples"] == 4 * 14 * 5


def test_a_refit_run_reports_its_selection_runs_validation_and_fits_the_whole_split(
        gestures, tmp_path):
    from keras_gcnprune.training import load_run

    config = TrainConfig(model="attention_gcn",
                         epochs=2, preprocessing=Preprocessing(frames=16), validation=0.25)
    metrics = train(config, tmp_path, dataset=gestures, verbose=0)
    selection = json.loads((tmp_path / "selection" / "metrics.json").read_text())
    assert metrics["train_samples"] == 4 * 14 * 5  # validation part included
    assert selection["train_samples"] + selection["validation_samples"] == 4 * 14 * 5
    assert metrics["validation_accuracy"] == selection["validation_accuracy"]
    assert metrics["validation_samples"] == selection["validation_samples"] > 0
    assert metrics["selection_test_accuracy"] == selection["test_accuracy"]
    assert "val_accuracy" not in json.loads((tmp_path / "history.json").read_text())
    _, info = load_run(tmp_path / "selection")
    assert info.config["refit"] is False and info.config["validation"] == 0.25
    # a run that starts from a refit run starts its selection run from that run's selection
    pruned = replace(config, initial_model=str(tmp_path / "model.keras"),
                     pruning=PruningConfig(method="magnitude", rate=0.5))
    train(pruned, tmp_path / "pruned", dataset=gestures, verbose=0)
    _, info = load_run(tmp_path / "pruned" / "selection")
    assert info.config["initial_model"] == str(tmp_path / "selection" / "model.keras")
    assert train(config, tmp_path, dataset=gestures, verbose=0) == metrics  # not retrained
    train(replace(config, seed=4), tmp_path, dataset=gestures, verbose=0, overwrite=True)
    assert json.loads((tmp_path / "selection" / "run.json").read_text())["config"]["seed"] == 4


def test_the_loss_adaptive_rate_follows_the_loss_and_resumes_from_the_history(tmp_path):
    from keras_gcnprune.training.callbacks import HistoryFile, LossAdaptiveLearningRate

    class Model:
        optimizer = type("Optimizer", (), {})()

    Model.optimizer.learning_rate = keras.Variable(1.0)
    history = HistoryFile(OutputFolder(tmp_path), "history.json")
    adaptive = LossAdaptiveLearningRate(history, factor=0.5)
    adaptive.set_model(Model())
    adaptive.on_train_begin()
    rates = []
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.5, 1.0]):
        adaptive.on_epoch_end(epoch, {"loss": loss})
        rates.append(float(Model.optimizer.learning_rate.numpy()))
    assert rates == [1.0, 2.0, 1.0, 1.0, 2.0]  # fell: /0.5, rose: x0.5, equal: kept
    (tmp_path / "history.json").write_text(json.dumps({"loss": [3.0, 2.0]}))
    resumed = LossAdaptiveLearningRate(history, factor=0.5)
    resumed.set_model(Model())
    resumed.on_train_begin()
    resumed.on_epoch_end(2, {"loss": 2.5})
    assert float(Model.optimizer.learning_rate.numpy()) == 1.0
    with pytest.raises(ValueError, match="schedule must be one of cosine, loss_adaptive"):
        TrainConfig(model="attention_gcn", schedule="step")


@keras.saving.register_keras_serializable(package="tests")
class ChannelMix(MaskedLayer):
    """A custom prunable layer at the protocol's first tier: it lists its masked kernel and
    nothing more (no reachability rules, no compaction)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (input_shape[-1], self.units), in_axis=0, out_axes=(1,))

    def call(self, inputs, training=None):
        return keras.ops.relu(keras.ops.matmul(inputs, self.masked(self.kernel, self.kernel_mask,
                                                                    training)))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_a_layer_that_only_lists_its_masked_weights_is_magnitude_pruned_through_train(
        gestures, tmp_path):
    from keras_gcnprune.layers import GraphConv, MaskedDense

    assert not ChannelMix.implements("reachability") and not ChannelMix.implements("compaction")
    assert GraphConv.implements("reachability") and GraphConv.implements("compaction")
    assert MaskedDense.implements("stock") and not GraphConv.implements("stock")
    inputs = keras.Input((16, 21, 3))
    features = keras.layers.GlobalAveragePooling2D()(ChannelMix(64)(inputs))
    custom = keras.Model(inputs, keras.layers.Dense(14)(features))
    custom.save(tmp_path / "custom.keras")
    config = TrainConfig(model="attention_gcn", epochs=2, refit=False, validation=0.0,
                         initial_model=str(tmp_path / "custom.keras"),
                         preprocessing=Preprocessing(frames=16, streams=("joint",)),
                         pruning=PruningConfig(method="magnitude", rate=0.5, begin=0.0, end=0.5))
    metrics = train(config, tmp_path / "magnitude", dataset=gestures, verbose=0)
    assert metrics["realized_rate"] == pytest.approx(0.5, abs=1 / 192)
    assert metrics["kept_weights"] == 96  # half of the 3 x 64 kernel
    assert "disconnected_fraction" not in metrics and "compacted_parameters" not in metrics
    assert not (tmp_path / "magnitude" / "connectivity.json").exists()
    with pytest.raises(ValueError, match="'channel_mix' \\(ChannelMix\\) lists its masked "
                                         "weights but states no reachability rules"):
        train(replace(config, pruning=PruningConfig(method="tcp", rate=0.5)), tmp_path / "tcp",
              dataset=gestures, verbose=0)
    assert not (tmp_path / "tcp" / "metrics.json").exists()
