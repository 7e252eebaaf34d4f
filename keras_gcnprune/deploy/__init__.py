"""The app loop, as a reference: raw frames in, smoothed decisions and gesture onsets out,
through LiteRT."""

from keras_gcnprune.deploy.streaming import (
    Decision,
    Detection,
    LiteRtClassifier,
    OnsetDetector,
    StreamingClassifier,
    detect_onsets,
    stream_decisions,
)

__all__ = ["Decision", "Detection", "LiteRtClassifier", "OnsetDetector", "StreamingClassifier",
           "detect_onsets", "stream_decisions"]
