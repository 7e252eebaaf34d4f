"""Random windows of raw training clips: what a streaming app classifies.

An app classifies the last frames of a stream, which start mid-gesture as often as not and
often hold the end of one gesture and the start of the next, and preprocesses each window on
its own (centred on its first frame). Training windows cut the same way, before preprocessing,
teach a model that case; a temporal crop after preprocessing (`Augmentation.crop`) keeps the
whole clip's centring and does not.
"""

from __future__ import annotations

import math

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset

# The shortest window, as a share of its clip.
SHORTEST_WINDOW = 0.5


def with_random_windows(dataset: SkeletonDataset, copies: int, seed: int = 0
                        ) -> SkeletonDataset:
    """The dataset with `copies` random windows of each clip added after it, each of a length
    from `SHORTEST_WINDOW` of the clip to all of it: half of them inside the clip, at a random
    start; the other half its last frames followed by the first frames of another clip of the
    same part, at least half of the window from this clip, as in a stream of clips played
    back to back. A window keeps its clip's label and metadata.

    Args:
        dataset: Training clips (never the validation or test part).
        copies: Windows per clip (0: the dataset as it is).
        seed: Seed of the lengths and starts.

    Returns:
        A `SkeletonDataset` of `len(dataset) * (copies + 1)` sequences.

    Example:
        >>> from keras_gcnprune.data import make_synthetic_gestures
        >>> len(with_random_windows(make_synthetic_gestures(subjects=4, repetitions=1), 2))
        168
    """
    if copies < 0:
        raise ValueError(f"copies must be at least 0, got {copies}.")
    if not copies:
        return dataset
    rng = np.random.default_rng(seed)
    order = np.repeat(np.arange(len(dataset)), copies + 1)
    sequences = []
    for index, first in zip(order, np.r_[True, order[1:] != order[:-1]]):
        sequence = dataset.sequences[index]
        if first:
            sequences.append(sequence)
            continue
        length = int(rng.integers(math.ceil(SHORTEST_WINDOW * len(sequence)), len(sequence) + 1))
        if rng.random() < 0.5:
            start = int(rng.integers(0, len(sequence) - length + 1))
            sequences.append(sequence[start:start + length])
            continue
        following = dataset.sequences[int(rng.integers(0, len(dataset)))]
        tail = int(rng.integers(math.ceil(length / 2), length + 1))
        sequences.append(np.concatenate([sequence[len(sequence) - tail:],
                                         following[:length - tail]]))
    return SkeletonDataset(sequences, dataset.labels[order], dataset.class_names, dataset.layout,
                           dataset.name, {k: v[order] for k, v in dataset.meta.items()},
                           list(dataset.skipped))
