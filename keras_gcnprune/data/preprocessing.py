"""Per-sequence preprocessing: fixed length, centring, scale, bone and motion streams."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.graphs import SkeletonLayout, get_layout

STREAMS = ("joint", "bone", "motion")


def resample(sequence: np.ndarray, frames: int) -> np.ndarray:
    """Resamples `(T, V, C)` to `(frames, V, C)` by linear interpolation over the whole span."""
    length = len(sequence)
    if length == 1:
        return np.repeat(sequence, frames, axis=0)
    position = np.linspace(0.0, length - 1, frames)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, length - 1)
    weight = (position - low)[:, None, None]
    return sequence[low] * (1.0 - weight) + sequence[high] * weight


def _tracked(sequence: np.ndarray) -> np.ndarray:
    """Joints with any non-zero coordinate; zeros mark an absent person or joint."""
    return np.any(sequence != 0, axis=-1, keepdims=True)


def centre_on_root(sequence: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Subtracts the centre joint's position in the first frame, keeping untracked joints zero.

    Centring on the first frame (not per frame) keeps global motion, which tells apart
    actions such as approaching and departing.
    """
    tracked = _tracked(sequence)
    origin = sequence[0, layout.centre]
    return np.where(tracked, sequence - origin, 0.0)


def normalise_scale(sequence: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Divides by the mean length of the tracked bones, so skeletons have unit bone length."""
    i, j = np.array(layout.edges).T
    lengths = np.linalg.norm(sequence[:, i] - sequence[:, j], axis=-1)
    both = _tracked(sequence)[:, i, 0] & _tracked(sequence)[:, j, 0]
    scale = lengths[both].mean() if both.any() else 0.0
    return sequence / scale if scale > 0 else sequence


def bones(sequence: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Each joint minus its parent (towards the centre); the centre's bone is zero."""
    return sequence - sequence[:, layout.parents()]


def motion(sequence: np.ndarray) -> np.ndarray:
    """Frame-to-frame differences; the last frame's motion is zero."""
    return np.concatenate([np.diff(sequence, axis=0), np.zeros_like(sequence[:1])])


@dataclass(frozen=True)
class Preprocessing:
    """What turns a raw sequence into a model input; saved next to every trained model.

    Args:
        frames: Fixed number of frames T after resampling.
        centre: Centre on the layout's centre joint (first frame).
        scale: Normalise to unit mean bone length.
        streams: Channel groups to concatenate: `"joint"` (coordinates), `"bone"` (joint minus
            parent) and `"motion"` (frame differences).

    Example:
        >>> prep = Preprocessing(frames=16, streams=("joint", "motion"))
        >>> prep.transform(np.random.rand(40, 15, 3), "sbu").shape
        (16, 15, 6)
    """

    frames: int = 32
    centre: bool = True
    scale: bool = True
    streams: tuple[str, ...] = ("joint",)

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be positive, got {self.frames}.")
        unknown = [s for s in self.streams if s not in STREAMS]
        if unknown or not self.streams:
            raise ValueError(f"Unknown or no streams {list(self.streams)}; choose from {STREAMS}.")
        object.__setattr__(self, "streams", tuple(self.streams))

    def channels(self, raw_channels: int) -> int:
        return raw_channels * len(self.streams)

    def transform(self, sequence: np.ndarray, layout) -> np.ndarray:
        """Returns the `(frames, V, C * len(streams))` float32 input of a `(T, V, C)` sequence."""
        layout = get_layout(layout)
        x = np.asarray(sequence, dtype=np.float64)
        if self.centre:
            x = centre_on_root(x, layout)
        if self.scale:
            x = normalise_scale(x, layout)
        x = resample(x, self.frames)
        parts = {"joint": lambda: x, "bone": lambda: bones(x, layout), "motion": lambda: motion(x)}
        return np.concatenate([parts[name]() for name in self.streams], axis=-1).astype(np.float32)

    def arrays(self, dataset: SkeletonDataset) -> tuple[np.ndarray, np.ndarray]:
        """Returns `(x, y)`: inputs `(n, frames, V, C')` and integer labels `(n,)`."""
        layout = dataset.skeleton
        if not len(dataset):
            shape = (0, self.frames, layout.num_joints, self.channels(dataset.channels))
            return np.zeros(shape, np.float32), dataset.labels
        x = np.stack([self.transform(sequence, layout) for sequence in dataset.sequences])
        return x, dataset.labels

    def to_dict(self) -> dict:
        config = asdict(self)
        config["streams"] = list(self.streams)
        return config

    @classmethod
    def from_dict(cls, config: dict) -> Preprocessing:
        return cls(**{**config, "streams": tuple(config.get("streams", ("joint",)))})
