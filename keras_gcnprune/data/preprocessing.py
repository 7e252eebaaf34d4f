"""Per-sequence preprocessing: fixed length, centring, scale, bone and motion streams."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.graphs import SkeletonLayout, get_layout

STREAMS = ("joint", "bone", "motion")
MAX_FRAMES = 4096


def resample(sequence: np.ndarray, frames: int) -> np.ndarray:
    """Resamples `(T, V, C)` to `(frames, V, C)` by linear interpolation over the whole span."""
    low, high, weight = _interpolation(len(sequence), frames)
    return sequence[low] * (1.0 - weight) + sequence[high] * weight


def _interpolation(length: int, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames each resampled frame mixes, and the weight of the later one."""
    if length == 1:
        zeros = np.zeros(frames, int)
        return zeros, zeros, np.zeros((frames, 1, 1))
    position = np.linspace(0.0, length - 1, frames)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, length - 1)
    return low, high, (position - low)[:, None, None]


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
    scale = mean_bone_length(sequence, layout)
    return sequence / scale if scale > 0 else sequence


def mean_bone_length(sequence: np.ndarray, layout: SkeletonLayout) -> float:
    """The mean length of the bones whose two joints are tracked (0 without any)."""
    i, j = np.array(layout.edges).T
    lengths = np.linalg.norm(sequence[:, i] - sequence[:, j], axis=-1)
    both = _tracked(sequence)[:, i, 0] & _tracked(sequence)[:, j, 0]
    return float(lengths[both].mean()) if both.any() else 0.0


# Frames held in float64 at a time while a long sequence's scale is measured.
CHUNK_FRAMES = 4096


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
        if not 1 <= self.frames <= MAX_FRAMES:
            raise ValueError(f"frames must be in [1, {MAX_FRAMES}], got {self.frames}: every "
                             "sequence is resampled to it, and a model's input holds them all.")
        unknown = [s for s in self.streams if s not in STREAMS]
        if unknown or not self.streams:
            raise ValueError(f"Unknown or no streams {list(self.streams)}; choose from {STREAMS}.")
        object.__setattr__(self, "streams", tuple(self.streams))

    def channels(self, raw_channels: int) -> int:
        return raw_channels * len(self.streams)

    def transform(self, sequence: np.ndarray, layout) -> np.ndarray:
        """Returns the `(frames, V, C * len(streams))` float32 input of a `(T, V, C)` sequence.

        Centring and scaling apply to the whole sequence before resampling; only the frames
        the resampling mixes are transformed, so that memory does not grow with its length.
        """
        layout = get_layout(layout)
        sequence = np.asarray(sequence)
        low, high, weight = _interpolation(len(sequence), self.frames)
        rows = self._centred(sequence, np.concatenate([low, high]), layout)
        if self.scale:
            scale = self._scale(sequence, layout)
            rows = rows / scale if scale > 0 else rows
        x = rows[:self.frames] * (1.0 - weight) + rows[self.frames:] * weight
        parts = {"joint": lambda: x, "bone": lambda: bones(x, layout), "motion": lambda: motion(x)}
        return np.concatenate([parts[name]() for name in self.streams], axis=-1).astype(np.float32)

    def _centred(self, sequence: np.ndarray, frames, layout: SkeletonLayout) -> np.ndarray:
        """The given frames in float64, centred on the first frame's centre joint if asked."""
        rows = np.asarray(sequence[frames], dtype=np.float64)
        if not self.centre:
            return rows
        origin = np.asarray(sequence[0, layout.centre], dtype=np.float64)
        return np.where(_tracked(rows), rows - origin, 0.0)

    def _scale(self, sequence: np.ndarray, layout: SkeletonLayout) -> float:
        """The centred sequence's mean tracked bone length, `CHUNK_FRAMES` frames at a time."""
        if len(sequence) <= CHUNK_FRAMES:
            return mean_bone_length(self._centred(sequence, slice(None), layout), layout)
        i, j = np.array(layout.edges).T
        total, count = 0.0, 0
        for start in range(0, len(sequence), CHUNK_FRAMES):
            chunk = self._centred(sequence, slice(start, start + CHUNK_FRAMES), layout)
            both = _tracked(chunk)[:, i, 0] & _tracked(chunk)[:, j, 0]
            total += float(np.linalg.norm(chunk[:, i] - chunk[:, j], axis=-1)[both].sum())
            count += int(both.sum())
        return total / count if count else 0.0

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
