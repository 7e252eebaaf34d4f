"""`tf.data` input pipelines with on-the-fly augmentation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Augmentation:
    """Random rotation, shear, scaling, noise and temporal crop of every training sample.

    Rotation, shear and scaling are linear, so applying them to each (x, y, z) group of
    channels (joints, bones and motion alike) equals transforming the raw skeleton first.

    Args:
        rotation: Maximum rotation in degrees (about each axis in 3-D, in the plane in 2-D).
        scale: Maximum relative scale change (0.1: factor in [0.9, 1.1]).
        shear: Maximum shear: each off-diagonal entry of the shear matrix is drawn from
            [-shear, shear] (0: none).
        noise: Standard deviation of Gaussian noise, in normalised units (unit bone length).
        crop: Shortest temporal crop, as a share of the frames: a random span of at least
            `crop * frames` is cut and resampled to all frames, which varies speed and
            where in the clip the action sits (1: no crop). Motion channels are rescaled
            with the span, as frame differences of the cropped clip would be.
        point_dims: Coordinates per point: 3 (x, y, z) or 2 (x, y).
        persons: Persons stacked along the joint axis (`sbu_pair`: 2). With more than one, the
            order of the persons is permuted at random, since which actor comes first is
            arbitrary in interaction data.
        streams: The channel groups of each point, in order (see
            `keras_gcnprune.data.Preprocessing`); only `"motion"` is treated differently.
            `keras_gcnprune.training.train` sets it, with `point_dims` and `persons`, from
            the run's data.

    Example:
        >>> augment = Augmentation(rotation=30.0, crop=0.8)
        >>> tuple(augment(tf.zeros((32, 15, 3)), tf.constant([1, 2])).shape)
        (32, 15, 3)
    """

    rotation: float = 15.0
    scale: float = 0.1
    shear: float = 0.0
    noise: float = 0.01
    crop: float = 1.0
    point_dims: int = 3
    persons: int = 1
    streams: tuple[str, ...] = ("joint",)

    def __post_init__(self) -> None:
        if self.point_dims not in (2, 3):
            raise ValueError(f"point_dims must be 2 or 3, got {self.point_dims}.")
        if self.persons < 1:
            raise ValueError(f"persons must be at least 1, got {self.persons}.")
        for name in ("rotation", "scale", "shear", "noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value}.")
        if not 0.0 < self.crop <= 1.0:
            raise ValueError(f"crop must be in (0, 1] (1: no crop), got {self.crop}.")
        object.__setattr__(self, "streams", tuple(self.streams))

    def _rotation_matrix(self, seed) -> tf.Tensor:
        limit = math.radians(self.rotation)
        angles = tf.random.stateless_uniform((3,), seed, -limit, limit)
        cos, sin = tf.cos(angles), tf.sin(angles)
        if self.point_dims == 2:
            return tf.reshape(tf.stack([cos[0], -sin[0], sin[0], cos[0]]), (2, 2))
        one, zero = tf.ones(()), tf.zeros(())
        rx = tf.reshape(tf.stack([one, zero, zero, zero, cos[0], -sin[0], zero, sin[0], cos[0]]),
                        (3, 3))
        ry = tf.reshape(tf.stack([cos[1], zero, sin[1], zero, one, zero, -sin[1], zero, cos[1]]),
                        (3, 3))
        rz = tf.reshape(tf.stack([cos[2], -sin[2], zero, sin[2], cos[2], zero, zero, zero, one]),
                        (3, 3))
        return rx @ ry @ rz

    def _shear_matrix(self, seed) -> tf.Tensor:
        dims = self.point_dims
        off_diagonal = 1.0 - tf.eye(dims)
        return tf.eye(dims) + off_diagonal * tf.random.stateless_uniform(
            (dims, dims), seed, -self.shear, self.shear)

    def __call__(self, x: tf.Tensor, seed) -> tf.Tensor:
        """Augments one sample `(T, V, C)` with C a multiple of `point_dims`."""
        seeds = tf.random.experimental.stateless_split(seed, 6)
        if self.crop < 1.0:
            x = self._crop(x, seeds[4])
        shape = tf.shape(x)
        if self.persons > 1:
            x = self._permute_persons(x, seeds[3])
        points = tf.reshape(x, (-1, self.point_dims))
        factor = tf.random.stateless_uniform((), seeds[1], 1.0 - self.scale, 1.0 + self.scale)
        transform = self._rotation_matrix(seeds[0])
        if self.shear:
            transform = transform @ self._shear_matrix(seeds[5])
        points = tf.matmul(points, transform, transpose_b=True) * factor
        points += tf.random.stateless_normal(tf.shape(points), seeds[2], stddev=self.noise)
        return tf.reshape(points, shape)

    def _crop(self, x: tf.Tensor, seed) -> tf.Tensor:
        """A random span of at least `crop` of the frames, linearly resampled to all frames."""
        frames = x.shape[0]
        last = float(frames - 1)
        share_seed, start_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        span = tf.random.stateless_uniform((), share_seed, self.crop, 1.0) * last
        start = tf.random.stateless_uniform((), start_seed) * (last - span)
        position = start + tf.linspace(0.0, 1.0, frames) * span
        low = tf.floor(position)
        weight = tf.reshape(position - low, (frames, 1, 1))
        low = tf.cast(low, tf.int32)
        high = tf.minimum(low + 1, frames - 1)
        cropped = tf.gather(x, low) * (1.0 - weight) + tf.gather(x, high) * weight
        if "motion" not in self.streams or frames < 2:
            return cropped
        # A frame of the crop spans span / last original frames: so do its differences.
        stretch = tf.concat([tf.fill((self.point_dims,), span / last if name == "motion"
                                     else 1.0) for name in self.streams], axis=0)
        return cropped * stretch

    def _permute_persons(self, x: tf.Tensor, seed) -> tf.Tensor:
        shape = tf.shape(x)
        by_person = tf.reshape(x, (shape[0], self.persons, -1, shape[2]))
        order = tf.argsort(tf.random.stateless_uniform((self.persons,), seed))
        return tf.reshape(tf.gather(by_person, order, axis=1), shape)


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = 32,
    training: bool = False,
    augmentation: Augmentation | None = None,
    seed: int = 0,
    epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
    """Builds a batched, prefetched `tf.data.Dataset` of `(inputs, labels)`.

    A training dataset yields a new order (and new augmentations) at every iteration, each a
    pure function of `seed` and the epoch number, so that a training resumed at epoch `k`
    sees exactly the batches an uninterrupted one saw at epoch `k`.

    Args:
        x: Inputs `(n, T, V, C)` from `Preprocessing.arrays`.
        y: Integer labels `(n,)`.
        batch_size: Batch size.
        training: Shuffle every epoch and apply `augmentation`.
        augmentation: Applied on the fly to training samples (None: no augmentation).
        seed: Seed of shuffling and augmentation (runs are repeatable).
        epoch: Training only: an int64 `tf.Variable` holding the epoch the next iteration
            yields; every iteration reads it and adds one. Set it before an epoch starts
            (`keras_gcnprune.training.EpochCounter` does, from `on_epoch_begin`) to resume
            at that epoch. None: a counter of the dataset's own, from 0.

    Returns:
        The dataset, ready for `model.fit` or `model.evaluate`.

    Example:
        >>> ds = make_tf_dataset(np.zeros((8, 16, 15, 3), "float32"), np.zeros(8, "int64"), 4)
        >>> [tuple(b[0].shape) for b in ds]
        [(4, 16, 15, 3), (4, 16, 15, 3)]
    """
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} labels.")
    inputs, labels = tf.constant(x, tf.float32), tf.constant(y, tf.int64)
    if not training:
        dataset = tf.data.Dataset.from_tensor_slices((inputs, labels))
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    if epoch is None:
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)

    def one_epoch(_):
        key = tf.stack([tf.constant(seed, tf.int64), epoch.assign_add(1) - 1])
        order = tf.random.experimental.stateless_shuffle(tf.range(len(x), dtype=tf.int64), key)
        return tf.data.Dataset.from_tensor_slices(order).map(
            lambda index: _sample(inputs, labels, index, key, augmentation),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    dataset = tf.data.Dataset.from_tensors(0).flat_map(one_epoch).apply(
        tf.data.experimental.assert_cardinality(len(x)))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _sample(inputs: tf.Tensor, labels: tf.Tensor, index: tf.Tensor, key: tf.Tensor,
            augmentation: Augmentation | None) -> tuple[tf.Tensor, tf.Tensor]:
    x = tf.gather(inputs, index)
    if augmentation is not None:
        x = augmentation(x, tf.random.experimental.stateless_fold_in(key, index))
    return x, tf.gather(labels, index)
