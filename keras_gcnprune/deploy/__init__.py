"""The app loop, as a reference: raw frames in, smoothed decisions out, through LiteRT."""

from keras_gcnprune.deploy.streaming import (
    Decision,
    LiteRtClassifier,
    StreamingClassifier,
    stream_decisions,
)

__all__ = ["Decision", "LiteRtClassifier", "StreamingClassifier", "stream_decisions"]
