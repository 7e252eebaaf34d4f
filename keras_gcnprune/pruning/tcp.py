"""Selection of the highest-magnitude topologically consistent subnetwork of a target size."""

from __future__ import annotations

import keras
import numpy as np

from keras_gcnprune.pruning.channels import channel_block
from keras_gcnprune.pruning.masks import kept_count, prunable_weights, rms_normalised
from keras_gcnprune.pruning.topology import Masks, reachability


def magnitude_scores(model: keras.Model, include_adjacency: bool = True
                     ) -> dict[str, np.ndarray]:
    """Latent-weight magnitudes divided by each kernel's root mean square, by mask path
    (`include_adjacency`: see `prunable_weights`)."""
    return {
        weight.mask.path: rms_normalised(np.abs(weight.kernel.numpy()))
        for weight in prunable_weights(model, include_adjacency)
    }


def check_block_density(block_density: float | None) -> None:
    """Refuses a block density outside (0, 1]."""
    if block_density is not None and not 0.0 < block_density <= 1.0:
        raise ValueError(f"block_density must be in (0, 1] (or None for unstructured TCP), "
                         f"got {block_density}.")


def _consistent(model, candidate: Masks) -> tuple[Masks, int]:
    used = reachability(model, candidate).used
    masks = {path: mask * used[path] for path, mask in candidate.items()}
    return masks, int(sum(m.sum() for m in masks.values()))


def _at_threshold(scores: dict[str, np.ndarray], threshold: float) -> Masks:
    return {path: (s >= threshold).astype(np.float32) for path, s in scores.items()}


def _trim(model, masks: Masks, kept: int, scores: dict[str, np.ndarray], target: int
          ) -> Masks:
    """Removes the lowest-scoring weights of a consistent subnetwork down to `target`.

    Weights go in chunks, lowest score first; a chunk that would leave fewer than `target`
    consistent weights is halved, and a single weight whose removal would (it is a bridge
    between layers) is kept.
    """
    order = sorted(
        ((float(scores[path][index]), path, index)
         for path, mask in masks.items() for index in zip(*np.nonzero(mask))),
    )
    position, chunk = 0, max(1, (kept - target) // 2)
    while kept > target and position < len(order):
        chunk = max(1, min(chunk, kept - target, len(order) - position))
        trial = {path: mask.copy() for path, mask in masks.items()}
        for _, path, index in order[position:position + chunk]:
            trial[path][index] = 0.0
        trial, trial_kept = _consistent(model, trial)
        if trial_kept >= target:
            masks, kept = trial, trial_kept
            position += chunk
        elif chunk > 1:
            chunk //= 2
        else:
            position += 1
    return masks


def _bisect(count_at, low: int, high: int, target: int):
    """Smallest index in [low, high] whose count reaches `target` (counts increase with it)."""
    found = high
    while low <= high:
        middle = (low + high) // 2
        if count_at(middle) >= target:
            found, high = middle, middle - 1
        else:
            low = middle + 1
    return found


def topologically_consistent_masks(
    model: keras.Model,
    rate: float,
    scores: dict[str, np.ndarray] | None = None,
    block_density: float | None = None,
    include_adjacency: bool = True,
) -> Masks:
    """Returns masks of the best-scoring consistent subnetwork that keeps `1 - rate`.

    Lowering a score threshold keeps a superset of weights and reachability only grows, so
    the number of consistent weights is monotone in the threshold. A bisection finds the
    highest threshold whose consistent subnetwork reaches the target size. At high rates that
    subnetwork can overshoot (a thin layer gains its first weights only when others gain
    many); its lowest-scoring weights are then removed, except those whose removal would
    disconnect it (see `_trim`).

    Unstructured, the kept weights spread over almost every channel, and compaction removes
    few channels below 99%. With `block_density`, the subnetwork is chosen inside a block of
    whole channels (the strongest of every group that compaction can narrow, see
    `keras_gcnprune.pruning.channels.channel_block`) that it fills to that density, so that
    the other channels die and `keras_gcnprune.pruning.compact` removes them.

    Args:
        model: A functional model of supported layers.
        rate: Fraction of prunable weights to remove, in [0, 1).
        scores: Score of every prunable entry by mask path (default: `magnitude_scores`).
        block_density: None (default, the paper's unstructured selection), or the fraction
            in (0, 1] of a channel block's weights that the kept weights fill. Learned
            adjacencies compete outside the block: those of removed channels lie on no path.
        include_adjacency: Select among the learned adjacencies' entries too (the default
            `scores`); False: channel kernels only, the adjacencies keep their masks.

    Returns:
        0/1 masks by mask path; every kept entry lies on an input-to-output path.

    Example:
        >>> from keras_gcnprune import models
        >>> from keras_gcnprune.pruning import compact
        >>> from keras_gcnprune.pruning import assign_masks
        >>> model = models.build("attention_gcn", "sbu_pair", num_classes=8, frames=32)
        >>> assign_masks(model, topologically_consistent_masks(model, 0.95, block_density=0.5))
        >>> compact(model).count_params() < model.count_params() / 4
        True
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")
    check_block_density(block_density)
    scores = scores or magnitude_scores(model, include_adjacency)
    total = sum(s.size for s in scores.values())
    target = kept_count(total, rate)
    if block_density is not None:
        block = channel_block(model, scores, target, block_density)
        scores = {path: np.where(block[path] > 0, s, -1.0) for path, s in scores.items()}
    ordered = np.sort(np.concatenate([s.ravel() for s in scores.values()]))[::-1]
    counts: dict[int, tuple[Masks, int]] = {}

    def by_threshold(index: int) -> int:
        if index not in counts:
            counts[index] = _consistent(model, _at_threshold(scores, ordered[index]))
        return counts[index][1]

    # fewer than `target` entries score above the target-th score; a block's entries reach it
    low = int(np.count_nonzero(ordered > ordered[max(target, 1) - 1]))
    high = ordered.size - 1 if block_density is None else \
        max(low, int(np.count_nonzero(ordered > -1.0)) - 1)
    index = _bisect(by_threshold, low, high, target)
    by_threshold(index)
    superset, kept = counts[index]
    return _trim(model, superset, kept, scores, target) if kept > target else superset
