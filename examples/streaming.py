"""Streaming gestures as an app runs them: raw frames in, smoothed decisions out, via LiteRT.

Trains a small model on the built-in synthetic gestures, exports it as an app would ship it
(raw coordinates in, probabilities out), then plays the test clips one after another as one
stream of frames through a ring buffer that is classified every 4 frames, on LiteRT's CPU
runtime and, where it is installed, on LiteRT's GPU engine.
"""

import tempfile
from pathlib import Path

import numpy as np

from keras_gcnprune.data import Preprocessing, load_dataset, split
from keras_gcnprune.deploy import LiteRtClassifier, StreamingClassifier, stream_decisions
from keras_gcnprune.export import export_run, gpu_engine_missing
from keras_gcnprune.training import TrainConfig, train

out = Path(tempfile.mkdtemp())
metrics = train(TrainConfig(dataset="synthetic", protocol="cross_subject", epochs=20,
                           preprocessing=Preprocessing(streams=("joint", "motion"))),
                out / "run", verbose=0)
print(f"trained: {metrics['test_accuracy']:.0%} top-1 on whole test clips")
export_run(out / "run", tflite=out / "gesture.tflite", raw_input=True, probabilities=True)

_, test = split(load_dataset("synthetic"), "cross_subject")
clips = test.sequences[:40]
frames = np.concatenate(clips).astype("float32")
truth = np.concatenate([[label] * len(clip) for clip, label in zip(clips, test.labels)])

for accelerator in ["cpu"] if gpu_engine_missing() else ["cpu", "gpu"]:
    model = LiteRtClassifier(out / "gesture.tflite", accelerator)
    stream = StreamingClassifier(model, every=4, window=40, smoothing=0.5, threshold=0.6)
    decisions = stream_decisions(stream, frames)
    labelled = [d for d in decisions if d.label is not None]
    # The right answer for a window: the gesture that fills most of it.
    majority = [np.bincount(truth[d.frame - stream.window + 1:d.frame + 1]).argmax()
                for d in labelled]
    correct = np.mean([d.index == m for d, m in zip(labelled, majority)]) if labelled else 0.0
    latency = np.median([d.latency_ms for d in decisions])
    print(f"{accelerator}: {len(decisions)} decisions over {len(frames)} frames, "
          f"{len(labelled)} labelled, {correct:.0%} of those right, {latency:.2f} ms per window")
    print("  first:", [(d.frame, d.label, round(d.confidence, 2)) for d in decisions[:3]])
