"""Pruning schedules: `schedule(step) -> (should_prune, sparsity)`.

The same contract as the Model Optimization Toolkit's schedules, with the same arithmetic, so a
toolkit schedule object can be passed anywhere these are accepted (by duck typing: nothing here
imports the toolkit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Schedule = Callable[[int], tuple]


def _in_pruning_turn(step: int, begin_step: int, end_step: int, frequency: int) -> bool:
    in_range = step >= begin_step and (end_step < 0 or step <= end_step)
    return in_range and (step - begin_step) % frequency == 0


def _check(begin_step: int, end_step: int, frequency: int, *sparsities: float) -> None:
    if begin_step < 0 or frequency < 1:
        raise ValueError(f"begin_step must be >= 0 and frequency >= 1, got {begin_step} and "
                         f"{frequency}.")
    if 0 <= end_step < begin_step:
        raise ValueError(f"end_step {end_step} is before begin_step {begin_step}; use -1 for "
                         "no end.")
    for sparsity in sparsities:
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}.")


@dataclass(frozen=True)
class ConstantSparsity:
    """Prunes to `target_sparsity` every `frequency` steps from `begin_step` to `end_step`.

    Args:
        target_sparsity: Fraction of weights to remove, in [0, 1).
        begin_step: First step that prunes.
        end_step: Last step that may prune (-1: no end).
        frequency: Steps between mask updates.

    Example:
        >>> ConstantSparsity(0.9, begin_step=10, frequency=5)(15)
        (True, 0.9)
    """

    target_sparsity: float
    begin_step: int = 0
    end_step: int = -1
    frequency: int = 100

    def __post_init__(self) -> None:
        _check(self.begin_step, self.end_step, self.frequency, self.target_sparsity)

    def __call__(self, step: int) -> tuple[bool, float]:
        step = int(step)
        turn = _in_pruning_turn(step, self.begin_step, self.end_step, self.frequency)
        return turn, self.target_sparsity


@dataclass(frozen=True)
class PolynomialDecay:
    """Raises sparsity from `initial_sparsity` to `final_sparsity` along a polynomial.

    `sparsity(step) = (initial - final) * (1 - p) ** power + final`, with
    `p = clip((step - begin_step) / (end_step - begin_step), 0, 1)`.

    Args:
        initial_sparsity: Sparsity at `begin_step`.
        final_sparsity: Sparsity from `end_step` on.
        begin_step: First step that prunes.
        end_step: Step at which `final_sparsity` is reached (and the last pruning step).
        power: Exponent of the decay (3: fast early, slow late).
        frequency: Steps between mask updates.

    Example:
        >>> PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, power=1)(50)
        (False, 0.4)
    """

    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    power: float = 3.0
    frequency: int = 100

    def __post_init__(self) -> None:
        _check(self.begin_step, self.end_step, self.frequency, self.initial_sparsity,
               self.final_sparsity)
        if self.end_step <= self.begin_step:
            raise ValueError(f"end_step {self.end_step} must be after begin_step "
                             f"{self.begin_step} for a polynomial schedule.")

    def __call__(self, step: int) -> tuple[bool, float]:
        step = int(step)
        progress = min(1.0, max(0.0, (step - self.begin_step) / (self.end_step - self.begin_step)))
        sparsity = (self.initial_sparsity - self.final_sparsity) * (1.0 - progress) ** self.power
        turn = _in_pruning_turn(step, self.begin_step, self.end_step, self.frequency)
        return turn, float(sparsity + self.final_sparsity)


def evaluate_schedule(schedule: Schedule, step: int) -> tuple[bool, float]:
    """Calls any schedule (ours or the toolkit's) and returns plain Python values."""
    should_prune, sparsity = schedule(step)
    return bool(_plain(should_prune)), float(_plain(sparsity))


def _plain(value):
    return value.numpy() if hasattr(value, "numpy") else value
