"""The simulator against queueing theory beyond M/M/1, and `vemu theory`.

Every case is an inline experiment on off-host 1 GHz cpu resources (so `cycles` are
nanoseconds) or a `server` device; service means are 1 µs, so the arrival rate is ρ·10⁶/s.
Each case runs once with a fixed seed and compares the simulated mean sojourn with the
closed form of emulator.theory.

Tolerances. Each relative tolerance is twice the 95% batch-means half-width (20 batches,
`emulator.stats.long_run`) measured on pilot runs of the same length with seeds 1 and 2
(the larger of the two), so it is about four standard errors: a correct engine fails a case
with probability below 1e-4 whatever the seed. Pilot half-widths, in % of the theory value:

  M/G/1, ρ 0.5, 1 s:   fixed 0.32, lognormal cv 0.5 0.44, uniform cv 0.5 0.49
  M/G/1, ρ 0.9, 4 s:   fixed 1.46, lognormal cv 0.5 1.73, uniform cv 0.5 1.34
  lognormal cv 2 (E[S³] = 125 m³ against the exponential's 6 m³: the wait's variance,
                       E[W]² + λE[S³]/(3(1 - ρ)) (Takács), is 16x the exponential case's at
                       ρ 0.5 and 9x at ρ 0.9): ρ 0.5, 1 s: 4.5; ρ 0.9, 4 s: 5.0 — hence 4x
                       longer runs below, which halve them (2.3, 2.5)
  M/M/c, ρ 0.5, 1/√c s: 0.57, 0.36, 0.23 (c = 2, 4, 8); ρ 0.9, 4/√c s: 1.49, 1.08, 0.86
  Cobham, ρ 0.5, 1 s: at most 1.34 (2 classes), 1.72 (3 classes); ρ 0.9, 4 s: 3.28
                       (2 classes, the low one), 2.94 (3 classes, the low one)
  preemptive resume, ρ 0.5, 1 s: at most 1.26 (2 classes), 1.49 (3 classes); ρ 0.9, 4 s:
                       3.15 (2 classes), 2.71 (3 classes), the low one each time
  closed loops, 0.3 s: at most 0.66

The ρ 0.9 runs are long against the relaxation time of the queue, 1/(μ(1-√ρ)²) ≈ 0.38 ms
for M/M/1 at ρ 0.9 (Morse 1955): a 4 s run is ~10⁴ relaxation times, and the 10 ms warm-up
is ~26 of them, so the initial-state bias is far below the tolerances (30 replications of
M/M/1, M/D/1 and M/U/1 at ρ 0.9 averaged within 0.2% of theory).

Percentiles (M/M/c sojourn p99): pilot runs over 5 seeds spread by 0.7% (ρ 0.5) and 1.5%
(ρ 0.9) standard deviation, plus the histogram's ≤ 0.4% bucket error: tolerances 3% and 6%.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator._core import ModelError
from emulator.cli import main
from emulator.model import load_experiment
from emulator.simulation import Simulation
from conftest import to_toml
from emulator.theory import (
    cobham_waits,
    erlang_c,
    hypoexp_quantile,
    md1_sojourn,
    mg1_sojourn,
    mm1_sojourn,
    mm1_sojourn_quantile,
    mmc_sojourn,
    mmc_sojourn_quantile,
    closed_network,
    mva_closed,
    predict,
    preemptive_sojourns,
    setup_moments,
    bytes_moments,
    why_not,
)

# ----------------------------------------------------------------------------- builders


def _cpu(cores: int = 1, **kw: Any) -> dict[str, Any]:
    return {"kind": "cpu", "cores": cores, "ghz": 1.0, "on_host": False, **kw}


def _doc(resources: dict[str, Any], paths: dict[str, list[dict[str, Any]]], flows: list[dict[str, Any]], *,
         duration_s: float, warmup_s: float = 0.01, seed: int = 1) -> dict[str, Any]:
    return {
        "host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
        "architecture": {"name": "a", "resources": resources,
                         "paths": {k: {"stages": v} for k, v in paths.items()}},
        "workload": {"name": "w", "flows": flows},
        "experiment": {"duration_s": duration_s, "warmup_s": warmup_s, "seed": seed},
    }


def _station(arrival: dict[str, Any], cycles: Any, *, duration_s: float, cores: int = 1,
             warmup_s: float = 0.01) -> dict[str, Any]:
    return _doc({"s": _cpu(cores)}, {"p": [{"on": "s", "cycles": cycles}]},
                [dict(arrival, name="f", steps=[{"path": "p"}])], duration_s=duration_s, warmup_s=warmup_s)


def _poisson(rho: float, c: int = 1) -> dict[str, Any]:
    return {"arrival": "poisson", "rate_per_s": rho * c * 1e6}


def _server(c: int, rho: float, *, duration_s: float) -> dict[str, Any]:
    res = {"s": {"kind": "server", "servers": c, "service_us": {"dist": "exp", "mean": 1.0}}}
    return _doc(res, {"p": [{"on": "s"}]}, [dict(_poisson(rho, c), name="f", steps=[{"path": "p"}])],
                duration_s=duration_s)


def _run(doc: dict[str, Any], **kw: Any) -> tuple[Any, dict[str, Any]]:
    exp = load_experiment(doc, **kw)
    pred = predict(exp)
    assert pred is not None, why_not(exp)
    return pred, Simulation(exp).run().to_dict()


def _rel(sim: float, theory: float) -> float:
    return abs(sim - theory) / theory


EXP = {"dist": "exp", "mean": 1000}

# ----------------------------------------------------------------------------- formulas


def test_formulas_agree_with_each_other_and_known_values() -> None:
    # M/M/1 three ways: its own formula, P-K with E[S²] = 2m², and M/M/c with c = 1
    assert mm1_sojourn(0.5, 1.0) == pytest.approx(2.0)
    assert mg1_sojourn(0.5, 1.0, 2.0) == pytest.approx(2.0)
    assert mmc_sojourn(0.5, 1.0, 1) == pytest.approx(2.0)
    assert md1_sojourn(0.5, 1.0) == pytest.approx(1.5)
    # Erlang C tabulated values: C(2, 1) = 1/3, C(1, ρ) = ρ
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    # quantiles: M/M/c with c = 1 is M/M/1's exponential; a one-rate hypoexponential too
    assert mmc_sojourn_quantile(0.9, 1.0, 1, 0.99) == pytest.approx(mm1_sojourn_quantile(0.9, 1.0, 0.99), rel=1e-9)
    assert hypoexp_quantile([0.1], 0.99) == pytest.approx(mm1_sojourn_quantile(0.9, 1.0, 0.99), rel=1e-9)
    # Erlang-2 median: 1.67835 / rate (solves (1 + x) e^{-x} = 1/2)
    assert hypoexp_quantile([2.0, 2.0], 0.5) == pytest.approx(1.678347 / 2, rel=1e-5)
    # MVA: one client sees no queue; with no think time Q = N, R = N D
    assert mva_closed(1, 1.0, 5.0).response == pytest.approx(1.0)
    assert mva_closed(7, 1.0, 0.0).response == pytest.approx(7.0)
    assert mva_closed(7, 2.0, 0.0, servers=2).response == pytest.approx(7.0)
    assert mva_closed(40, 1.0, 3.0).throughput == pytest.approx(1.0, rel=1e-6)  # saturated
    # Cobham with one class is P-K; equal classes keep the FIFO total wait
    assert cobham_waits([0.5], [1.0], [2.0])[0] == pytest.approx(mg1_sojourn(0.5, 1.0, 2.0) - 1.0)
    w = cobham_waits([0.3, 0.3], [1.0, 1.0], [2.0, 2.0])
    assert (w[0] + w[1]) / 2 == pytest.approx(mg1_sojourn(0.6, 1.0, 2.0) - 1.0)  # conservation law


# ----------------------------------------------------------------------------- M/G/1

SERVICE = {
    "fixed": 1000,
    "lognormal-0.5": {"dist": "lognormal", "mean": 1000, "cv": 0.5},
    "lognormal-2": {"dist": "lognormal", "mean": 1000, "cv": 2.0},
    "uniform-0.5": {"dist": "uniform", "mean": 1000, "cv": 0.5},
}
# (service, ρ): (run length s, relative tolerance) — see the module docstring
MG1_CASES = {
    ("fixed", 0.5): (1.0, 0.01), ("fixed", 0.9): (4.0, 0.03),
    ("lognormal-0.5", 0.5): (1.0, 0.01), ("lognormal-0.5", 0.9): (4.0, 0.035),
    ("lognormal-2", 0.5): (4.0, 0.05), ("lognormal-2", 0.9): (16.0, 0.05),
    ("uniform-0.5", 0.5): (1.0, 0.01), ("uniform-0.5", 0.9): (4.0, 0.03),
}


@pytest.mark.parametrize("service,rho", list(MG1_CASES), ids=[f"{s}-rho{r}" for s, r in MG1_CASES])
def test_mg1_pollaczek_khinchine(service: str, rho: float) -> None:
    dur, tol = MG1_CASES[(service, rho)]
    pred, res = _run(_station(_poisson(rho), SERVICE[service], duration_s=dur))
    assert pred.model.startswith("M/D/1" if service == "fixed" else "M/G/1")
    f = res["flows"]["f"]
    assert _rel(f["latency_us"]["mean"], pred.flows[0].mean_us) < tol
    # utilisation is a time average over ~ρ·10⁶·dur services: well inside 1%
    assert res["resources"]["s"]["utilization"] == pytest.approx(rho, rel=0.01)


# ----------------------------------------------------------------------------- M/M/c

MMC_TOL = {0.5: (0.012, 0.03), 0.9: (0.03, 0.06)}  # (mean, p99): module docstring


@pytest.mark.parametrize("rho", [0.5, 0.9])
@pytest.mark.parametrize("c", [2, 4, 8])
def test_mmc_erlang_c(c: int, rho: float) -> None:
    dur = (1.0 if rho == 0.5 else 4.0) / math.sqrt(c)
    pred, res = _run(_server(c, rho, duration_s=dur))
    assert pred.model == f"M/M/{c}"
    lat = res["flows"]["f"]["latency_us"]
    tol_mean, tol_p99 = MMC_TOL[rho]
    assert _rel(lat["mean"], pred.flows[0].mean_us) < tol_mean
    assert pred.flows[0].p99_us is not None
    assert _rel(lat["p99"], pred.flows[0].p99_us) < tol_p99


def test_mmc_on_cpu_cores_matches_server_device() -> None:
    # the same M/M/4 as cores of a cpu resource: the two must agree with theory alike
    pred, res = _run(_station(_poisson(0.9, 4), EXP, cores=4, duration_s=2.0))
    assert _rel(res["flows"]["f"]["latency_us"]["mean"], pred.flows[0].mean_us) < 0.03


def test_link_with_exponential_bytes_is_mm1() -> None:
    # an 8 Gb/s link serialises a byte per ns: exponential bytes of mean 1000 make an M/M/1,
    # fixed bytes an M/D/1. ρ 0.7, 2 s: pilot half-widths 1.09% and 0.93%, tolerance 2.5%.
    doc = _doc({"nic": {"kind": "link", "gbps": 8}}, {"p": [{"on": "nic"}]},
               [{"name": "f", "arrival": "poisson", "rate_per_s": 7e5,
                 "steps": [{"path": "p", "bytes": {"dist": "exp", "mean": 1000}}]}], duration_s=2.0)
    pred, res = _run(doc)
    assert pred.model == "M/M/1" and pred.flows[0].mean_us == pytest.approx(mm1_sojourn(0.7, 1.0))
    assert _rel(res["flows"]["f"]["latency_us"]["mean"], pred.flows[0].mean_us) < 0.025
    doc["workload"]["flows"][0]["steps"][0]["bytes"] = 1000
    pred, _ = _run(dict(doc, experiment={"duration_s": 0.001, "warmup_s": 0.0}))
    assert pred.model.startswith("M/D/1") and pred.flows[0].mean_us == pytest.approx(md1_sojourn(0.7, 1.0))


CAP = 4294967295.0  # VEMU_MAX_BYTES: the engine holds a request's bytes in 32 bits


def test_bytes_moments_are_the_engine_rounded_and_capped_bytes() -> None:
    """The engine rounds a drawn size half up to a whole byte and caps it at 2^32 - 1; theory
    takes the moments of that, not of the distribution as written."""
    # exponential, mean 0.5: B = round(X) is geometric, P(B >= k) = q^(k - 1/2) with q = e^(-1/m),
    # so E[B] = q^(1/2) / (1 - q) and E[B^2] = q^(1/2) (1 + q) / (1 - q)^2 (summed by hand)
    for m in (0.5, 3.0):
        q = math.exp(-1 / m)
        e1, e2, close = bytes_moments(("exp", m, 0.0))
        assert e1 == pytest.approx(q**0.5 / (1 - q), rel=1e-12)
        assert e2 == pytest.approx(q**0.5 * (1 + q) / (1 - q) ** 2, rel=1e-12) and not close
    # exponential past the cap: E[min(X, C)] = m (1 - e^(-C/m)), E[min(X, C)^2] = 2m^2 (1 - e^(-C/m) (1 + C/m));
    # rounding moves them by ~1e-19 of themselves here
    m = 2e9
    e1, e2, close = bytes_moments(("exp", m, 0.0))
    assert e1 == pytest.approx(m * -math.expm1(-CAP / m), rel=1e-9) and not close
    assert e2 == pytest.approx(2 * m * m * (1 - math.exp(-CAP / m) * (1 + CAP / m)), rel=1e-9)
    # uniform on [0.228, 3.172] (mean 1.7, cv 0.5): B in 0..3, each P(k - 1/2 <= X < k + 1/2) read off the CDF
    lo, hi = 1.7 * (1 - 0.5 * math.sqrt(3)), 1.7 * (1 + 0.5 * math.sqrt(3))
    pk = [max(0.0, min(hi, k + 0.5) - max(lo, k - 0.5)) / (hi - lo) for k in range(5)]
    assert sum(pk) == pytest.approx(1.0)
    e1, e2, _ = bytes_moments(("uniform", 1.7, 0.5))
    assert e1 == pytest.approx(sum(k * p for k, p in enumerate(pk)), rel=1e-12)
    assert e2 == pytest.approx(sum(k * k * p for k, p in enumerate(pk)), rel=1e-12)
    # a lognormal tail past 4 GiB (mean 1 MB, cv 10): against the integrals of P(X >= y) and 2y P(X >= y)
    # on a log grid of 2e5 points (trapezoid error < 1e-7 of each), E[min(X, C)^2] is 81.9 m^2, not 101
    s2 = math.log1p(100.0)
    mu, sig = math.log(1e6) - s2 / 2, math.sqrt(s2)
    y = np.concatenate([np.linspace(0, 1, 1001)[:-1], np.logspace(0, math.log10(CAP), 200001)])
    surv = 0.5 * np.array([math.erfc((math.log(v) - mu) / (sig * math.sqrt(2))) if v > 0 else 2.0 for v in y])
    e1, e2, close = bytes_moments(("lognormal", 1e6, 10.0))
    assert e1 == pytest.approx(np.trapezoid(surv, y), rel=1e-6) and not close
    assert e2 == pytest.approx(np.trapezoid(2 * y * surv, y), rel=1e-6) and e2 / 1e12 == pytest.approx(81.89, abs=0.01)
    # fixed sizes: rounded and capped; a mean far from both keeps its own moments
    assert bytes_moments(("fixed", 0.4, 0.0)) == (0.0, 0.0, False)
    assert bytes_moments(("fixed", 5e9, 0.0))[0] == CAP
    assert bytes_moments(("fixed", 128.0, 0.0)) == (128.0, 16384.0, True)
    assert bytes_moments(("exp", 1500.0, 0.0))[2] and bytes_moments(("lognormal", 300.0, 3.0))[2]


def test_capped_exponential_bytes_are_mg1_not_mm1() -> None:
    # exponential bytes of mean 2e9 at a cycle per 2e6 bytes: as written an M/M/1 at ρ 0.7 (mean
    # 3.33 µs); as the engine caps them at 2^32 - 1, an M/G/1 at ρ 0.618 (mean 2.04 µs). 1 s,
    # 0.7M requests; over 8 seeds the mean sojourn's relative error had sd 0.53%, the
    # utilization's 0.18%: tolerances 3% and 1% (5.6 sd), against 39% and 13% off as written.
    mb = 2e9
    doc = _doc({"s": _cpu()}, {"p": [{"on": "s", "per_byte": 1000 / mb}]},
               [{"name": "f", "arrival": "poisson", "rate_per_s": 7e5,
                 "steps": [{"path": "p", "bytes": {"dist": "exp", "mean": mb}}]}], duration_s=1.0)
    pred, res = _run(doc)
    assert pred.model.startswith("M/G/1") and pred.flows[0].p99_us is None
    assert pred.stations[0].utilization == pytest.approx(0.7 * -math.expm1(-CAP / mb), rel=1e-9)
    assert _rel(res["resources"]["s"]["utilization"], pred.stations[0].utilization) < 0.01
    assert _rel(res["flows"]["f"]["latency_us"]["mean"], pred.flows[0].mean_us) < 0.03


# ----------------------------------------------------------------------------- Jackson tandem


def test_jackson_tandem_with_multiserver_and_delay() -> None:
    # M/M/1 (ρ .5) -> fixed 2 µs delay -> M/M/2 (ρ .8) -> M/M/1 (ρ .7); means add (Jackson).
    # Pilot half-widths at 2 s (seeds 1, 2): 0.66% and 1.09%; tolerance 3% (~5 standard errors).
    doc = _doc({"a": _cpu(), "b": _cpu(2), "c": _cpu()},
               {"p": [{"on": "a", "cycles": {"dist": "exp", "mean": 1000}},
                      {"delay_us": 2},
                      {"on": "b", "cycles": {"dist": "exp", "mean": 3200}},
                      {"on": "c", "cycles": {"dist": "exp", "mean": 1400}}]},
               [{"name": "f", "arrival": "poisson", "rate_per_s": 5e5, "steps": [{"path": "p"}]}], duration_s=2.0)
    pred, res = _run(doc)
    th = 2.0 + 2.0 + mmc_sojourn(0.5, 3.2, 2) + mm1_sojourn(0.5, 1.4)
    assert pred.flows[0].mean_us == pytest.approx(th)
    assert _rel(res["flows"]["f"]["latency_us"]["mean"], th) < 0.03


def test_mm1_tandem_percentiles() -> None:
    # two M/M/1 (ρ .5, .7) and a fixed 1 µs delay: sojourn = 1 + Exp(0.5) + Exp(1/1.4 - 0.5) µs
    # (Reich 1957). Pilot: mean half-widths 0.79% and 0.88%, tolerance 2%; p99 over 6 seeds
    # within -2.1% .. 0% (spread ~0.8%, plus the ≤ 0.4% bucket error), tolerance 4%.
    doc = _doc({"a": _cpu(), "b": _cpu()},
               {"p": [{"on": "a", "cycles": {"dist": "exp", "mean": 1000}, "delay_us": 1},
                      {"on": "b", "cycles": {"dist": "exp", "mean": 1400}}]},
               [{"name": "f", "arrival": "poisson", "rate_per_s": 5e5, "steps": [{"path": "p"}]}], duration_s=2.0)
    pred, res = _run(doc)
    # independent check of the closed form: P(T - 1 > t) for rates 0.5 and 1/1.4 - 0.5
    r1, r2 = 0.5, 1 / 1.4 - 0.5
    t = pred.flows[0].p99_us - 1.0
    surv = (r2 * math.exp(-r1 * t) - r1 * math.exp(-r2 * t)) / (r2 - r1)
    assert surv == pytest.approx(0.01, rel=1e-6)
    lat = res["flows"]["f"]["latency_us"]
    assert _rel(lat["mean"], pred.flows[0].mean_us) < 0.02
    assert _rel(lat["p99"], pred.flows[0].p99_us) < 0.04


def test_a_random_delay_between_queues_has_no_exact_percentiles() -> None:
    # Two M/M/1 (ρ .7 each) with an Exp(3 µs) delay: before the first queue the delay is
    # independent of the queues' sojourns (the M/M/∞ output is Poisson and, reversed,
    # independent of the delay just served), so Reich's sum of exponentials holds; between
    # them, requests overtake one another in the delay and the two sojourns correlate: the
    # sum's p99 (27.12 µs) is ~1.9% below the simulated one (27.65 ± 0.09 over 4 seeds), so
    # theory gives the mean (Jackson) but no percentiles. Tolerances as in the test above.
    exp, delay = {"dist": "exp", "mean": 1000}, {"delay_us": {"dist": "exp", "mean": 3}}
    for stages, exact in (([delay, {"on": "a", "cycles": exp}, {"on": "b", "cycles": exp}], True),
                          ([{"on": "a", "cycles": exp}, delay, {"on": "b", "cycles": exp}], False)):
        doc = _doc({"a": _cpu(), "b": _cpu()}, {"p": stages},
                   [{"name": "f", "arrival": "poisson", "rate_per_s": 7e5, "steps": [{"path": "p"}]}], duration_s=2.0)
        pred, res = _run(doc)
        lat, flow = res["flows"]["f"]["latency_us"], pred.flows[0]
        assert flow.mean_us == pytest.approx(3 + 2 / (1 - 0.7))
        assert _rel(lat["mean"], flow.mean_us) < 0.02
        if exact:
            assert flow.p99_us == pytest.approx(hypoexp_quantile([1 / 3, 0.3, 0.3], 0.99))
            assert _rel(lat["p99"], flow.p99_us) < 0.04
        else:
            assert flow.p99_us is None and flow.p999_us is None and "overtake" in pred.model


def _erlang2_plus_exp_survival(a: float, b: float, t: float) -> float:
    """P(E + X > t) for E ~ Erlang(2, a), X ~ Exp(b), a != b, by direct convolution:
    e^{-at}(1 + at) + a² e^{-bt} (1 - e^{-kt}(1 + kt)) / k² with k = a - b."""
    k = a - b
    return math.exp(-a * t) * (1 + a * t) + a * a * math.exp(-b * t) * (1 - math.exp(-k * t) * (1 + k * t)) / (k * k)


def test_hypoexp_with_repeated_and_nearly_equal_rates() -> None:
    # a repeated rate beside another: the distinct-rate partial fractions do not exist; the
    # quantile must still solve the exact survival (an independent convolution), to 1e-6
    for p in (0.5, 0.99, 0.999):
        t = hypoexp_quantile([0.5, 0.5, 1.5], p)
        assert _erlang2_plus_exp_survival(0.5, 1.5, t) == pytest.approx(1 - p, rel=1e-6)
    # rates 1e-5 apart are an Erlang-4 to within ~1e-5 (the mean moves by 6e-5 of itself);
    # their partial-fraction coefficients reach ~1e15 and cancel to garbage in doubles
    assert hypoexp_quantile([1.0, 1 + 1e-5, 1 + 2e-5, 1 + 3e-5], 0.99) == pytest.approx(
        hypoexp_quantile([1.0] * 4, 0.99), rel=1e-4)


def test_tandem_with_a_repeated_rate_has_percentiles() -> None:
    # M/M/1 (1 µs) -> M/M/1 (1 µs) -> M/M/1 (0.5 µs) at 5·10⁵/s: sojourn Erlang(2, 0.5) +
    # Exp(1.5) µs (Reich). `vemu theory` used to fail on it (some but not all rates equal).
    # 1 s runs over 8 seeds: mean spread 0.21%, p99 0.54%, p99.9 1.7% (sd, plus the ≤ 0.4%
    # bucket error): tolerances 1.5%, 3%, 8% (about 5 sd each).
    doc = _doc({"a": _cpu(), "b": _cpu(), "c": _cpu()},
               {"p": [{"on": "a", "cycles": EXP}, {"on": "b", "cycles": EXP},
                      {"on": "c", "cycles": {"dist": "exp", "mean": 500}}]},
               [{"name": "f", "arrival": "poisson", "rate_per_s": 5e5, "steps": [{"path": "p"}]}], duration_s=1.0)
    pred, res = _run(doc)
    f = pred.flows[0]
    assert f.mean_us == pytest.approx(2 + 2 + 2 / 3)
    assert f.p99_us is not None and f.p999_us is not None
    assert _erlang2_plus_exp_survival(0.5, 1.5, f.p99_us) == pytest.approx(0.01, rel=1e-6)
    lat = res["flows"]["f"]["latency_us"]
    assert _rel(lat["mean"], f.mean_us) < 0.015
    assert _rel(lat["p99"], f.p99_us) < 0.03
    assert _rel(lat["p999"], f.p999_us) < 0.08


# ----------------------------------------------------------------------------- closed loops

CLOSED = [(n, z) for n in (1, 2, 5, 10, 20) for z in (0.0, 2.0) if (n, z) != (1, 0.0)]


@pytest.mark.parametrize("clients,think_us", CLOSED)
def test_closed_loop_exact_mva(clients: int, think_us: float) -> None:
    # exp service 1 µs, exponential think time; 0.3 s is ~10⁵ cycles of the loop. Pilot
    # half-widths at most 0.66%, tolerance 1.5%; throughput is a count over ~3·10⁵: 1.5%.
    think: Any = {"dist": "exp", "mean": think_us} if think_us else 0
    pred, res = _run(_station({"arrival": "closed", "clients": clients, "think_us": think}, EXP,
                              duration_s=0.3, warmup_s=0.001))
    f = res["flows"]["f"]
    th = mva_closed(clients, 1.0, think_us)
    assert pred.flows[0].mean_us == pytest.approx(th.response)
    assert _rel(f["latency_us"]["mean"], th.response) < 0.015
    assert _rel(f["throughput_per_s"], th.throughput * 1e6) < 0.015


def test_closed_loop_two_servers_load_dependent_mva() -> None:
    # 6 clients, 2 servers, fixed think 1.5 µs: load-dependent exact MVA; same tolerance
    pred, res = _run(_station({"arrival": "closed", "clients": 6, "think_us": 1.5}, EXP, cores=2,
                              duration_s=0.3, warmup_s=0.001))
    th = mva_closed(6, 1.0, 1.5, servers=2)
    assert _rel(res["flows"]["f"]["latency_us"]["mean"], th.response) < 0.015


def _closed_product_form(n: int, d: int, z: int, c: int) -> tuple[Fraction, Fraction]:
    """(throughput, response) of n clients, a c-server exponential station of mean d and a
    delay of mean z, from the birth-death chain of the number j at the station, in exact
    rational arithmetic: p(j) ∝ Z^{n-j}/(n-j)! · D^j/Π_{i≤j} min(i, c)."""
    w = [Fraction(1)]
    for j in range(1, n + 1):
        w.append(w[-1] * (n - j + 1) * d / (z * min(j, c)))
    tot = sum(w)
    x = sum(wj * min(j, c) for j, wj in enumerate(w)) / (tot * d)
    return x, sum(j * wj for j, wj in enumerate(w)) / tot / x


def test_closed_loop_many_clients_multiserver_is_exact() -> None:
    # 512 clients, 8 servers of 1 µs, exponential think 60 µs: the station is ~99% busy.
    # Load-dependent MVA's p(0 | n) = 1 - Σ p(j | n) cancelled here (throughput 2.6% low,
    # response 38% high); the answer must be the exact one.
    x, r = _closed_product_form(512, 1, 60, 8)
    th = mva_closed(512, 1.0, 60.0, servers=8)
    assert th.throughput == pytest.approx(float(x), rel=1e-9)
    assert th.response == pytest.approx(float(r), rel=1e-9)
    assert mva_closed(5, 1.0, 3.0, servers=2).response == pytest.approx(float(_closed_product_form(5, 1, 3, 2)[1]))
    # and the engine agrees: 0.2 s runs over 8 seeds spread 0.83% (mean) and 0.05%
    # (throughput, ~1.6·10⁶ completions); tolerances 4% and 0.5%
    pred, res = _run(_station({"arrival": "closed", "clients": 512, "think_us": {"dist": "exp", "mean": 60}}, EXP,
                              cores=8, duration_s=0.2, warmup_s=0.005))
    f = res["flows"]["f"]
    assert pred.flows[0].mean_us == pytest.approx(float(r))
    assert _rel(f["latency_us"]["mean"], float(r)) < 0.04
    assert _rel(f["throughput_per_s"], float(x) * 1e6) < 0.005


def _brute_force_network(n: int, stations: list[tuple[int, int]], z: int) -> tuple[Fraction, list[Fraction],
                                                                                   list[Fraction]]:
    """(throughput, mean number at and busy fraction of each station) of n clients in a closed network, by
    summing the product form over every state (j_0 at the delay, j_k at station k), in
    exact rational arithmetic: an independent check of the convolution."""
    def factor(j: int, d: int, c: int) -> Fraction:
        out = Fraction(1)
        for i in range(1, j + 1):
            out *= Fraction(d, min(i, c))
        return out

    def states(k: int, left: int) -> Any:
        if k == 0:
            yield (left,)
            return
        for j in range(left + 1):
            for rest in states(k - 1, left - j):
                yield (j, *rest)

    total = x = Fraction(0)
    q = [Fraction(0)] * len(stations)
    busy = [Fraction(0)] * len(stations)
    for st in states(len(stations), n):
        *js, j0 = st
        w = (Fraction(z) ** j0 / math.factorial(j0)) if j0 else Fraction(1)
        if j0 and z == 0:
            continue
        for j, (d, c) in zip(js, stations):
            w *= factor(j, d, c)
        total += w
        x += w * Fraction(min(js[0], stations[0][1]), stations[0][0])
        for i, (j, (_, c)) in enumerate(zip(js, stations)):
            q[i] += w * j
            busy[i] += w * Fraction(min(j, c), c)
    return x / total, [qi / total for qi in q], [b / total for b in busy]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 8), z=st.integers(0, 5),
       stations=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3)), min_size=1, max_size=3))
def test_closed_network_is_the_product_form(n: int, z: int, stations: list[tuple[int, int]]) -> None:
    # exact: the same numbers as the sum over every state, to rounding; the response by
    # Little's law from the state sums (a unit per client: exactly the demand)
    x, q, busy = _brute_force_network(n, stations, z)
    net = closed_network(n, [(float(d), c) for d, c in stations], float(z))
    assert net.throughput == pytest.approx(float(x), rel=1e-9)
    for got, want, u, (d, c) in zip(net.stations, q, busy, stations):
        assert got.queue == pytest.approx(float(want), rel=1e-9, abs=1e-12)
        assert got.utilization == pytest.approx(float(u), rel=1e-9)
        assert got.response == pytest.approx(float(want / x), rel=1e-9)
        if c >= n:
            assert got.response == d


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), z=st.floats(0, 50),
       stations=st.lists(st.tuples(st.floats(0.01, 10), st.integers(1, 16)), min_size=1, max_size=4))
def test_closed_network_conserves_clients_and_respects_the_bounds(n: int, z: float,
                                                                    stations: list[tuple[float, int]]) -> None:
    net = closed_network(n, stations, z)
    x = net.throughput
    # Little: every client is at a station or in the delay
    assert math.fsum(s.queue for s in net.stations) + x * z == pytest.approx(n, rel=1e-9)
    # operational bounds (Lazowska et al. §5.2): no station beyond its capacity, and no
    # faster than a client alone would cycle
    assert x <= min(c / d for d, c in stations) * (1 + 1e-9)
    assert x <= n / (sum(d for d, _ in stations) + z) * (1 + 1e-9)
    assert all(0 <= s.utilization <= 1 + 1e-9 for s in net.stations)
    assert all(s.response >= d * (1 - 1e-9) for s, (d, _) in zip(net.stations, stations))
    # one more client never lowers the throughput
    assert closed_network(n + 1, stations, z).throughput >= x * (1 - 1e-9)


def test_closed_network_wants_whole_servers() -> None:
    with pytest.raises(ModelError, match="whole number of servers"):
        closed_network(10, [(1.0, 2.5)])


def test_closed_network_at_many_clients_is_exact() -> None:
    # Closed forms at populations where the convolution's tail recursion carries over
    # hundreds of blocks: two single-server stations of equal demand D and no think time
    # have G(n) = (n + 1) D^n, so X = n/((n + 1) D) and each holds n/2; one station of c
    # servers alone is saturated, X = c/D. The brute force above covers n <= 8.
    for n in (5_000, 200_000):
        net = closed_network(n, [(2.0, 1), (2.0, 1)])
        assert net.throughput == pytest.approx(n / ((n + 1) * 2.0), rel=1e-9)
        assert [s.queue for s in net.stations] == pytest.approx([n / 2, n / 2], rel=1e-9)
    net = closed_network(100_000, [(3.0, 8)], 50.0)
    assert net.throughput == pytest.approx(8 / 3.0, rel=1e-9)
    assert net.stations[0].queue + net.throughput * 50.0 == pytest.approx(100_000, rel=1e-9)


@pytest.mark.parametrize("clients", [8, 40])
def test_closed_network_of_three_stations(clients: int) -> None:
    # a (2 units, exp 1 µs) -> b (1 unit, exp 0.8 µs) -> c (4 units, exp 3 µs), then an
    # exponential think of 2 µs: at 8 clients b is 75% busy, at 40 it is the bottleneck
    # (99%) with c at 93%. 0.3 s runs; pilot batch-means half-widths (seeds 1, 2) at most
    # 0.35% (mean latency) and 0.30% (throughput); tolerance 1%, about twice that. The
    # utilisations are busy time over the window: the same 1%.
    e = lambda us: {"dist": "exp", "mean": us * 1000}  # noqa: E731
    pred, res = _run(_doc({"a": _cpu(2), "b": _cpu(1), "c": _cpu(4)},
                          {"p": [{"on": "a", "cycles": e(1)}, {"on": "b", "cycles": e(0.8)},
                                 {"on": "c", "cycles": e(3)}]},
                          [{"name": "f", "arrival": "closed", "clients": clients,
                            "think_us": {"dist": "exp", "mean": 2}, "steps": [{"path": "p"}]}],
                          duration_s=0.3, warmup_s=0.001))
    assert "closed network of 3 stations" in pred.model
    f = res["flows"]["f"]
    assert _rel(f["latency_us"]["mean"], pred.flows[0].mean_us) < 0.01
    assert _rel(f["throughput_per_s"], pred.flows[0].throughput_per_s) < 0.01
    for s in pred.stations:
        assert _rel(res["resources"][s.name]["utilization"], s.utilization) < 0.01, s.name


def test_the_closed_dom0_example_sits_under_its_operational_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    # examples/closed-dom0.toml: 48 clients, D_vcpu = 35.7 µs on 64 vCPUs, D_dom0 = 6.65 µs
    # on 8 threads. Theory: 1.075M/s against the bound min(48/42.35, 8/6.65) µs⁻¹ = 1.133M/s,
    # dom0 89% busy. 0.5 s runs: pilot batch-means half-widths (seeds 1, 2) at most 0.22%;
    # tolerance 1%
    from conftest import REPO

    assert main(["theory", str(REPO / "examples" / "closed-dom0.toml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    th, sim = out["theory"]["flows"][0], out["result"]["flows"]["requests"]
    bound = min(48 / (35.7 + 6.65), 8 / 6.65) * 1e6
    assert th["throughput_per_s"] == pytest.approx(1.0753e6, rel=1e-3) and th["throughput_per_s"] < 0.96 * bound
    dom0 = next(s for s in out["theory"]["stations"] if s["name"] == "dom0")
    assert dom0["utilization"] == pytest.approx(0.894, abs=1e-3)
    assert _rel(sim["throughput_per_s"], th["throughput_per_s"]) < 0.01
    assert _rel(sim["latency_us"]["mean"], th["mean_us"]) < 0.01


# ----------------------------------------------------------------------------- Cobham priorities


def _priority(classes: list[tuple[str, float, Any, int]], *, duration_s: float,
              preempt: bool = False) -> dict[str, Any]:
    paths = {n: [{"on": "s", "cycles": cyc, "priority": pr, "preempt": preempt}] for n, _, cyc, pr in classes}
    flows = [{"name": n, "arrival": "poisson", "rate_per_s": r, "steps": [{"path": n}]} for n, r, _, _ in classes]
    return _doc({"s": _cpu()}, paths, flows, duration_s=duration_s)


def _two_classes(rho: float) -> list[tuple[str, float, Any, int]]:
    return [("hi", rho * 0.5e6, EXP, 1), ("lo", rho * 0.5e6, EXP, 0)]


def _three_classes(rho: float) -> list[tuple[str, float, Any, int]]:
    # loads 0.3ρ, 0.3ρ, 0.4ρ: exponential, fixed and lognormal service of means 1, 0.5, 2 µs
    return [("hi", rho * 0.3e6, EXP, 2), ("mid", rho * 0.6e6, {"dist": "fixed", "mean": 500}, 1),
            ("lo", rho * 0.2e6, {"dist": "lognormal", "mean": 2000, "cv": 1.0}, 0)]


# (classes, ρ): (run s, tolerance): module docstring
PRIO_CASES = {("2", 0.5): (1.0, 0.03), ("2", 0.9): (4.0, 0.07), ("3", 0.5): (1.0, 0.035), ("3", 0.9): (4.0, 0.06)}


@pytest.mark.parametrize("k,rho", list(PRIO_CASES), ids=[f"{k}classes-rho{r}" for k, r in PRIO_CASES])
def test_cobham_priorities(k: str, rho: float) -> None:
    dur, tol = PRIO_CASES[(k, rho)]
    classes = _two_classes(rho) if k == "2" else _three_classes(rho)
    pred, res = _run(_priority(classes, duration_s=dur))
    assert "Cobham" in pred.model
    assert res["resources"]["s"]["utilization"] == pytest.approx(rho, rel=0.01)
    means = []
    for f in pred.flows:
        sim = res["flows"][f.name]["latency_us"]["mean"]
        assert _rel(sim, f.mean_us) < tol, (f.name, sim, f.mean_us)
        means.append(f.mean_us)
    if k == "2":
        assert means[0] < means[1]  # the high class waits less (same service)


# (classes, ρ): (run s, tolerance): module docstring
PREEMPT_CASES = {("2", 0.5): (1.0, 0.03), ("2", 0.9): (4.0, 0.065), ("3", 0.5): (1.0, 0.03),
                 ("3", 0.9): (4.0, 0.055)}


@pytest.mark.parametrize("k,rho", list(PREEMPT_CASES), ids=[f"{k}classes-rho{r}" for k, r in PREEMPT_CASES])
def test_preemptive_resume_priorities(k: str, rho: float) -> None:
    dur, tol = PREEMPT_CASES[(k, rho)]
    classes = _two_classes(rho) if k == "2" else _three_classes(rho)
    pred, res = _run(_priority(classes, duration_s=dur, preempt=True))
    assert "preemptive-resume" in pred.model
    assert res["resources"]["s"]["utilization"] == pytest.approx(rho, rel=0.01)
    assert res["resources"]["s"]["preemptions"] > 0
    for f in pred.flows:
        sim = res["flows"][f.name]["latency_us"]["mean"]
        assert _rel(sim, f.mean_us) < tol, (f.name, sim, f.mean_us)
    # the top class sees the server as if alone: M/M/1 at its own load (ρ/2 with two classes)
    if k == "2":
        assert pred.flows[0].mean_us == pytest.approx(mm1_sojourn(rho / 2, 1.0))
    # against non-preemptive priority on the same arrivals, the top class gains and the
    # lowest loses (by the theory; the simulations agree within the tolerances above)
    cob, _ = _run(_priority(classes, duration_s=0.01))
    assert pred.flows[0].mean_us < cob.flows[0].mean_us and pred.flows[-1].mean_us > cob.flows[-1].mean_us


def test_preemptive_formula_agrees_with_known_values() -> None:
    # one class: P-K; the top class: M/G/1 at its own load alone
    assert preemptive_sojourns([0.5], [1.0], [2.0])[0] == pytest.approx(mg1_sojourn(0.5, 1.0, 2.0))
    t = preemptive_sojourns([0.3, 0.3, 0.2], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert t[0] == pytest.approx(mm1_sojourn(0.3, 1.0))
    # exponential service of one mean: the number in system is M/M/1's whatever the order,
    # so by Little Σ λ_k T_k = ρ/(1 - ρ)
    assert 0.3 * t[0] + 0.3 * t[1] + 0.2 * t[2] == pytest.approx(0.8 / 0.2)
    with pytest.raises(Exception):
        preemptive_sojourns([0.6, 0.5], [1.0, 1.0], [2.0, 2.0])  # overloaded


@pytest.mark.parametrize("c", [2, 4])
def test_a_preempting_top_level_on_c_units_is_mmc(c: int) -> None:
    # the top level (exponential, ρ 0.5 of its own) preempts two lower flows (lognormal and
    # fixed, 0.3 more): it never sees them, so it is M/M/c exactly, as in test_mmc_erlang_c
    # with the same run length and tolerances; the levels below are not predicted
    paths = {"hi": [{"on": "s", "cycles": EXP, "priority": 2, "preempt": True}],
             "mid": [{"on": "s", "cycles": {"dist": "lognormal", "mean": 2000, "cv": 1.0}, "priority": 1,
                      "preempt": True}],
             "lo": [{"on": "s", "cycles": {"dist": "fixed", "mean": 500}}]}
    flows = [{"name": n, "arrival": "poisson", "rate_per_s": r * c, "steps": [{"path": n}]}
             for n, r in (("hi", 0.5e6), ("mid", 0.1e6), ("lo", 0.2e6))]
    pred, res = _run(_doc({"s": _cpu(c)}, paths, flows, duration_s=1.0 / math.sqrt(c)))
    assert pred.model.startswith(f"M/M/{c} for the top priority level") and "mid, lo" in pred.model
    assert [f.name for f in pred.flows] == ["hi"]
    assert pred.flows[0].mean_us == pytest.approx(mmc_sojourn(0.5 * c, 1.0, c))
    lat = res["flows"]["hi"]["latency_us"]
    tol_mean, tol_p99 = MMC_TOL[0.5]
    assert _rel(lat["mean"], pred.flows[0].mean_us) < tol_mean
    assert pred.flows[0].p99_us is not None and _rel(lat["p99"], pred.flows[0].p99_us) < tol_p99
    assert res["resources"]["s"]["utilization"] == pytest.approx(0.8, rel=0.02)
    # the station's load is every level's (a mutant counting the top level's, 0.5, passed),
    # and a top level stable on its own (0.5) is still refused when all together pass 1
    assert pred.stations[0].utilization == pytest.approx(0.8)
    over = [dict(f, rate_per_s=f["rate_per_s"] * (1 if f["name"] == "hi" else 2)) for f in flows]
    assert "overloaded" in (why_not(load_experiment(_doc({"s": _cpu(c)}, paths, over, duration_s=0.01))) or "")
    # a top level that does not preempt, or whose service is not exponential: no closed form
    paths["hi"][0]["preempt"] = False
    assert "priority M/G/c" in (why_not(load_experiment(_doc({"s": _cpu(c)}, paths, flows, duration_s=0.01))) or "")


def test_mixed_preemption_is_reported_uncovered() -> None:
    classes = _three_classes(0.5)
    doc = _priority(classes, duration_s=0.01)
    doc["architecture"]["paths"]["hi"]["stages"][0]["preempt"] = True  # hi preempts, mid does not
    exp = load_experiment(doc)
    assert predict(exp) is None and "mixed discipline" in (why_not(exp) or "")


def test_same_priority_flows_share_one_fifo() -> None:
    # two flows of one priority at one server: a single M/G/1 with the mixed E[S²]
    classes = [("x", 0.3e6, EXP, 0), ("y", 0.4e6, {"dist": "fixed", "mean": 1000}, 0)]
    pred, res = _run(_priority(classes, duration_s=1.0))
    wait = mg1_sojourn(0.7, 1.0, (0.3 * 2 + 0.4 * 1) / 0.7) - 1.0
    for f in pred.flows:
        assert f.mean_us == pytest.approx(wait + 1.0)
        assert _rel(res["flows"][f.name]["latency_us"]["mean"], f.mean_us) < 0.02  # ρ .7, ~7·10⁵ requests


def test_idle_states_with_zero_work_is_the_setup_time_alone() -> None:
    # a stage of no work on a core that sleeps still waits for it to wake: M/G/1 with setup
    # times and S = 0 has only the setup term (2E[D] + λE[D²]) / (2(1 + λE[D])) (it used to
    # raise: P-K refused a zero mean service). λ = 0.05/µs; C1 (exit 2, residency 2) or C6
    # (exit 30, residency 40), the latter when the previous idle period reached 40 µs.
    doc = _doc({}, {"p": [{"delay_us": 1}, {"on": "vcpu", "cycles": 0}]},
               [{"name": "f", "arrival": "poisson", "rate_per_s": 5e4, "steps": [{"path": "p"}]}], duration_s=1.0)
    doc["host"]["idle_states"] = [{"name": "C1", "exit_us": 2, "residency_us": 2},
                                  {"name": "C6", "exit_us": 30, "residency_us": 40}]
    lam, deep = 0.05, math.exp(-0.05 * 40)
    d1, d2 = (1 - deep) * 2 + deep * 30, (1 - deep) * 4 + deep * 900
    assert setup_moments(lam, [(2.0, 2.0), (30.0, 40.0)]) == pytest.approx((d1, d2))
    pred, res = _run(doc)
    th = 1 + (2 * d1 + lam * d2) / (2 * (1 + lam * d1))
    assert pred.flows[0].mean_us == pytest.approx(th)
    # 1 s runs over 8 seeds spread 0.41% (sd): tolerance 2.5%
    assert _rel(res["flows"]["f"]["latency_us"]["mean"], th) < 0.025


# ----------------------------------------------------------------------------- what theory does not cover

UNCOVERED = {
    "batch": (_doc({"s": _cpu()}, {"p": [{"on": "s", "cycles": EXP, "batch": 4}]},
                   [{"name": "f", "arrival": "poisson", "rate_per_s": 1e5, "steps": [{"path": "p"}]}],
                   duration_s=0.01), "batches"),
    "capacity": (_doc({"s": _cpu(capacity=4)}, {"p": [{"on": "s", "cycles": EXP}]},
                      [{"name": "f", "arrival": "poisson", "rate_per_s": 1e5, "steps": [{"path": "p"}]}],
                      duration_s=0.01), "capacity"),
    # (on one unit the two are one M/G/1 service, covered: test_theory_edges)
    "run to completion": (_doc({"s": _cpu(2)}, {"p": [{"on": "s", "cycles": EXP}, {"on": "s", "cycles": EXP}]},
                               [{"name": "f", "arrival": "poisson", "rate_per_s": 1e5, "steps": [{"path": "p"}]}],
                               duration_s=0.01), "run to completion"),
    # (a mix at one station is covered: tests/test_classes.py; through two it is not)
    # (through two exponential stations of one mean a mix is a Kelly network, covered:
    # test_theory_edges; a fixed service feeding another station is not)
    "mix": (_doc({"s": _cpu(), "t": _cpu()}, {"p": [{"on": "s", "cycles": 1000}, {"on": "t", "cycles": EXP}]},
                 [{"name": "f", "arrival": "poisson", "rate_per_s": 1e5,
                   "mix": [{"name": "a", "weight": 1, "steps": [{"path": "p"}]},
                           {"name": "b", "weight": 1, "steps": [{"path": "p"}]}]}], duration_s=0.01),
            "feeds another station"),
    "closed, fixed service": (_doc({"s": _cpu(), "t": _cpu()},
                                   {"p": [{"on": "s", "cycles": 1000}, {"on": "t", "cycles": EXP}]},
                                   [{"name": "f", "arrival": "closed", "clients": 3, "steps": [{"path": "p"}]}],
                                   duration_s=0.01), "non-exponential"),
    "closed, shared random bytes": (_doc({"s": _cpu(), "t": _cpu()},
                                         {"p": [{"on": "s", "per_byte": 1}, {"on": "t", "per_byte": 1}]},
                                         [{"name": "f", "arrival": "closed", "clients": 3,
                                           "steps": [{"path": "p", "bytes": {"dist": "exp", "mean": 1000}}]}],
                                         duration_s=0.01), "correlated"),
    "M/G/c": (_station(_poisson(0.5, 2), 1000, cores=2, duration_s=0.01), "M/G/2"),
    "M/G/1 tandem": (_doc({"s": _cpu(), "t": _cpu()}, {"p": [{"on": "s", "cycles": 1000}, {"on": "t", "cycles": EXP}]},
                          [{"name": "f", "arrival": "poisson", "rate_per_s": 1e5, "steps": [{"path": "p"}]}],
                          duration_s=0.01), "non-exponential"),
    "overloaded": (_station(_poisson(1.2), EXP, duration_s=0.001), "overloaded"),
    "periodic arrivals": (_station({"arrival": "periodic", "rate_per_s": 1e5}, EXP, duration_s=0.01), "Poisson"),
    "closed non-exponential": (_station({"arrival": "closed", "clients": 3}, 1000, duration_s=0.01), "non-exponential"),
}


@pytest.mark.parametrize("name", list(UNCOVERED))
def test_predict_returns_none_with_a_reason(name: str) -> None:
    doc, word = UNCOVERED[name]
    exp = load_experiment(doc)  # each is a valid spec: one the loader refused would test nothing here
    assert predict(exp) is None
    reason = why_not(exp)
    assert reason and word in reason, reason


# ----------------------------------------------------------------------------- the command


def write_experiment(path: Path, doc: dict[str, Any]) -> Path:
    """An experiment dict written as TOML (conftest's writer)."""
    path.write_text(to_toml(doc))
    return path


def test_cli_theory_covered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_experiment(tmp_path / "mm2.toml", _server(2, 0.5, duration_s=0.05))
    assert main(["theory", str(f), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "theory: M/M/2" in out and "mean us" in out and "p99 us" in out and "rel diff" in out
    assert main(["theory", str(f), "--json", "--duration", "0.02"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["covered"] and d["reason"] is None and d["duration_s"] == 0.02
    row = d["comparison"]["flows"][0]
    assert abs(row["mean_us"]["rel_diff"]) < 0.05  # 2·10⁴ requests at ρ .5
    assert d["result"]["flows"]["f"]["completed"] > 0
    # 2·10⁴ requests: 200 beyond the p99, 20 beyond the p99.9, neither thin
    assert row["p99_us"]["thin_tail"] is False and row["p999_us"]["thin_tail"] is False
    # a window of ~2,000 requests leaves 2 beyond the p99.9: marked, in JSON and in the text
    assert main(["theory", str(f), "--json", "--duration", "0.002"]) == 0
    row = json.loads(capsys.readouterr().out)["comparison"]["flows"][0]
    assert row["p99_us"]["thin_tail"] is False and row["p999_us"]["thin_tail"] is True
    assert main(["theory", str(f), "--duration", "0.002"]) == 0
    out = capsys.readouterr().out
    assert next(ln for ln in out.splitlines() if "p99.9 us" in ln).endswith(" *")
    assert "fewer than 10 simulated requests beyond this percentile" in out


def test_cli_theory_uncovered_still_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_experiment(tmp_path / "batch.toml", UNCOVERED["batch"][0])
    assert main(["theory", str(f)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("outside what theory covers: ") and "batches" in out
    assert "usable fraction" in out  # the simulation is printed too
    assert main(["theory", str(f), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["covered"] is False and "batches" in d["reason"] and "flows" in d["result"]


def test_cli_theory_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_experiment(tmp_path / "mm1.toml", _station(_poisson(0.5), EXP, duration_s=0.01))
    assert main(["theory", str(f), "--set", "architecture.resources.s.cores=0"]) == 2
    assert main(["theory", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err


def test_cli_theory_set_changes_the_prediction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_experiment(tmp_path / "mm1.toml", _station(_poisson(0.5), EXP, duration_s=0.01))
    assert main(["theory", str(f), "--json", "--set", "workload.flows.f.rate_per_s=800000"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["theory"]["flows"][0]["mean_us"] == pytest.approx(mm1_sojourn(0.8, 1.0))


def test_theory_takes_bundled_models_as_run_does(capsys) -> None:
    # `vemu theory --host/-a/-w` failed with "unrecognized arguments" where run, compare and
    # sweep take them; a bundled architecture is outside what theory covers, and says why
    from emulator.cli import main
    assert main(["theory", "--host", "xeon-2017", "-a", "nitro", "-w", "kv-cache", "--duration", "0.0005"]) == 0
    assert capsys.readouterr().out.startswith("outside what theory covers: ")
    assert main(["theory", "--host", "xeon-2017"]) == 2
    assert "give an experiment file, or all of --host" in capsys.readouterr().err


# ----------------------------------------------------------------------------- from a mutation review


def test_a_closed_loop_with_pure_delays_adds_them_to_the_response() -> None:
    # 5 clients, a fixed 3 µs delay before an Exp(1 µs) station and an Exp(2 µs) delay after:
    # the delays are an infinite server, so the response is MVA's station response plus 5 µs
    # (a mutant reporting the station's response alone, 1.69 µs, passed every other test).
    # 0.3 s (~5·10⁴ cycles): tolerance 1.5%, as for the loops above
    doc = _doc({"s": _cpu()}, {"p": [{"delay_us": 3.0}, {"on": "s", "cycles": EXP},
                                     {"delay_us": {"dist": "exp", "mean": 2.0}}]},
               [{"name": "f", "arrival": "closed", "clients": 5, "steps": [{"path": "p"}]}],
               duration_s=0.3, warmup_s=0.001)
    pred, res = _run(doc)
    th = mva_closed(5, 1.0, 5.0)  # the delays act as think time for the station
    assert pred.flows[0].mean_us == pytest.approx(th.response + 5.0)
    assert _rel(res["flows"]["f"]["latency_us"]["mean"], th.response + 5.0) < 0.015


def test_stability_is_refused_at_exactly_rho_one() -> None:
    # at rho = 1 the queue grows without bound: a ModelError, not a division by zero (or, for
    # Erlang C, a probability of 1 returned as if it meant something)
    with pytest.raises(ModelError):
        mm1_sojourn(1.0, 1.0)
    with pytest.raises(ModelError):
        erlang_c(2, 2.0)


def test_preemptive_flows_of_one_level_with_different_means() -> None:
    # a preempting top flow (exp 1 µs, load 0.3), and at the level below two flows that share
    # it but not their service: 0.3 µs (load 0.1) and 3 µs (load 0.3), both exponential. Each
    # waits the level's common wait and its own service stretched by the top level's
    # interruptions (a mutant giving every flow of a level the level's mean service passed the
    # one-mean cases above; it is 3% and 16% off here). 2 s (~1.7·10⁶ requests at ρ 0.7):
    # a review measured the simulation within 0.35% of the formula; tolerance 2%
    classes = [("top", 0.3e6, EXP, 1), ("short", 1 / 3 * 1e6, {"dist": "exp", "mean": 300}, 0),
               ("long", 0.1e6, {"dist": "exp", "mean": 3000}, 0)]
    pred, res = _run(_priority(classes, duration_s=2.0, preempt=True))
    assert "preemptive-resume" in pred.model
    means = {f.name: f.mean_us for f in pred.flows}
    assert means["long"] - means["short"] == pytest.approx(2.7 / 0.7)  # their own services, stretched by 1/(1 - 0.3)
    for f in pred.flows:
        sim = res["flows"][f.name]["latency_us"]["mean"]
        assert _rel(sim, f.mean_us) < 0.02, (f.name, sim, f.mean_us)


@pytest.mark.parametrize("stages", [
    # a uniform delay before an M/M/1: a sum of a uniform and the sojourn has no closed-form
    # quantile here (a mutant taking it as known predicted p99 29.2 µs; the simulation 40.8)
    [{"delay_us": {"dist": "uniform", "mean": 20.0, "cv": 0.5}}, {"on": "s", "cycles": EXP}],
    [{"delay_us": {"dist": "lognormal", "mean": 20.0, "cv": 0.5}}, {"on": "s", "cycles": EXP}],
    # a random delay on the queue's own stage: requests overtake one another after it
    [{"on": "s", "cycles": EXP, "delay_us": {"dist": "exp", "mean": 5.0}}, {"on": "t", "cycles": EXP}],
], ids=["uniform-delay", "lognormal-delay", "random-delay-on-the-first-queue"])
def test_percentiles_are_not_predicted_where_random_delays_break_the_closed_form(stages: list) -> None:
    doc = _doc({"s": _cpu(), "t": _cpu()}, {"p": stages},
               [{"name": "f", "arrival": "poisson", "rate_per_s": 0.5e6, "steps": [{"path": "p"}]}], duration_s=0.01)
    pred = predict(load_experiment(doc))
    assert pred is not None and math.isfinite(pred.flows[0].mean_us)  # the mean is still theory's
    assert pred.flows[0].p99_us is None
