"""The engine's samplers against their distributions (Kolmogorov-Smirnov).

Draws come from emulator._core.dist_sample, which uses exactly the engine's code. Seeds
are fixed, so each test is deterministic; a threshold of p > 1e-3 would reject a correct
sampler with probability 1e-3 per seed had the seeds been drawn at random, and the test
would catch a sampler whose distribution is off by more than ~0.2% of the CDF at 500k
draws (the KS statistic's critical value ~1.95/sqrt(n)).
"""

import math

import numpy as np
import pytest

from emulator._core import NativeError, dist_sample

N = 500_000


def ks_p(x, cdf):
    """One-sample KS p-value by the asymptotic Kolmogorov distribution."""
    x = np.sort(x)
    n = len(x)
    f = cdf(x)
    d = max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(0, n) / n))
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    return max(0.0, min(1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * t * t) for k in range(1, 101))))


def _erf(z):
    return np.vectorize(math.erf)(z)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exponential(seed):
    x = dist_sample(("exp", 2.5, 0.0), N, seed=seed)
    assert ks_p(x, lambda v: 1 - np.exp(-v / 2.5)) > 1e-3


@pytest.mark.parametrize("cv", [0.25, 1.0, 2.0])
def test_lognormal(cv):
    mean = 3.0
    s2 = math.log1p(cv * cv)
    mu, s = math.log(mean) - s2 / 2, math.sqrt(s2)
    x = dist_sample(("lognormal", mean, cv), N, seed=7)
    assert ks_p(x, lambda v: 0.5 * (1 + _erf((np.log(v) - mu) / (s * math.sqrt(2))))) > 1e-3


def test_uniform():
    mean, cv = 10.0, 0.4
    half = mean * cv * math.sqrt(3)
    x = dist_sample(("uniform", mean, cv), N, seed=11)
    assert x.min() >= mean - half and x.max() <= mean + half
    assert ks_p(x, lambda v: (v - (mean - half)) / (2 * half)) > 1e-3


def test_fixed_is_fixed():
    assert np.all(dist_sample(("fixed", 4.0, 0.0), 1000) == 4.0)


def test_the_ks_check_can_fail():
    x = dist_sample(("exp", 2.5, 0.0), N, seed=1)
    assert ks_p(x * 1.01, lambda v: 1 - np.exp(-v / 2.5)) < 1e-3


def test_exponential_tail_is_drawn():
    # the ziggurat's base layer hands over to an exact tail beyond 7.7 means
    x = dist_sample(("exp", 1.0, 0.0), 4_000_000, seed=5)
    tail = np.count_nonzero(x > 7.697117470131487)
    expected = 4_000_000 * math.exp(-7.697117470131487)  # ~1818; sd ~ sqrt(expected)
    assert abs(tail - expected) < 5 * math.sqrt(expected)
    # and beyond it the draws are exponential again (memoryless): their excess over the
    # cut has mean 1 and sd 1, so its mean over ~1818 draws is within 5 standard errors of 1
    # (a tail drawn at twice the rate passed the count above)
    excess = x[x > 7.697117470131487] - 7.697117470131487
    assert abs(excess.mean() - 1.0) < 5 / math.sqrt(len(excess))


def test_same_seed_same_bits_other_seed_other_bits():
    a, b, c = (dist_sample(("lognormal", 1.0, 0.5), 1000, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_distribution_is_refused():
    with pytest.raises(NativeError):
        dist_sample(("uniform", 1.0, 0.9), 10)
    with pytest.raises(NativeError):
        dist_sample(("exp", float("nan"), 0.0), 10)
