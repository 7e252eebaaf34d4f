"""The callbacks of a training run: a backup that resumes exactly, the epoch that keys the
data pipeline, a stop on a non-finite loss, and the history file."""

from __future__ import annotations

import json
import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_gcnprune.outputs import OutputFolder

RANDOM_STATE_FILE = "random_state.npz"


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that resumes only the same configuration and survives a bad backup.

    Args:
        output: The run's output folder, which records the backup as the package's.
        name: The backup folder's name in it.
        fingerprint: Text identifying the run's configuration.
    """

    def __init__(self, output: OutputFolder, name: str, fingerprint: str) -> None:
        super().__init__(str(output.path / name), double_checkpoint=True)
        self.output, self.name = output, name
        self.folder = output.path / name
        self.fingerprint = fingerprint
        self.stamp = self.folder / "run_config.json"

    def resumable(self) -> bool:
        """Whether the folder holds a backup of this configuration (else it is discarded)."""
        if not self.folder.exists():
            return False
        if self.stamp.exists() and self.stamp.read_text() == self.fingerprint:
            return True
        self._discard(f"it was written by a different configuration than {self.stamp} records")
        return False

    def on_train_begin(self, logs=None) -> None:
        try:
            super().on_train_begin(logs)
        except (OSError, ValueError) as error:
            self._discard(f"it cannot be read ({error})")
        else:
            self._restore_random_states()
        self.output.claim(self.name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stamp.write_text(self.fingerprint)

    def _save_model(self) -> None:
        # Keras' backup holds the weights, not the random states (dropout, noise, rate
        # sampling): without them a resumed training draws what the first epochs drew.
        super()._save_model()
        # By position: seed generators' paths carry process-wide counters.
        states = {f"state_{i}": variable.numpy()
                  for i, variable in enumerate(random_states(self.model))}
        temporary = self.folder / "random_state.partial.npz"
        np.savez(temporary, epoch=self._current_epoch, **states)
        temporary.replace(self.folder / RANDOM_STATE_FILE)

    def _restore_random_states(self) -> None:
        path = self.folder / RANDOM_STATE_FILE
        epoch = getattr(self.model, "_initial_epoch", None)
        if epoch is None or not path.exists():
            return
        with np.load(path) as saved:
            if int(saved["epoch"]) != epoch:
                warnings.warn(f"{path} is from epoch {int(saved['epoch'])}, the backup from "
                              f"epoch {epoch}: random draws after the resume differ from an "
                              "uninterrupted run's.", stacklevel=2)
                return
            for i, variable in enumerate(random_states(self.model)):
                variable.assign(saved[f"state_{i}"])

    def _discard(self, reason: str) -> None:
        warnings.warn(f"Discarding the training backup in {self.folder}: {reason}; starting "
                      "from the first epoch.", stacklevel=2)
        self.output.remove(self.name)


def random_states(model: keras.Model) -> list:
    """The model's seed-generator states: variables that are not among its weights."""
    weights = {variable.path for variable in model.weights}
    return [variable for variable in model.variables if variable.path not in weights]


class EpochCounter(keras.callbacks.Callback):
    """Sets a training dataset's epoch variable (see `make_tf_dataset`) as each epoch begins,
    so that an epoch's order and augmentation depend on its number, resumed or not.

    Args:
        epoch: The int64 variable the dataset was built with.
    """

    def __init__(self, epoch: tf.Variable) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch.assign(epoch)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with `TrainingDivergedError` as soon as a batch's loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, which ends `fit` normally, it raises before the
    epoch ends, so that no backup, history or metrics of the diverged weights are written.
    """

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDivergedError(
                f"The training loss became {float(loss)} at epoch {self._epoch + 1}, batch "
                f"{batch + 1}. Lower the learning rate, or check the data for extreme values; "
                "the run directory keeps the last finished epoch's backup.")


class HistoryFile(keras.callbacks.Callback):
    """Rewrites a JSON file of per-epoch metrics after every epoch (kept across a resume).

    Args:
        output: The run's output folder.
        name: The file's name in it.
    """

    def __init__(self, output: OutputFolder, name: str) -> None:
        super().__init__()
        self.output, self.name = output, name

    def read(self) -> dict:
        """The per-epoch metrics written so far (empty before the first epoch)."""
        path = self.output.path / self.name
        return json.loads(path.read_text()) if path.exists() else {}

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        history = self.read()
        for key, value in (logs or {}).items():
            history[key] = history.get(key, [])[:epoch] + [float(value)]
        self.output.write_text(self.name, json.dumps(history, indent=2))


class LossAdaptiveLearningRate(keras.callbacks.Callback):
    """Multiplies the learning rate by `factor` after an epoch whose training loss rose, and
    divides it by `factor` after one whose loss fell (the seed papers' regime).

    The rate lives in the optimizer, which the run's backup saves; the previous epoch's loss
    is read back from the history file on a resume, so that a resumed run adapts as an
    uninterrupted one.

    Args:
        history: The run's history file (`HistoryFile`), read on a resume.
        factor: The factor in (0, 1).
    """

    def __init__(self, history: HistoryFile, factor: float = 0.99) -> None:
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}.")
        self.history, self.factor = history, factor
        self.previous = None

    def on_train_begin(self, logs=None) -> None:
        losses = self.history.read().get("loss", [])
        self.previous = losses[-1] if losses else None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        loss = float((logs or {})["loss"])
        if self.previous is not None and loss != self.previous:
            rate = self.model.optimizer.learning_rate
            scale = self.factor if loss > self.previous else 1.0 / self.factor
            rate.assign(rate * scale)
        self.previous = loss
