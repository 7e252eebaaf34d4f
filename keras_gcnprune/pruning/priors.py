"""Symmetric priors of the latent weights and the pruning thresholds they give in closed form.

Multi-rate magnitude pruning aligns the distribution of every kernel's latent weights with a prior
`Q`, so that the fraction of weights inside `[-a, a]` is known in advance: rate `r` is reached at
`a(r) = F^-1((1 + r) / 2)` for the prior's CDF `F`. The package standardizes every kernel by its
root mean square before comparing it with the prior, so a `Prior` describes a shape and its
thresholds are in units of the kernel's RMS (`Prior.threshold`); a layer's scale then does not
matter and training can change it freely (weight decay does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

Function = Callable[[float], float]


@dataclass(frozen=True)
class Prior:
    """A symmetric, zero-centred distribution given by its CDF and inverse CDF.

    Args:
        name: Name used in configs and reports.
        cdf: `F(x)`, the cumulative distribution function.
        quantile: `F^-1(p)` for `p` in (0, 1), the inverse CDF.
        std: Its standard deviation (default: computed from `quantile` by numerical
            integration).

    The prior's scale is irrelevant (thresholds are divided by its standard deviation), but it
    must have a finite variance and be symmetric about 0; both are checked when it is made.

    Example:
        >>> import math
        >>> logistic = Prior("logistic", lambda x: 1 / (1 + math.exp(-x)),
        ...                  lambda p: math.log(p / (1 - p)))
        >>> round(logistic.threshold(0.9), 3)
        1.623
    """

    name: str
    cdf: Function
    quantile: Function
    std: float | None = None

    def __post_init__(self) -> None:
        _check_symmetric(self)
        if self.std is None:
            object.__setattr__(self, "std", _std_from_quantile(self))
        elif not self.std > 0:
            raise ValueError(f"std of prior {self.name!r} must be positive, got {self.std}.")

    def threshold(self, rate: float) -> float:
        """The half-width of the band-stop that removes `rate` of the weights, in units of the
        weights' root mean square: `F^-1((1 + rate) / 2) / std`."""
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}.")
        if rate == 0.0:
            return 0.0
        return float(self.quantile((1.0 + rate) / 2.0)) / self.std

    def thresholds(self, rates) -> np.ndarray:
        """`threshold` of every rate, as a float32 array."""
        return np.array([self.threshold(float(r)) for r in rates], dtype=np.float32)


def _second_moment(prior: Prior, points: int) -> float:
    # E[X^2] = integral over p in (0, 1) of F^-1(p)^2: midpoint rule on the upper half (symmetry).
    p = 0.5 + (np.arange(points) + 0.5) / (2 * points)
    return float(np.mean(np.array([prior.quantile(float(x)) for x in p]) ** 2))


def _std_from_quantile(prior: Prior) -> float:
    coarse, fine = _second_moment(prior, 20_000), _second_moment(prior, 200_000)
    # A finer grid reaches further into the tails: an estimate that keeps growing diverges.
    if not (math.isfinite(fine) and fine > 0 and abs(fine - coarse) <= 1e-2 * fine):
        raise ValueError(
            f"Prior {prior.name!r} has no finite, positive variance (estimates {coarse:.4g} "
            f"and {fine:.4g} on finer grids); weights are standardized by their RMS, so the "
            "prior needs one."
        )
    return math.sqrt(fine)


def _check_symmetric(prior: Prior) -> None:
    for p in (0.6, 0.75, 0.9, 0.99):
        x = float(prior.quantile(p))
        if not (abs(prior.cdf(x) - p) < 1e-6 and abs(prior.cdf(-x) - (1 - p)) < 1e-6):
            raise ValueError(
                f"Prior {prior.name!r} is not a symmetric distribution with matching CDF and "
                f"inverse CDF: quantile({p}) = {x}, cdf({x}) = {prior.cdf(x)}, "
                f"cdf({-x}) = {prior.cdf(-x)}; pass F and F^-1 of a distribution symmetric "
                "about 0."
            )


def _laplace_cdf(x: float) -> float:
    return 0.5 * math.exp(x) if x < 0 else 1.0 - 0.5 * math.exp(-x)


def _laplace_quantile(p: float) -> float:
    return math.log(2 * p) if p < 0.5 else -math.log(2 - 2 * p)


_NORMAL = NormalDist()
GAUSSIAN = Prior("gaussian", _NORMAL.cdf, _NORMAL.inv_cdf, std=1.0)
LAPLACE = Prior("laplace", _laplace_cdf, _laplace_quantile, std=math.sqrt(2.0))
UNIFORM = Prior("uniform", lambda x: min(1.0, max(0.0, (x + 1.0) / 2.0)), lambda p: 2 * p - 1,
                std=1.0 / math.sqrt(3.0))
PRIORS = {prior.name: prior for prior in (GAUSSIAN, LAPLACE, UNIFORM)}


def get_prior(prior: str | Prior) -> Prior:
    """Returns a built-in prior by name (`"gaussian"`, `"laplace"`, `"uniform"`) or `prior`."""
    if isinstance(prior, Prior):
        return prior
    if prior not in PRIORS:
        raise ValueError(
            f"Unknown prior {prior!r}; choose one of {tuple(PRIORS)} or pass a "
            "keras_gcnprune.pruning.Prior(name, cdf, quantile)."
        )
    return PRIORS[prior]
