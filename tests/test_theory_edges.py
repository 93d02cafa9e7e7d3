"""`vemu theory` at the edges of what it covers: models it refused or mispredicted.

Each case is a spec theory covers, checked against the closed form and a simulation with a
fixed seed, or a formula checked against an independent computation. Each simulated
tolerance is about five standard deviations or more of the relative error, measured over 6-8
seeds at the run length used (the sd is stated beside it), so a correct engine fails with
probability far below 1e-4 whatever the seed. Builders as in test_theory_oracle.py: off-host
1 GHz cpu resources, so `cycles` are nanoseconds; an 8 Gb/s link sends a byte per ns.
"""

from __future__ import annotations

import math

import pytest
from test_theory_oracle import EXP, _cpu, _doc

from emulator import theory
from emulator.model import load_experiment
from emulator.theory import hypoexp_quantile

# ----------------------------------------------------------------------------- hypoexponential percentiles


def _erlang2_plus_exp_survival(a: float, b: float, t: float) -> float:
    """P(E + X > t) for E ~ Erlang(2, a), X ~ Exp(b), b > a: the density's Laplace transform
    a²b/((s + a)²(s + b)) in partial fractions, integrated from t, with k = b - a:
    e^{-at} (b/k)(1 + at - a/k) + (a/k)² e^{-bt}. For b >> a nothing cancels."""
    assert b > a
    k = b - a
    return math.exp(-a * t) * (b / k) * (1 + a * t - a / k) + (a / k) ** 2 * math.exp(-b * t)


def _uniformized(rates: list[float], t: float) -> float:
    """P(sum of independent Exp(r_i) > t) by uniformization, in plain Python (slow when
    max(r)·t is large; used here only where it is small)."""
    lam = max(rates)
    pi = [1.0] + [0.0] * (len(rates) - 1)
    a = lam * t
    acc, weight, n = 0.0, math.exp(-a), 0
    while n < a + 12 * math.sqrt(a) + 40:
        acc += weight * sum(pi)
        pi = [pi[i] * (1 - rates[i] / lam) + (pi[i - 1] * rates[i - 1] / lam if i else 0.0) for i in range(len(pi))]
        n += 1
        weight *= a / n
    return acc


def test_hypoexp_survival_against_independent_computations() -> None:
    # quantiles of sums with equal, nearly equal and far-apart rates: the survival at each,
    # computed independently, must be 1 - p. Uniformization where max(r)·t is small
    # (the way theory used to compute it); the closed form of Erlang(2) + Exp where it is
    # not (rates 1e6 apart: uniformization took seconds and was 1.3e-9 off in the quantile).
    for rates in ([0.5, 0.5, 1.5], [1.0, 1.0, 1.0, 2.0], [0.3, 0.3, 1 / 3], [1.0, 1 + 1e-7, 2.0, 2.0]):
        for p in (0.1, 0.5, 0.99, 0.999):
            t = hypoexp_quantile(rates, p)
            assert _uniformized(rates, t) == pytest.approx(1 - p, rel=1e-9), (rates, p)
    for a, b in ((50.0, 1e6 - 50), (1.0, 3.0), (1e-4, 1.0)):
        for p in (0.5, 0.99, 0.999):
            t = hypoexp_quantile([a, a, b], p)
            assert _erlang2_plus_exp_survival(a, b, t) == pytest.approx(1 - p, rel=1e-10), (a, b, p)


def test_tandem_of_far_apart_stations_has_exact_percentiles() -> None:
    # cpu exp 1 µs -> two server devices of exp 10 ms, Poisson 50/s: sojourn Exp(10⁶ - 50) +
    # Erlang(2, 50) per s. Theory took 3.7 s for its percentiles (uniformization summed
    # ~10⁵ terms per step of the bisection; with a 10 ns cpu stage, 396 s).
    paths = {"p": [{"on": "c", "cycles": EXP}, {"on": "d1"}, {"on": "d2"}]}
    dev = {"kind": "server", "servers": 1, "service_us": {"dist": "exp", "mean": 10_000}}
    doc = _doc({"c": _cpu(), "d1": dev, "d2": dict(dev)}, paths,
               [{"name": "f", "arrival": "poisson", "rate_per_s": 50, "steps": [{"path": "p"}]}], duration_s=0.001)
    pred = theory.predict(load_experiment(doc))
    assert pred is not None and pred.flows[0].p99_us is not None and pred.flows[0].p999_us is not None
    a, b = 50e-6, 1 - 50e-6  # per µs
    for p, t in ((0.99, pred.flows[0].p99_us), (0.999, pred.flows[0].p999_us)):
        assert _erlang2_plus_exp_survival(a, b, t) == pytest.approx(1 - p, rel=1e-10)
