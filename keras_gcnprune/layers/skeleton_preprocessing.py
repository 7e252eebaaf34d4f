"""The package's per-sequence preprocessing as a Keras layer, for models that take raw joints.

`SkeletonPreprocessing` computes in the graph what `keras_gcnprune.data.Preprocessing` computes
in numpy for a window that already has the model's number of frames: the axis convention of the
sensor mapped to the training data's, centring on the centre joint's first-frame position,
scaling to unit mean bone length, and the joint, bone and motion streams. Resampling a clip of
another length stays outside (an app keeps a ring buffer of the last T frames). It uses only
operators that LiteRT's GPU engine runs: 4-D slices, constant 2-D matmuls over the joint axis,
comparisons, sums, square roots and concatenations.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_gcnprune.graphs import SkeletonLayout, get_layout

STREAMS = ("joint", "bone", "motion")
AXES = "xyz"


def identity_axes(channels: int) -> str:
    """The spec that reads every axis as it is: `"x,y"` for 2-D joints, `"x,y,z"` for 3-D."""
    return ",".join(AXES[:channels])


def parse_axes(spec: str | None, channels: int) -> list[tuple[int, float]]:
    """`"x,-y,z"` -> for each training axis, the sensor axis it is read from and its sign
    (None: every axis as it is).

    Raises:
        ValueError: the spec does not name each of the first `channels` axes once.
    """
    names = [token.strip() for token in
             (identity_axes(channels) if spec is None else spec).split(",")]
    mapping = [(AXES.index(name.lstrip("-")), -1.0 if name.startswith("-") else 1.0)
               for name in names if name.lstrip("-") in AXES[:channels]]
    if len(names) != channels or len(mapping) != channels or \
            sorted(axis for axis, _ in mapping) != list(range(channels)):
        raise ValueError(
            f"axes {spec!r} must name each of the {channels} sensor axes "
            f"{', '.join(AXES[:channels])} once, in the order of the training data's axes, "
            "each optionally negated: for example 'x,-y,z' for image coordinates whose y "
            "points down when the training data's y points up.")
    return mapping


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class SkeletonPreprocessing(keras.layers.Layer):
    """Raw joint coordinates `(batch, T, V, C)` in, the model's input `(batch, T, V, C * S)` out.

    Joints whose coordinates are all zero are missing, as in the datasets: they stay zero
    after centring and are left out of the bone lengths.

    Args:
        layout: Skeleton layout (name, dict or `SkeletonLayout`).
        centre: Subtract the centre joint's position in the first frame.
        scale: Divide by the mean length of the bones whose two joints are present.
        streams: Channel groups, in order: `"joint"`, `"bone"`, `"motion"`.
        axes: For each axis of the training data, the sensor's axis and sign (`"x,-y,z"`);
            None reads every axis as it is.

    Example:
        >>> layer = SkeletonPreprocessing("sbu", streams=("joint", "motion"))
        >>> tuple(layer(np.random.rand(1, 16, 15, 3).astype("float32")).shape)
        (1, 16, 15, 6)
    """

    def __init__(self, layout, centre: bool = True, scale: bool = True,
                 streams: tuple[str, ...] = ("joint",), axes: str | None = None, **kwargs):
        super().__init__(**kwargs)
        unknown = [s for s in streams if s not in STREAMS]
        if unknown or not streams:
            raise ValueError(f"Unknown or no streams {list(streams)}; choose from {STREAMS}.")
        self.layout: SkeletonLayout = get_layout(layout)
        self.centre, self.scale = bool(centre), bool(scale)
        self.streams, self.axes = tuple(streams), axes
        i, j = np.array(self.layout.edges).T
        joints, edges = self.layout.num_joints, len(i)
        self._first = np.zeros((joints, edges), "float32")
        self._second = np.zeros((joints, edges), "float32")
        self._first[i, np.arange(edges)] = 1.0
        self._second[j, np.arange(edges)] = 1.0
        self._to_bones = np.eye(joints, dtype="float32")
        self._to_bones[self.layout.parents(), np.arange(joints)] -= 1.0

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self._mapping = parse_axes(self.axes, channels)
        self.axes = identity_axes(channels) if self.axes is None else self.axes

    def _oriented(self, x):
        if self._mapping == [(k, 1.0) for k in range(len(self._mapping))]:
            return x
        return keras.ops.concatenate([x[..., axis:axis + 1] * sign
                                      for axis, sign in self._mapping], axis=-1)

    @staticmethod
    def _present(x):
        """1.0 where a joint has any non-zero coordinate, (batch, T, V, 1)."""
        return keras.ops.cast(keras.ops.sum(keras.ops.abs(x), axis=-1, keepdims=True) > 0.0,
                              x.dtype)

    @staticmethod
    def _over_joints(x, matrix):
        """(batch, T, V, C) times a constant (V, W) over the joint axis: (batch, T, W, C)."""
        moved = keras.ops.matmul(keras.ops.transpose(x, (0, 1, 3, 2)), matrix)
        return keras.ops.transpose(moved, (0, 1, 3, 2))

    def _centred(self, x):
        origin = x[:, :1, self.layout.centre:self.layout.centre + 1, :]
        return (x - origin) * self._present(x)

    def _scaled(self, x):
        bones = self._over_joints(x, self._first - self._second)
        lengths = keras.ops.sqrt(keras.ops.sum(keras.ops.square(bones), axis=-1, keepdims=True))
        present = self._present(x)
        both = self._over_joints(present, self._first) * self._over_joints(present, self._second)
        count = keras.ops.sum(both, axis=(1, 2, 3), keepdims=True)
        mean = keras.ops.sum(lengths * both, axis=(1, 2, 3), keepdims=True) / \
            keras.ops.maximum(count, 1.0)
        return x / keras.ops.where(mean > 0.0, mean, keras.ops.ones_like(mean))

    def _stream(self, name, x):
        if name == "joint":
            return x
        if name == "bone":
            return self._over_joints(x, self._to_bones)
        return keras.ops.pad(x[:, 1:] - x[:, :-1], [[0, 0], [0, 1], [0, 0], [0, 0]])

    def call(self, inputs):
        x = self._oriented(inputs)
        if self.centre:
            x = self._centred(x)
        if self.scale:
            x = self._scaled(x)
        parts = [self._stream(name, x) for name in self.streams]
        return parts[0] if len(parts) == 1 else keras.ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] * len(self.streams))

    def get_config(self) -> dict:
        return {**super().get_config(), "layout": self.layout.to_dict(), "centre": self.centre,
                "scale": self.scale, "streams": list(self.streams), "axes": self.axes}
