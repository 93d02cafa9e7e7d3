"""Small models against the closed forms of queueing theory.

Every run has a fixed seed, so these tests are deterministic; the tolerances say how far a
correct engine may stray from theory at that run length, whatever the seed. Each is about
five standard errors or more of the estimate, the standard error measured over 8-16 seeds
(and, for M/M/1, in line with the known asymptotic variance of a sojourn-time mean, which
grows as 1/(1-rho)^4). One 1 GHz core: ``cycles`` are nanoseconds.
"""

from __future__ import annotations

import math
import tomllib

import pytest
from conftest import TANDEM, TANDEM_MEAN_SOJOURN_US, TANDEM_RATE, TANDEM_SERVICE_S, experiment, station

from emulator.simulation import run

SERVICE_NS = 1000.0  # mean service 1 us: mu = 1e6/s
MU = 1e9 / SERVICE_NS


def _poisson(rate: float) -> dict[str, object]:
    return {"arrival": "poisson", "rate_per_s": rate}


def _rel(got: float, want: float) -> float:
    return abs(got / want - 1)


# -- M/M/1 -------------------------------------------------------------------------

# (rho, requests, tolerance on the mean, tolerance on p99)
# rho 0.5, 2M requests: s.e. of the mean sojourn 0.21%, of p99 0.56% (this includes the
#   histogram's bucket error, at most 0.4%).
# rho 0.8, 8M requests (~0.5 s): s.e. of the mean 0.37% (Daley's asymptotic variance of the
#   mean wait, 1976/mu^2 per request, gives sqrt(1976/8e6)/5 = 0.31%), of p99 0.8%.
MM1_CASES = [(0.5, 2_000_000, 0.01, 0.03), (0.8, 8_000_000, 0.02, 0.04)]


@pytest.mark.parametrize("rho,requests,tol_mean,tol_p99", MM1_CASES)
def test_mm1_sojourn_mean_p99_and_utilisation(rho: float, requests: int, tol_mean: float, tol_p99: float) -> None:
    lam = rho * MU
    res = run(station(_poisson(lam), {"dist": "exp", "mean": SERVICE_NS}, duration_s=requests / lam))
    d = res.to_dict()
    f = d["flows"]["f"]
    # the sojourn time of M/M/1 FIFO is exponential with rate mu - lambda
    mean_us = 1e6 / (MU - lam)
    p99_us = -math.log(0.01) * mean_us
    assert _rel(f["latency_us"]["mean"], mean_us) < tol_mean
    assert _rel(f["latency_us"]["p99"], p99_us) < tol_p99
    # utilisation = rho: the busy fraction over >= 2M services has s.e. <= 0.1%
    assert d["resources"]["s"]["utilization"] == pytest.approx(rho, rel=0.01)
    assert f["dropped"] == 0


def test_md1_mean_pollaczek_khinchine() -> None:
    # P-K: W = rho S (1 + cv^2) / (2 (1 - rho)); deterministic service has cv = 0.
    # 1M requests at rho 0.7: s.e. 0.29% over 16 seeds; tolerance 1.5%.
    rho = 0.7
    lam = rho * MU
    res = run(station(_poisson(lam), {"dist": "fixed", "mean": SERVICE_NS}, duration_s=1_000_000 / lam))
    f = res.to_dict()["flows"]["f"]
    want_us = SERVICE_NS / 1e3 * (1 + rho / (2 * (1 - rho)))
    assert _rel(f["latency_us"]["mean"], want_us) < 0.015
    # every sojourn is at least the service time, and the minimum bucket holds it exactly
    assert f["latency_us"]["p50"] >= SERVICE_NS / 1e3 * 0.996


# -- Jackson tandem ----------------------------------------------------------------

def test_tandem_mean_sojourn_is_jackson() -> None:
    # 2M requests (2500 s at 800/s): s.e. of the mean sojourn 0.37% (0.52% at 1M over 16
    # seeds; the last station, rho 0.72, dominates); tolerance 2%.
    assert TANDEM_MEAN_SOJOURN_US == pytest.approx(5638.5, abs=0.1)
    d = run(TANDEM, duration_s=2500.0, warmup_s=10.0, seed=1).to_dict()
    f = d["flows"]["jobs"]
    assert _rel(f["latency_us"]["mean"], TANDEM_MEAN_SOJOURN_US) < 0.02
    # utilisation of each station = lambda x S; s.e. < 0.1%, tolerance 1%
    for name, s in zip(("s1", "s2", "s3"), TANDEM_SERVICE_S):
        assert d["resources"][name]["utilization"] == pytest.approx(TANDEM_RATE * s, rel=0.01)
    # mean queue (waiting, not in service) at an M/M/1 is rho^2 / (1 - rho); s.e. 0.8% at
    # the last station (queue-length means vary more than sojourn means); tolerance 5%
    for name, s in zip(("s1", "s2", "s3"), TANDEM_SERVICE_S):
        rho = TANDEM_RATE * s
        assert d["resources"][name]["mean_queue"] == pytest.approx(rho**2 / (1 - rho), rel=0.05)
    # off-host stations: the host did no work at all
    assert d["usable_fraction"] == 0.0
    assert d["host_cycles"]["idle"] == pytest.approx(1.0)


