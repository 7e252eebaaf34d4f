"""Streaming classification as an app runs it: a ring buffer of the last frames, a LiteRT call
every few frames, smoothed scores and a confidence threshold.

It runs a raw-input export (`gcnprune export RUN --tflite F --raw-input --probabilities`)
through LiteRT's `CompiledModel`, the API that LiteRT 2.x's Android package exposes, on the CPU
or on LiteRT's GPU engine, so that the loop can be measured here as it will run on a phone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_gcnprune.data.preprocessing import resample
from keras_gcnprune.export.flatbuffer import read_metadata
from keras_gcnprune.export.gpu_engine import prepare_gpu_engine

ACCELERATORS = ("cpu", "gpu")


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


class LiteRtClassifier:
    """One raw-input `.tflite` model in LiteRT's `CompiledModel`, on the CPU or GPU only.

    Args:
        path: A file exported with `--raw-input` (its metadata says so).
        accelerator: `"cpu"` or `"gpu"` (LiteRT's GPU engine, no CPU fallback).

    Example:
        >>> model = LiteRtClassifier("gesture_raw.tflite")  # doctest: +SKIP
        >>> model.probabilities(window).argmax()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, accelerator: str = "cpu"):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator

        if accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator must be one of {ACCELERATORS}, got {accelerator!r}.")
        self.metadata = read_metadata(path)
        if not self.metadata.get("raw_input"):
            raise ValueError(f"{path} takes preprocessed inputs; a stream of sensor frames needs "
                             "a raw-input export: gcnprune export RUN --tflite FILE --raw-input.")
        if accelerator == "gpu":
            prepare_gpu_engine()
        hardware = HardwareAccelerator.GPU if accelerator == "gpu" else HardwareAccelerator.CPU
        self.model = CompiledModel.from_file(str(path), hardware_accel=hardware)
        self.inputs = self.model.create_input_buffers(0)
        self.outputs = self.model.create_output_buffers(0)
        self.labels = self.metadata["labels"]
        self.frames = self.metadata["frames"]
        self.frame_shape = tuple(self.metadata["input"]["shape"][2:])  # (joints, channels)
        self._returns_probabilities = self.metadata["output"]["name"] == "probabilities"

    def probabilities(self, window: np.ndarray) -> np.ndarray:
        """Class probabilities of one window `(frames, joints, channels)` of raw coordinates."""
        self.inputs[0].write(np.ascontiguousarray(window[None], dtype=np.float32))
        self.model.run_by_index(0, self.inputs, self.outputs)
        scores = self.outputs[0].read(len(self.labels), np.float32)
        return scores if self._returns_probabilities else _softmax(scores)


@dataclass(frozen=True)
class Decision:
    """What the loop says after one model call.

    Args:
        frame: Index of the newest frame in the window.
        label: The top class, or None when its smoothed probability is below the threshold.
        index: The top class's index (also when below the threshold).
        confidence: The top class's smoothed probability.
        latency_ms: The model call's wall time.
    """

    frame: int
    label: str | None
    index: int
    confidence: float
    latency_ms: float


