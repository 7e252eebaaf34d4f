"""Picking channel groups (streams) out of a model input that holds several."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_gcnprune.layers.skeleton_preprocessing import STREAMS


def _check_streams(streams: Sequence[str], what: str) -> tuple[str, ...]:
    streams = tuple(streams)
    unknown = [s for s in streams if s not in STREAMS]
    if unknown or not streams or len(set(streams)) != len(streams):
        raise ValueError(f"{what} {list(streams)} must name distinct streams, each one of "
                         f"{STREAMS}.")
    return streams


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class SelectStreams(keras.layers.Layer):
    """Takes some of the streams of a `(batch, T, V, C * len(streams))` input, in the order
    `take` names them: the input of a model trained on fewer streams, inside a model fed
    more (an ensemble whose members each see their own). Runs as slices and a concatenation,
    which LiteRT's GPU engine runs.

    Args:
        streams: The input's channel groups, in order (`"joint"`, `"bone"`, `"motion"`).
        take: The groups to output, each one of `streams`.

    Example:
        >>> layer = SelectStreams(("joint", "bone", "motion"), take=("motion",))
        >>> tuple(layer(np.zeros((1, 16, 15, 9), "float32")).shape)
        (1, 16, 15, 3)
    """

    def __init__(self, streams: Sequence[str], take: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.streams = _check_streams(streams, "streams")
        self.take = _check_streams(take, "take")
        missing = [s for s in self.take if s not in self.streams]
        if missing:
            raise ValueError(f"take={list(self.take)} names {missing}, which the input's "
                             f"streams {list(self.streams)} lack.")

    def call(self, inputs):
        channels = inputs.shape[-1] // len(self.streams)
        parts = [inputs[..., self.streams.index(s) * channels:
                        (self.streams.index(s) + 1) * channels] for s in self.take]
        return parts[0] if len(parts) == 1 else keras.ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1] // len(self.streams)
        return (*input_shape[:-1], channels * len(self.take))

    def get_config(self) -> dict:
        return {**super().get_config(), "streams": list(self.streams), "take": list(self.take)}