def test_tandem_file_matches_inline(tandem_path) -> None:  # type: ignore[no-untyped-def]
    with open(tandem_path, "rb") as f:
        assert tomllib.load(f) == TANDEM
    # and it runs to the same bits as the inline copy
    a = run(tandem_path, duration_s=2.0, warmup_s=0.1, seed=5).to_dict()
    b = run(TANDEM, duration_s=2.0, warmup_s=0.1, seed=5).to_dict()
    assert a["flows"] == b["flows"] and a["resources"] == b["resources"]


# -- Little's law ------------------------------------------------------------------

LITTLE_CASES = {
    "tandem": (TANDEM, {"duration_s": 200.0, "warmup_s": 5.0}),
    "mm1": (station(_poisson(0.8 * MU), {"dist": "exp", "mean": SERVICE_NS}, duration_s=0.25), {}),
    "closed": (station({"arrival": "closed", "clients": 5, "think_us": {"dist": "exp", "mean": 3.0}},
                       {"dist": "lognormal", "mean": SERVICE_NS, "cv": 1.5}, duration_s=0.2), {}),
    "two flows": (experiment(
        {"s": {"kind": "cpu", "cores": 2, "ghz": 1.0, "on_host": False}},
        {"a": [{"on": "s", "cycles": {"dist": "exp", "mean": 1000}}, {"delay_us": {"dist": "uniform", "mean": 2, "cv": 0.5}}],
         "b": [{"on": "s", "cycles": {"dist": "lognormal", "mean": 1500, "cv": 0.5}, "priority": 1}]},
        [{"name": "x", "arrival": "poisson", "rate_per_s": 6e5, "steps": [{"path": "a"}]},
         {"name": "y", "arrival": "periodic", "rate_per_s": 5e5, "steps": [{"path": "b"}]}],
        duration_s=0.3), {}),
}


@pytest.mark.parametrize("name", sorted(LITTLE_CASES))
def test_littles_law_per_flow(name: str) -> None:
    # L = X W holds exactly over a window up to its edges (requests in flight when it opens
    # or closes); over >= 150k requests the edge terms are < 0.1% (measured: 1e-5 typical).
    spec, kw = LITTLE_CASES[name]
    d = run(spec, seed=2, **kw).to_dict()
    for fname, f in d["flows"].items():
        assert f["completed"] > 100_000, fname
        little = f["throughput_per_s"] * f["latency_us"]["mean"] * 1e-6
        assert f["mean_in_flight"] == pytest.approx(little, rel=1e-3), fname


# -- closed loop against exact MVA --------------------------------------------------

def _mva(clients: int, service: float, think: float) -> tuple[float, float]:
    """Exact mean value analysis of one FCFS exponential station plus a delay (think)
    station: throughput and mean response time at the station."""
    q = 0.0
    x = r = 0.0
    for n in range(1, clients + 1):
        r = service * (1 + q)
        x = n / (r + think)
        q = x * r
    return x, r


@pytest.mark.parametrize("clients", [1, 3, 8, 12])
def test_closed_loop_matches_mva(clients: int) -> None:
    # S = 1 us exponential, Z = 10 us think: saturation near N* = 11 clients.
    # 1M completions: s.e. over 12 seeds of throughput <= 0.07%, of mean response <= 0.28%;
    # tolerances 1% and 1.5%.
    s_us, z_us = 1.0, 10.0
    x, r = _mva(clients, s_us, z_us)  # per us, us
    spec = station({"arrival": "closed", "clients": clients, "think_us": {"dist": "exp", "mean": z_us}},
                   {"dist": "exp", "mean": s_us * 1e3}, duration_s=1e6 / (x * 1e6))
    d = run(spec, seed=3).to_dict()
    f = d["flows"]["f"]
    assert f["throughput_per_s"] == pytest.approx(x * 1e6, rel=0.01)
    assert f["latency_us"]["mean"] == pytest.approx(r, rel=0.015)
    assert d["resources"]["s"]["utilization"] == pytest.approx(x * s_us, rel=0.01)
    # a closed flow always has exactly `clients` requests, in flight or thinking: those in
    # flight, plus those thinking (Little's law on the think delay: X·Z), are all of them
    # (`<= clients` could not fail: in flight leaves the thinking ones out)
    assert f["mean_in_flight"] + f["throughput_per_s"] * z_us * 1e-6 == pytest.approx(clients, rel=0.01)


def test_mva_reference_sanity() -> None:
    # one client never queues; many clients saturate the station at 1/S
    assert _mva(1, 1.0, 10.0) == pytest.approx((1 / 11, 1.0))
    assert _mva(200, 1.0, 10.0)[0] == pytest.approx(1.0, rel=1e-9)


def test_erlang_loss_blocking() -> None:
    # M/G/c/c (capacity = 0 waiting slots): the blocked fraction is Erlang B, whatever the
    # service distribution (insensitivity; here lognormal with cv 2). 1M offered requests:
    # s.e. 0.3% over 8 seeds; tolerance 2%.
    c, load = 2, 2.0
    b = (load**c / math.factorial(c)) / sum(load**k / math.factorial(k) for k in range(c + 1))
    lam = load * MU
    d = run(station(_poisson(lam), {"dist": "lognormal", "mean": SERVICE_NS, "cv": 2.0}, duration_s=1e6 / lam,
                    cores=c, capacity=0)).to_dict()
    f, r = d["flows"]["f"], d["resources"]["s"]
    assert f["dropped"] / f["created"] == pytest.approx(b, rel=0.02)
    assert r["dropped"] == f["dropped"]
    assert r["mean_queue"] == 0.0
