"""Priors: closed-form thresholds, custom priors and the rates they realize on samples."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from keras_gcnprune.pruning import GAUSSIAN, LAPLACE, UNIFORM, Prior, get_prior
from keras_gcnprune.pruning.multirate import band_stop_mask

RATES = [0.1, 0.5, 0.9, 0.95, 0.98, 0.99, 0.995]


@pytest.mark.parametrize("rate", RATES)
def test_thresholds_follow_the_closed_forms_in_units_of_the_standard_deviation(rate):
    assert GAUSSIAN.threshold(rate) == pytest.approx(NormalDist().inv_cdf((1 + rate) / 2))
    # Laplace(0, b): a(r) = -b ln(1 - r), std b * sqrt(2); uniform on [-u, u]: a = r u, std u/√3
    assert LAPLACE.threshold(rate) == pytest.approx(-math.log(1 - rate) / math.sqrt(2))
    assert UNIFORM.threshold(rate) == pytest.approx(rate * math.sqrt(3))


@pytest.mark.parametrize(("prior", "sample"), [
    (GAUSSIAN, lambda rng, n: rng.standard_normal(n)),
    (LAPLACE, lambda rng, n: rng.laplace(0.0, 3.0, n)),
    (UNIFORM, lambda rng, n: rng.uniform(-0.2, 0.2, n)),
])
@pytest.mark.parametrize("rate", [0.5, 0.9, 0.99])
def test_band_stop_at_the_threshold_removes_the_rate_of_weights_drawn_from_the_prior(
        prior, sample, rate):
    weights = sample(np.random.default_rng(0), 400_000).astype(np.float32)
    removed = 1.0 - band_stop_mask(weights, prior.threshold(rate)).mean()
    assert removed == pytest.approx(rate, abs=0.003)


def _logistic(scale):
    return Prior("logistic", lambda x: 1 / (1 + math.exp(-x / scale)),
                 lambda p: scale * math.log(p / (1 - p)))


def test_a_custom_prior_gets_its_standard_deviation_and_scale_does_not_matter():
    logistic = _logistic(1.0)
    assert logistic.std == pytest.approx(math.pi / math.sqrt(3), rel=1e-3)
    assert _logistic(5.0).thresholds(RATES) == pytest.approx(logistic.thresholds(RATES), rel=1e-4)
    assert get_prior(logistic) is logistic


def test_bad_priors_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="symmetric"):
        Prior("shifted", lambda x: NormalDist(1.0).cdf(x), NormalDist(1.0).inv_cdf)
    with pytest.raises(ValueError, match="variance"):
        Prior("cauchy", lambda x: 0.5 + math.atan(x) / math.pi,
              lambda p: math.tan(math.pi * (p - 0.5)))
    with pytest.raises(ValueError, match="gaussian"):
        get_prior("student")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        GAUSSIAN.threshold(1.0)