class StreamingClassifier:
    """A ring buffer of the last `window` frames, classified every `every` frames.

    The window is resampled to the model's frames before each call (`data.resample`), as the
    training clips were; smoothing is an exponential moving average of the probabilities.

    Args:
        model: A `LiteRtClassifier`.
        every: Frames between model calls.
        window: Raw frames in the buffer (default: the model's frames). Training resampled each
            whole clip to the model's frames, so a window about as long as a typical training
            clip sees actions at the speed the model learned them.
        smoothing: Weight of the previous smoothed scores (0: none).
        threshold: Least smoothed probability for a decision to carry a label.

    Example:
        >>> stream = StreamingClassifier(LiteRtClassifier("gesture_raw.tflite"))  # doctest: +SKIP
        >>> for frame in camera_frames:  # doctest: +SKIP
        ...     decision = stream.push(frame)
    """

    def __init__(self, model: LiteRtClassifier, every: int = 4, window: int | None = None,
                 smoothing: float = 0.5, threshold: float = 0.5):
        if every < 1 or not 0.0 <= smoothing < 1.0 or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"Need every >= 1, 0 <= smoothing < 1 and 0 <= threshold <= 1; got "
                             f"every={every}, smoothing={smoothing}, threshold={threshold}.")
        self.model, self.every = model, every
        self.window = window or model.frames
        self.smoothing, self.threshold = smoothing, threshold
        self.reset()

    def reset(self) -> None:
        """Forgets the buffered frames and the smoothed scores (for example after a pause)."""
        self._buffer: np.ndarray | None = None
        self._seen = 0
        self._smoothed: np.ndarray | None = None

    def _ordered_window(self) -> np.ndarray:
        start = self._seen % self.window
        return np.concatenate([self._buffer[start:], self._buffer[:start]])

    def push(self, frame: np.ndarray) -> Decision | None:
        """Adds one frame `(joints, channels)`; returns a decision on every `every`-th frame once
        the buffer is full, else None.

        Raises:
            ValueError: the frame is not `(joints, channels)` of the model, or holds NaN or
                infinite coordinates; the stream is left as it was, so the caller can skip the
                frame (or give lost joints as zeros, which the model reads as missing).
        """
        frame = np.asarray(frame, dtype=np.float32)
        if frame.shape != self.model.frame_shape:
            raise ValueError(f"A frame must be (joints, channels) = {self.model.frame_shape} "
                             f"for this model, got shape {frame.shape}.")
        if not np.all(np.isfinite(frame)):
            raise ValueError(f"Frame {self._seen} holds NaN or infinite coordinates; it was "
                             "not added. Skip it, or give lost joints as zeros (read as "
                             "missing).")
        if self._buffer is None:
            self._buffer = np.zeros((self.window, *frame.shape), np.float32)
        self._buffer[self._seen % self.window] = frame
        self._seen += 1
        if self._seen < self.window or (self._seen - self.window) % self.every:
            return None
        started = time.perf_counter()
        scores = self.model.probabilities(resample(self._ordered_window(), self.model.frames))
        latency = (time.perf_counter() - started) * 1000
        self._smoothed = scores if self._smoothed is None else \
            self.smoothing * self._smoothed + (1.0 - self.smoothing) * scores
        top = int(self._smoothed.argmax())
        confidence = float(self._smoothed[top])
        label = self.model.labels[top] if confidence >= self.threshold else None
        return Decision(self._seen - 1, label, top, confidence, latency)


def stream_decisions(stream: StreamingClassifier, frames: Iterable[np.ndarray]) -> list[Decision]:
    """Every decision the loop makes over a recorded stream of frames."""
    return [d for d in (stream.push(frame) for frame in frames) if d is not None]


@dataclass(frozen=True)
class Detection:
    """A gesture found in a stream.

    Args:
        label: Its class.
        index: The class's index.
        frame: The frame of the decision that confirmed it.
        start: The frame where it is estimated to have begun.
    """

    label: str
    index: int
    frame: int
    start: int


class OnsetDetector:
    """Turns a stream's decisions into gesture onsets: a labelled class other than the
    background that tops `confirm` decisions in a row is reported once, when it is confirmed;
    it can be reported again only after a decision of another class or none.

    Args:
        background: The class that means no gesture (not reported), if the model has one.
        confirm: Decisions in a row that confirm a class.
        lag: Frames between a gesture's start and the frame of the first of its confirming
            decisions: the reported start is that frame minus `lag` (choose it on validation;
            about half the window is a fair start).

    Example:
        >>> detector = OnsetDetector(background="none", confirm=2, lag=16)
        >>> for decision in stream_decisions(stream, frames):  # doctest: +SKIP
        ...     onset = detector.push(decision)
    """

    def __init__(self, background: str | None = None, confirm: int = 2, lag: int = 0):
        if confirm < 1 or lag < 0:
            raise ValueError(f"Need confirm >= 1 and lag >= 0; got confirm={confirm}, "
                             f"lag={lag}.")
        self.background, self.confirm, self.lag = background, confirm, lag
        self.reset()

    def reset(self) -> None:
        self._run: list[Decision] = []
        self._active: str | None = None

    def push(self, decision: Decision) -> Detection | None:
        label = decision.label if decision.label != self.background else None
        if label is None or label != (self._run[-1].label if self._run else None):
            self._run = []
            if label != self._active:
                self._active = None
        if label is None:
            return None
        self._run.append(decision)
        if len(self._run) < self.confirm or label == self._active:
            return None
        self._active = label
        first = self._run[0]
        return Detection(label, decision.index, decision.frame, max(0, first.frame - self.lag))


def detect_onsets(stream: StreamingClassifier, detector: OnsetDetector,
                  frames: Iterable[np.ndarray]) -> list[Detection]:
    """Every gesture onset the loop reports over a recorded stream of frames."""
    detections = []
    for frame in frames:
        decision = stream.push(frame)
        onset = detector.push(decision) if decision is not None else None
        if onset is not None:
            detections.append(onset)
    return detections
