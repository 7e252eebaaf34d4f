"""The binary shadow of a masked network, in which every prunable layer states its reachability
rules (`MaskedLayer.shadow_forward`, `shadow_backward`, `shadow_used`).

The shadow replaces every kernel by its mask, every adjacency by its support, biases and
normalisation shifts by zero and activations by the identity. Shadows are arrays over one
sample's whole tensor (frames x joints x channels, no batch axis). The same rules run in two
algebras: `EXACT` (numpy, a hard step after every layer), which mask selection and the reports
use, and `SOFT` (backend tensors, the smooth step `1 - exp(-x)`, positive exactly where the hard
step is 1), which topologically consistent pruning's supervision runs in the graph of every
training step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
from keras import ops


@dataclass(frozen=True)
class Algebra:
    """How shadows are computed: an array module, the step applied after every layer, the
    support of a real-valued array, and the conversion of variables and tensors to arrays."""

    xp: ModuleType
    step: Callable
    support: Callable
    value: Callable


def _ops_support(x):
    return ops.cast(ops.not_equal(x, 0.0), "float32")


EXACT = Algebra(
    np,
    step=lambda x: (np.asarray(x) > 0).astype(np.float32),
    support=lambda x: (np.asarray(x) != 0).astype(np.float32),
    value=lambda x: np.asarray(ops.convert_to_numpy(x), dtype=np.float32),
)
SOFT = Algebra(
    # A smooth OR of the incoming counts: 0 when nothing arrives, close to 1 from one path on,
    # and positive exactly where the count is (expm1 keeps small counts from rounding to 0).
    ops, step=lambda x: -ops.expm1(-x), support=_ops_support, value=ops.convert_to_tensor,
)


@dataclass(frozen=True)
class Shadow:
    """An algebra and the candidate masks (by mask path; other masks come from the model)."""

    algebra: Algebra
    masks: dict = field(default_factory=dict)
    _memo: dict = field(default_factory=dict)

    @property
    def xp(self) -> ModuleType:
        return self.algebra.xp

    @property
    def exact(self) -> bool:
        """Whether the shadow is computed in numpy (`EXACT`) rather than in backend tensors."""
        return self.xp is np

    def once(self, key: str, compute: Callable):
        """`compute()`, evaluated once per propagation (the rules ask for supports thrice)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def array(self, tensor):
        """A backend result as this algebra's array (numpy in `EXACT`)."""
        return tensor.numpy() if self.exact else tensor

    def mask(self, weight):
        """The candidate mask of a `MaskedWeight`, else its current mask."""
        if weight.mask.path in self.masks:
            return self.masks[weight.mask.path]
        return self.algebra.value(weight.mask)


# Rules that run a convolution of the shadow run it as a 2-D convolution of a batch of one; a
# sample with one spatial axis gets a height of 1.
def batch_of_one(sample, rank: int):
    """One sample with `rank` (1 or 2) spatial axes as a 2-D convolution's batch of one."""
    return sample[None] if rank == 2 else sample[None, None]


def batch_shape(sample_shape: tuple, rank: int) -> tuple:
    """The shape `batch_of_one` gives a sample of `sample_shape`."""
    return (1, *sample_shape) if rank == 2 else (1, 1, *sample_shape)


def sample_of(batch, rank: int, shadow: Shadow):
    """The sample of a batch of one made by `batch_of_one`, as the shadow's array."""
    return shadow.array(batch[0] if rank == 2 else batch[0, 0])


def conv2d_strides(strides: tuple[int, ...]) -> list[int]:
    """A 2-D convolution's strides for `rank` (1 or 2) spatial strides."""
    return [1, *strides, 1] if len(strides) == 2 else [1, 1, *strides, 1]
