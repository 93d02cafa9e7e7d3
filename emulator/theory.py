"""Closed-form queueing theory, and the models of vemu it covers.

The engine is checked against results that are known exactly. This module holds them, in
plain Python, with their formulas and references, and :func:`predict` recognises the
experiments they apply to. Units are whatever the caller uses, consistently (rates per
second with times in seconds, or rates per microsecond with times in microseconds).

Single stations (Poisson arrivals at rate λ, mean service m = 1/μ, load ρ = λm):

- **M/M/1**: sojourn T ~ Exp(μ - λ), so E[T] = 1/(μ - λ), E[Wq] = ρ/(μ - λ), and the
  p-quantile of T is -ln(1 - p)/(μ - λ) (Kleinrock, *Queueing Systems* vol. 1, 1975, §3.2).
- **M/G/1** by Pollaczek–Khinchine: E[Wq] = λ E[S²] / (2(1 - ρ)), E[T] = E[Wq] + m
  (Kleinrock vol. 1, eq. 5.105). E[S²] = m²(1 + cv²): 2m² for exponential, m² for fixed
  (**M/D/1**), m²(1 + cv²) for lognormal and uniform.
  A time drawn per byte is taken as the engine holds the bytes, rounded half up to a whole
  byte and capped at 2^32 - 1 (:func:`bytes_moments`): exponential bytes of a mean near
  a byte, or past 1e9, are then M/G/1, not M/M/1.
- **M/M/c** by Erlang C: with a = λ/μ and ρ = a/c, P(wait) = C(c, a) =
  [a^c/(c!(1-ρ))] / [Σ_{k<c} a^k/k! + a^c/(c!(1-ρ))], E[Wq] = C/(cμ - λ)
  (Kleinrock vol. 1, §3.5; Gross & Harris, *Fundamentals of Queueing Theory*, §2.3). Under
  FIFO the wait is 0 with probability 1 - C, else Exp(cμ - λ), independent of the
  customer's own Exp(μ) service, which gives the sojourn's quantiles.

Networks:

- **Jackson tandem**: stations in series fed by one Poisson stream, each with exponential
  service, behave as independent M/M/c queues at the same λ (Jackson 1957; Burke's output
  theorem), so mean sojourns add. For M/M/1 stations a customer's sojourns at the
  stations are independent (Reich 1957), so the end-to-end sojourn is a sum of
  independent exponentials (a hypoexponential) and its quantiles are exact. Pure delays
  (infinite servers) keep a Poisson stream Poisson and add their mean.
- **Closed networks** (Gordon & Newell 1967; BCMP 1975): N clients cycle through
  queueing stations in series (FIFO, exponential service, c_k servers, mean demand D_k)
  and a delay station Z (think time and pure delays; any distribution, a delay station is
  insensitive). The state probabilities have product form, ∝ Z^{j_0}/j_0! · Π_k
  D_k^{j_k}/Π_{i≤j_k} min(i, c_k); their normalising constants come from convolving the
  stations (Buzen 1973), in log space, and give the throughput X = G(N-1)/G(N) and each
  station's mean queue, response and utilisation: the numbers exact mean value analysis
  computes (Reiser & Lavenberg 1980; Lazowska et al., *Quantitative System Performance*,
  1984, ch. 6 and §8.3). For one single-server station it is MVA's recursion
  R(n) = D (1 + Q(n-1)), X(n) = n / (R(n) + Z), Q(n) = X(n) R(n). A station with a server
  for every client never queues, so it too may have any service distribution.
- **Non-preemptive priorities at one M/G/1 server** by Cobham's formula (Cobham 1954;
  Kleinrock vol. 2, 1976, eq. 3.30): classes k = 1 (highest) .. K, W0 = Σ λ_i E[S_i²]/2,
  σ_k = Σ_{i≤k} ρ_i, E[Wq_k] = W0 / ((1 - σ_{k-1})(1 - σ_k)). Classes of equal priority
  share a FIFO queue and form one level.
- **Preemptive-resume priorities at one M/G/1 server** (stages with `preempt = true`;
  Kleinrock vol. 2, 1976, ch. 3; Harchol-Balter 2013, ch. 32): a class sees only the
  load of its own and higher levels, and its service stretches by the higher levels'
  arrivals during it: E[T_k] = E[S_k]/(1 - σ_{k-1}) + R_k/((1 - σ_{k-1})(1 - σ_k)) with
  R_k = Σ_{i≤k} λ_i E[S_i²]/2. It holds when every level but the lowest preempts (a
  level's `preempt` only acts on the levels below it).

Interrupt throttling (a stage with ``throttle_us``, as a NIC's ITR):

- **A throttled stage under Poisson arrivals**: services begin at least G apart, each
  taking everything waiting. When a unit is always free as a gap ends (fixed service
  S <= G) and the batch limit is not reached, the service starts form a renewal process:
  after one, the next comes at G if a request arrived meanwhile, else at the next arrival,
  an Exp(λ) later by memorylessness, so the mean cycle is m = G + e^(-λG)/λ and the
  service rate 1/m. The requests arriving inside a gap (a fraction G/m by renewal-reward)
  wait for its end, uniformly over (0, G); the others start at once: E[W] = G²/(2m), and
  P(W <= w) = 1 - G/m + w/m on [0, G], which gives exact percentiles.

What :func:`predict` covers: one open Poisson flow through stations in series, each a
single FIFO stage on its own resource (c units with exponential service, or one unit with
any service distribution for a single station or the series' last: Burke's theorem makes
its arrivals Poisson; consecutive stages on one single-unit resource, which run to
completion, are one service S1 + S2), plus pure delays; one closed flow through
stations in series (exponential service, or a unit per client) with think time and pure delays; several open Poisson flows each a single stage on one shared
single-unit resource, by priority (non-preemptive, or preemptive resume when every level
above the lowest preempts), and on c units the top level alone when it preempts and its
service is exponential of one mean (M/M/c: it never sees the levels below); one open Poisson flow through one throttled stage (and
the stages its batch carries on through, on the same resource) between pure delays; one
open Poisson flow drawing a mix of classes, each one FIFO stage at one shared station
between pure delays, or none (M/G/1 with the mixture's moments, or M/M/c when every class's
service is exponential of one mean): each class's mean sojourn, W + its own service; and
open Poisson flows whose classes follow fixed routes through stations on several
resources: each class is its own Poisson stream (thinning), each resource a queue of the
streams it serves, an M/M/c where it feeds another station (exponential service of one
mean for every class: Kelly's product form), else, as the last station of every route in
a network without cycles, an M/G/1 by Pollaczek-Khinchine. Work
per page (`per_page`) and a link's frames (`segment_bytes`) of a request whose bytes are
fixed are a constant added to the stage's service. Everything else (batches, queue
capacities, chains of stages on several units, other mixes of request classes, non-exponential
queueing in a closed loop, M/G/c, an M/G/1 station feeding another, one draw of random bytes
feeding several stations, pages or frames of random bytes) is reported as uncovered with
the reason; so is a spec one of the formulas above refuses.
"""

from __future__ import annotations

import argparse
import functools
import graphlib
import math
import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from . import _core
from ._core import Dist, ModelError
from .model import PS_PER_US, Experiment, compile_experiment
from .result import MIN_TAIL_REQUESTS, dumps, thin_tail

# ----------------------------------------------------------------------------- formulas


def _check_rates(lam: float, mean_service: float) -> float:
    if not (lam > 0 and mean_service > 0) or math.isinf(lam) or math.isinf(mean_service):
        raise ModelError(f"need a rate > 0 and a mean service > 0, got {lam!r} and {mean_service!r}")
    return lam * mean_service


def _check_stable(rho: float, what: str) -> None:
    if not rho < 1:
        raise ModelError(f"{what} is unstable: load {float(rho)!r} >= 1")


def mm1_sojourn(lam: float, mean_service: float) -> float:
    """Mean sojourn of M/M/1: 1/(μ - λ) (Kleinrock vol. 1, eq. 3.26)."""
    rho = _check_rates(lam, mean_service)
    _check_stable(rho, "M/M/1")
    return mean_service / (1 - rho)


def mm1_wait(lam: float, mean_service: float) -> float:
    """Mean time in queue of M/M/1: ρ/(μ - λ)."""
    rho = _check_rates(lam, mean_service)
    _check_stable(rho, "M/M/1")
    return rho * mean_service / (1 - rho)


def mm1_sojourn_quantile(lam: float, mean_service: float, p: float) -> float:
    """p-quantile of the M/M/1 sojourn, which is Exp(μ - λ): -ln(1 - p)/(μ - λ)."""
    if not 0 <= p < 1:
        raise ModelError(f"quantile {p!r} is outside [0, 1)")
    return -math.log1p(-p) * mm1_sojourn(lam, mean_service)


def mg1_wait(lam: float, mean_service: float, second_moment: float) -> float:
    """Mean time in queue of M/G/1 by Pollaczek–Khinchine: λ E[S²] / (2(1 - ρ))."""
    rho = _check_rates(lam, mean_service)
    _check_stable(rho, "M/G/1")
    if second_moment < mean_service**2 * (1 - 1e-12):
        raise ModelError(f"E[S²] = {second_moment:g} is below E[S]² = {mean_service**2:g}")
    return lam * second_moment / (2 * (1 - rho))


def mg1_sojourn(lam: float, mean_service: float, second_moment: float) -> float:
    """Mean sojourn of M/G/1 (P-K): λ E[S²] / (2(1 - ρ)) + E[S]."""
    return mg1_wait(lam, mean_service, second_moment) + mean_service


def md1_sojourn(lam: float, service: float) -> float:
    """Mean sojourn of M/D/1: P-K with E[S²] = m², i.e. m + ρ m / (2(1 - ρ))."""
    return mg1_sojourn(lam, service, service * service)


def second_moment(kind: str, mean: float, cv: float = 0.0) -> float:
    """E[X²] of a vemu distribution as the engine draws it: fixed m², exp 2m², uniform
    m²(1 + cv²), lognormal m²(1 + cv²) times :func:`lognormal_tail_factor` (the engine's
    normal draws end at 8.57 sd: a wide lognormal's square loses its far tail)."""
    if kind == "fixed":
        return mean * mean
    if kind == "exp":
        return 2 * mean * mean
    if kind == "uniform":
        return mean * mean * (1 + cv * cv)
    if kind == "lognormal":
        return mean * mean * (1 + cv * cv) * (lognormal_tail_factor(cv) if cv > 0 else 1.0)
    raise ModelError(f"unknown distribution '{kind}'")


# the engine's Box-Muller radius sqrt(-2 ln u) with u a 53-bit uniform in (0, 1]: at most
BOX_MULLER_RMAX = math.sqrt(-2.0 * math.log(2.0 ** -53))


@functools.lru_cache(maxsize=256)
def lognormal_tail_factor(cv: float) -> float:
    """E[e^(2σz)] / e^(2σ²) for the engine's z = r cos θ, θ uniform and r Rayleigh cut at
    BOX_MULLER_RMAX (8.57; the rest of its mass, 2^-53, at the cut): the share of a
    lognormal's nominal E[X²] its draws have, 1 - 3e-4 at cv 30, 1 - 0.005 at cv 100,
    0.885 at cv 1000 (E_θ[e^(t r cos θ)] = I0(t r); the mean's share differs from 1 by
    under 1e-6 at any cv, so it is not corrected)."""
    t = 2.0 * math.sqrt(math.log1p(cv * cv))
    r = np.linspace(0.0, BOX_MULLER_RMAX, 200_001)
    f = np.i0(t * r) * r * np.exp(-r * r / 2 - t * t / 2)
    body = float(np.sum((f[1:] + f[:-1]) * np.diff(r)) / 2)  # trapezoid
    return min(1.0, body + 2.0 ** -53 * float(np.i0(t * BOX_MULLER_RMAX)) * math.exp(-t * t / 2))


def erlang_c(c: int, offered: float) -> float:
    """Erlang C: the probability that an arrival waits in M/M/c with offered load a = λ/μ.

    Computed through the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)), which never
    overflows, and C = B / (1 - ρ(1 - B)) with ρ = a/c."""
    if not isinstance(c, (int, np.integer)) or isinstance(c, bool) or c < 1 or not offered > 0:
        raise ModelError(f"need a whole number of servers c >= 1 and a load a > 0, got c={c!r}, a={offered!r}")
    rho = offered / c
    _check_stable(rho, f"M/M/{c}")
    b = 1.0
    for k in range(1, c + 1):
        b = offered * b / (k + offered * b)
    return b / (1 - rho * (1 - b))


def mmc_wait(lam: float, mean_service: float, c: int) -> float:
    """Mean time in queue of M/M/c: C(c, a)/(cμ - λ)."""
    _check_rates(lam, mean_service)
    a = lam * mean_service
    pw = erlang_c(c, a)
    return pw * mean_service / (c - a)


def mmc_sojourn(lam: float, mean_service: float, c: int) -> float:
    """Mean sojourn of M/M/c: C(c, a)/(cμ - λ) + 1/μ."""
    return mmc_wait(lam, mean_service, c) + mean_service


def mmc_sojourn_quantile(lam: float, mean_service: float, c: int, p: float) -> float:
    """p-quantile of the M/M/c FIFO sojourn: the wait (0 w.p. 1 - C, else Exp(cμ - λ))
    plus an independent Exp(μ) service; solved by bisection on the survival function."""
    _check_rates(lam, mean_service)
    mu, a = 1 / mean_service, lam * mean_service
    pw, gamma = erlang_c(c, a), c / mean_service - lam

    def survival(t: float) -> float:
        if abs(gamma - mu) < 1e-12 * mu:
            both = (1 + mu * t) * math.exp(-mu * t)
        else:
            both = (gamma * math.exp(-mu * t) - mu * math.exp(-gamma * t)) / (gamma - mu)
        return (1 - pw) * math.exp(-mu * t) + pw * both

    return _invert_survival(survival, p, mean_service / (1 - min(a / c, 0.999999)))


def _invert_survival(survival: Any, p: float, scale: float) -> float:
    if not 0 <= p < 1:
        raise ModelError(f"quantile {p!r} is outside [0, 1)")
    lo, hi = 0.0, scale
    while survival(hi) > 1 - p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if survival(mid) > 1 - p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2


# Padé [13/13] coefficients and the 1-norm up to which it is exact to double precision
# (Higham, "The scaling and squaring method for the matrix exponential revisited", 2005)
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
           10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def _exp_bidiagonal_exact(rates: Any, tau: float) -> tuple[Any, Any]:
    """The diagonal and superdiagonal of exp(Q τ) for the generator Q of phases in series
    (Q_ii = -r_i, Q_i,i+1 = r_i, rates ascending), in closed form: e^{-r_i τ}, and the
    chance of being in phase i+1 at τ having started in i, r_i (e^{-r_i τ} - e^{-r_{i+1} τ}) /
    (r_{i+1} - r_i); where the two rates are close (δ = (r_{i+1} - r_i)τ/2 < 1/2) that
    difference cancels, and it is written r_i τ e^{-(r_i + r_{i+1})τ/2} sinh(δ)/δ instead."""
    diag = np.exp(-rates * tau)
    a, b = rates[:-1], rates[1:]
    d = (b - a) * tau / 2
    close = d < 0.5
    dd = np.where(close, d, 1.0)
    near = a * tau * np.exp(-(a + b) * tau / 2) * np.where(dd < 1e-4, 1 + dd * dd / 6, np.sinh(dd) / np.where(dd == 0, 1.0, dd))
    far = a * (np.exp(-a * tau) - np.exp(-b * tau)) / np.where(close, 1.0, b - a)
    return diag, np.where(close, near, far)


def _series_expm(rates: Any, t: float) -> Any:
    """exp(Q t) for the generator Q of exponential phases in series, by scaling and
    squaring with a Padé [13/13] approximant (Higham 2005). Q is upper bidiagonal, so after
    each squaring its diagonal and superdiagonal are set to their closed forms, as Al-Mohy
    and Higham (2009, §2) do for triangular matrices: the entries far from the diagonal
    then carry only the squarings' rounding, relative to the entries themselves (all >= 0)."""
    k = len(rates)
    q = np.diag(-rates) + np.diag(rates[:-1], 1)
    norm = 2 * float(np.max(rates)) * t  # >= the 1-norm of Q t
    s = max(0, math.ceil(math.log2(norm / _THETA13))) if norm > _THETA13 else 0
    a = q * (t / 2.0**s)
    b = _PADE13
    ident = np.eye(k)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * ident)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * ident
    x = np.linalg.solve(v - u, v + u)
    idx = np.arange(k)
    for j in range(s + 1):
        if j:
            x = x @ x
        diag, sup = _exp_bidiagonal_exact(rates, t / 2.0 ** (s - j))
        x[idx, idx] = diag
        x[idx[:-1], idx[1:]] = sup
    return x


def _series_survival(rates: Sequence[float]) -> Any:
    """Survival function of a sum of independent exponentials of any rates (repeated, nearly
    equal or far apart): the chance that a chain through the phases, started in the first,
    has not left the last by t, P(S > t) = e_1' exp(Q t) 1 (a phase-type distribution;
    Neuts 1981, ch. 2), with exp(Q t) by :func:`_series_expm`. Its cost grows with the
    logarithm of (largest rate x t), not with the product as uniformization's does."""
    rs = np.asarray(rates, dtype=float)

    def survival(t: float) -> float:
        if t <= 0:
            return 1.0
        row = _series_expm(rs, t)[0]
        return min(1.0, max(0.0, math.fsum(row)))

    return survival


def hypoexp_quantile(rates: Sequence[float], p: float, shift: float = 0.0) -> float:
    """p-quantile of shift + a sum of independent exponentials of the given rates.

    Survival: equal rates (within 1e-6) are an Erlang; distinct, well separated rates use
    Σ_i e^{-r_i t} Π_{j≠i} r_j/(r_j - r_i); any other mix (some rates repeated, or so close
    that the coefficients above cancel) is the phase-type form e_1' exp(Q t) 1
    (:func:`_series_survival`), whose cost does not grow with the spread of the rates."""
    rs = [float(r) for r in rates]
    if not rs or any(not r > 0 or math.isinf(r) for r in rs):
        raise ModelError("need at least one rate, all > 0")
    rs.sort()
    survival: Any
    if rs[-1] - rs[0] <= 1e-6 * rs[0]:
        k, r = len(rs), rs[0]

        def survival(t: float) -> float:
            term, acc = 1.0, 1.0
            for i in range(1, k):
                term *= r * t / i
                acc += term
            return math.exp(-r * t) * acc
    else:
        coef: list[float] | None = []
        if any(b - a <= 1e-6 * a for a, b in zip(rs, rs[1:])):
            coef = None  # a repeated rate: the partial fractions below do not exist
        else:
            for i, ri in enumerate(rs):
                c = 1.0
                for j, rj in enumerate(rs):
                    if j != i:
                        c *= rj / (rj - ri)
                coef.append(c)
            if sum(abs(c) for c in coef) > 1e6:  # they would cancel to below 1e-10 of precision
                coef = None
        if coef is None:
            survival = _series_survival(rs)
        else:
            cs = coef

            def survival(t: float) -> float:
                return min(1.0, max(0.0, sum(c * math.exp(-r * t) for c, r in zip(cs, rs))))

    return shift + _invert_survival(survival, p, sum(1 / r for r in rs))


@dataclass(frozen=True)
class MVAResult:
    """Exact MVA of a closed single-station loop with N clients."""

    clients: int
    response: float  # mean time at the station (wait + service)
    throughput: float
    queue: float  # mean number at the station
    utilization: float  # busy fraction of each server


@dataclass(frozen=True)
class StationMean:
    """One queueing station of a closed network, in its exact product-form solution."""

    response: float  # mean time per visit (wait + service)
    queue: float  # mean number present
    utilization: float  # busy fraction of each server


@dataclass(frozen=True)
class NetworkResult:
    """Exact solution of a closed network of N clients: each cycle visits every station
    once, then the delay station (think time and pure delays)."""

    clients: int
    throughput: float  # cycles per unit of time
    response: float  # mean time per cycle at the queueing stations (the delay excluded)
    stations: tuple[StationMean, ...]


def _log_factors(clients: int, demand: float, servers: float) -> Any:
    """log f(j), j = 0..N, of a station whose rate is min(j, c)/D with j present:
    f(j) = D^j / Π_{i<=j} min(i, c); c = inf is a delay station, f(j) = D^j / j!."""
    j = np.arange(clients + 1, dtype=float)
    if demand == 0:
        out = np.full(clients + 1, -np.inf)
        out[0] = 0.0
        return out
    # log Π_{i<=j} min(i, c) = ln Γ(min(j, c) + 1) + (j - c)⁺ ln c, in closed form: a running
    # sum of the logs would gather ~N·ε·(its size) of rounding, 10⁻⁶ at N = 10⁵
    low = np.minimum(j, servers)
    lgam = np.frompyfunc(math.lgamma, 1, 1)(low + 1).astype(float)
    over = np.maximum(j - servers, 0.0) * (math.log(servers) if math.isfinite(servers) else 0.0)
    return j * math.log(demand) - lgam - over


def _log_convolve_station(g: Any, demand: float, servers: int) -> Any:
    """log of g convolved with a station's factors f(j) = D^j / Π_{i<=j} min(i, c), terms
    0..N, without leaving log space (the terms span hundreds of orders of magnitude).

    Beyond j = c the factors are geometric, f(j) = f(c) (D/c)^{j-c}, so the tail
    T(n) = Σ_{j>c} f(j) g(n-j) obeys T(n) = (D/c) T(n-1) + f(c+1) g(n-c-1): a cumulative
    log-sum-exp in blocks (which keeps the exponents it carries small), and the whole
    convolution costs O(N c) rather than O(N²)."""
    n = len(g)
    c = min(servers, n - 1)
    f = _log_factors(n - 1, demand, c)
    h = np.full(n, -np.inf)
    for j in range(c + 1):
        h[j:] = np.logaddexp(h[j:], f[j] + g[: n - j])
    if c + 1 < n:
        lr, carry = math.log(demand / c), -np.inf
        for lo in range(c + 1, n, 4096):
            m = np.arange(lo, min(lo + 4096, n))
            k = (m - lo) * lr
            tail = np.logaddexp.accumulate(f[c + 1] + g[m - c - 1] - k) + k  # the terms from this block
            tail = np.logaddexp(tail, carry + k + lr)  # and T(lo - 1) carried on, times (D/c)^{n-lo+1}
            h[lo:m[-1] + 1] = np.logaddexp(h[lo:m[-1] + 1], tail)
            carry = tail[-1]
    return h


def closed_network(clients: int, stations: Sequence[tuple[float, int]], think: float = 0.0) -> NetworkResult:
    """Exact solution of N clients cycling through FIFO stations with exponential service,
    given as (mean demand D_k, servers c_k), and a delay station of mean ``think`` (any
    distribution: a delay station is insensitive).

    The network has product form (Gordon & Newell 1967; BCMP 1975): the probability of j_k
    clients at station k and j_0 at the delay is ∝ Z^{j_0}/j_0! · Π_k D_k^{j_k}/Π_{i<=j_k}
    min(i, c_k). Its normalising constants G(n), n <= N, come from convolving the stations'
    factors (Buzen 1973), here in log space; then X = G(N-1)/G(N), and station k's
    marginal is p_k(j) = f_k(j) G_{-k}(N-j)/G(N), with G_{-k} the network without k. This
    is what exact mean value analysis computes (Reiser & Lavenberg 1980); for
    load-dependent stations MVA's recursion loses its precision once a station is busy,
    the convolution does not. A station with a server for every client (c_k >= N) is a
    delay: its factors join the delay's, D^j/j! convolved with Z^j/j! being (D + Z)^j/j!.
    Cost O(K² N c) for K queueing stations of up to c servers."""
    ok = clients >= 1 and think >= 0 and not math.isinf(think) and len(stations) >= 1
    ok = ok and all(d > 0 and not math.isinf(d) and c >= 1 and float(c).is_integer() for d, c in stations)
    if not ok:
        raise ModelError(f"need clients >= 1, think >= 0 and stations of demand > 0 and a whole number of servers >= 1; got "
                         f"{clients}, {think!r}, {list(stations)!r}")
    queueing = [i for i, (_, c) in enumerate(stations) if c < clients]
    delay = _log_factors(clients, think + math.fsum(d for d, c in stations if c >= clients), math.inf)

    def without(skip: int | None) -> Any:
        g = delay
        for i in queueing:
            if i != skip:
                g = _log_convolve_station(g, stations[i][0], int(stations[i][1]))
        return g

    log_g = without(None)
    x = math.exp(log_g[clients - 1] - log_g[clients])
    means = []
    for i, (d, c) in enumerate(stations):
        if c >= clients:  # with a server for every client nothing waits: the response is the demand
            means.append(StationMean(d, x * d, x * d / c))
            continue
        p = np.exp(_log_factors(clients, d, c) + without(i)[::-1] - log_g[clients])
        q = math.fsum(np.arange(clients + 1) * p)
        means.append(StationMean(q / x, q, x * d / c))
    return NetworkResult(clients, x, math.fsum(m.response for m in means), tuple(means))


def mva_closed(clients: int, demand: float, think: float = 0.0, *, servers: int = 1) -> MVAResult:
    """Exact mean value analysis of N clients cycling through one FIFO exponential station
    (mean service ``demand``, ``servers`` units) and a delay of mean ``think``: the loop is
    :func:`closed_network` with one station. With one server this is MVA's recursion
    R(n) = D(1 + Q(n-1)), X(n) = n/(R(n) + Z), Q(n) = X(n) R(n) (Reiser & Lavenberg 1980);
    with c the station's rate is min(j, c)/D with j present, where MVA's own recursion for a
    load-dependent station (Lazowska et al. 1984, §8.3) takes p(0 | n) = 1 - Σ_{j>=1}
    p(j | n), which cancels catastrophically once the station is busy (N = 512, c = 8,
    Z = 60 D gave throughput 2.6% and response 38% off); the convolution does not."""
    net = closed_network(clients, [(demand, servers)], think)
    st = net.stations[0]
    return MVAResult(clients, st.response, net.throughput, st.queue, st.utilization)


def cobham_waits(rates: Sequence[float], means: Sequence[float], second_moments: Sequence[float]) -> list[float]:
    """Mean queueing delay of each class at one non-preemptive priority M/G/1 server,
    classes given highest priority first: W0 / ((1 - σ_{k-1})(1 - σ_k)) with
    W0 = Σ λ_i E[S_i²]/2 and σ_k the load of classes 1..k (Cobham 1954)."""
    if not (len(rates) == len(means) == len(second_moments)) or not rates:
        raise ModelError("need one rate, mean and second moment per class")
    w0 = sum(lam * s2 for lam, s2 in zip(rates, second_moments)) / 2
    out, sigma = [], 0.0
    for lam, m in zip(rates, means):
        prev = sigma
        sigma += lam * m
        _check_stable(sigma, "the priority queue")
        out.append(w0 / ((1 - prev) * (1 - sigma)))
    return out


def preemptive_sojourns(rates: Sequence[float], means: Sequence[float],
                        second_moments: Sequence[float]) -> list[float]:
    """Mean sojourn time of each class at one preemptive-resume priority M/G/1 server,
    classes given highest priority first: E[S_k]/(1 - σ_{k-1}) + R_k/((1 - σ_{k-1})(1 - σ_k))
    with R_k = Σ_{i≤k} λ_i E[S_i²]/2 (Kleinrock vol. 2, eq. 3.65)."""
    if not (len(rates) == len(means) == len(second_moments)) or not rates:
        raise ModelError("need one rate, mean and second moment per class")
    out, sigma, r = [], 0.0, 0.0
    for lam, m, s2 in zip(rates, means, second_moments):
        prev = sigma
        sigma += lam * m
        r += lam * s2 / 2
        _check_stable(sigma, "the priority queue")
        out.append(m / (1 - prev) + r / ((1 - prev) * (1 - sigma)))
    return out


# ----------------------------------------------------------------------------- recognising models

@dataclass
class StationPrediction:
    """One queueing station (a resource), times in microseconds."""

    name: str
    model: str  # "M/M/1", "M/G/1", "M/M/4", "M/G/1 priority 2", "closed MVA" ...
    utilization: float
    mean_wait_us: float
    mean_sojourn_us: float  # wait + service
    flow: str | None = None  # for priority classes: the flow this row is about
    stage: int | None = None  # index of the stage in the compiled spec
    chain: tuple[int, ...] = ()  # later stages run to completion with it (their times add to the sojourn)
    mean_service_us: float | None = None  # the station's mean service over all it serves (None: sojourn - wait)
    service_scv: float | None = None  # its squared coefficient of variation, E[S²]/E[S]² - 1 (None: unknown)


@dataclass
class FlowPrediction:
    name: str
    throughput_per_s: float
    mean_us: float  # mean sojourn (end-to-end latency)
    p99_us: float | None = None
    p999_us: float | None = None
    of_flow: str | None = None  # set for one class of a flow's mix (name FLOW/CLASS): the flow
    request_class: str | None = None  # and the class


@dataclass
class Prediction:
    """What theory says about an experiment: per flow and per station."""

    model: str
    flows: list[FlowPrediction]
    stations: list[StationPrediction] = field(default_factory=list)
    # a sleeping station's wake-ups: the share from each idle state, shallowest first
    wake_shares: list[float] | None = None

    def flow(self, name: str) -> FlowPrediction:
        for f in self.flows:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Uncovered(Exception):
    pass


def _moments(d: Dist) -> tuple[float, float]:
    kind, mean, cv = d
    return mean, second_moment(kind, mean, cv)


@dataclass
class _Svc:
    """A stage's service time (ps): mean, second moment, and whether it is exponential;
    ``drawn_at``: the stage whose draw of the request's bytes the time depends on, when
    those bytes are random (two stations of one draw have correlated times)."""

    mean: float
    m2: float
    exp: bool
    kind: str  # M, D or G
    drawn_at: int | None = None
    chain: tuple[int, ...] = ()  # later stages run to completion with this one, as one service
    draws: tuple[int, ...] = ()  # every draw of random bytes the (merged) time depends on

    def drawn(self) -> set[int]:
        """The draws of random bytes this time depends on (a merged service's, all)."""
        return set(self.draws) | ({self.drawn_at} if self.drawn_at is not None else set())


_BYTES_EXACT_SUM = 1 << 16  # bytes counts summed term by term; above, the tail as an integral
_BYTES_CLOSE = 1e-6  # rounding and cap below this relative change keep the distribution's own form


def _survival(d: Dist) -> tuple[Any, Any]:
    """(S, I) for a random bytes distribution as the engine samples it: S(y) = P(X >= y) on an
    array, and I(c) = (E[min(X, c)], E[min(X, c)^2]) in closed form."""
    kind, m, cv = d
    if kind == "exp":
        return (lambda y: np.exp(-y / m),
                lambda c: (m * -math.expm1(-c / m), 2 * m * m * (1 - math.exp(-c / m) * (1 + c / m))))
    if kind == "lognormal":
        s2 = math.log1p(cv * cv)
        mu, sig = math.log(m) - s2 / 2, math.sqrt(s2)
        erfc = np.frompyfunc(math.erfc, 1, 1)

        def upper(y: Any) -> Any:
            z = (np.log(np.maximum(y, 1e-300)) - mu) / (sig * math.sqrt(2))
            return np.where(y > 0, 0.5 * np.asarray(erfc(z), dtype=float), 1.0)

        def partial(c: float) -> tuple[float, float]:
            tail = float(upper(np.array(c)))
            phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # noqa: E731
            lc = math.log(c)
            return (math.exp(mu + s2 / 2) * phi((lc - mu - s2) / sig) + c * tail,
                    math.exp(2 * mu + 2 * s2) * phi((lc - mu - 2 * s2) / sig) + c * c * tail)
        return upper, partial
    if kind == "uniform":
        half = m * cv * math.sqrt(3)
        lo, w = m - half, 2 * half

        def partial_u(c: float) -> tuple[float, float]:
            if c <= lo:
                return c, c * c
            x = min(c, lo + w)
            return (x - (x - lo) ** 2 / (2 * w),
                    lo * lo + ((lo + w) * (x * x - lo * lo) - 2 / 3 * (x**3 - lo**3)) / w)
        return (lambda y: np.clip((lo + w - y) / w, 0.0, 1.0)), partial_u
    raise ModelError(f"unknown distribution '{kind}'")


def bytes_moments(d: Dist) -> tuple[float, float, bool]:
    """(E[B], E[B^2], close) of a request's bytes B as the engine holds them: the drawn value X
    rounded half up to a whole byte and capped at 2^32 - 1 (VEMU_MAX_BYTES), so a mean of a
    byte or two, or a tail past 4 GiB, is not the distribution as written. ``close``: both
    moments within 1e-6 of the written distribution's (then its form, e.g. exponential,
    stands for percentiles too).

    E[B] = sum_{k=1}^{C} P(X >= k - 1/2) and E[B^2] = sum_{k=1}^{C} (2k - 1) P(X >= k - 1/2),
    summed term by term up to 2^16 and as the integrals of P(X >= y) and 2y P(X >= y) beyond
    (closed forms), whose error against the sum is a 24th of the density's change there."""
    kind, m, cv = d
    cap = _core.LIMITS["bytes"]
    if kind == "fixed" or cv == 0 and kind != "exp":
        b = 0.0 if not m > 0 else cap if m >= cap else float(math.floor(m + 0.5))
        return b, b * b, b == m
    if not m > 0:
        return 0.0, 0.0, True
    upper, partial = _survival(d)
    k = np.arange(1, min(cap, _BYTES_EXACT_SUM) + 1, dtype=float)
    s = upper(k - 0.5)
    e1, e2 = float(np.sum(s)), float(np.sum((2 * k - 1) * s))
    if cap > _BYTES_EXACT_SUM:
        (a1, a2), (b1, b2) = partial(float(_BYTES_EXACT_SUM)), partial(cap)
        e1, e2 = e1 + b1 - a1, e2 + b2 - a2
    w2 = second_moment(kind, m, cv)
    return e1, e2, abs(e1 - m) <= _BYTES_CLOSE * m and abs(e2 - w2) <= _BYTES_CLOSE * w2


def _service(work: Dist, per_byte_ps: float, nbytes: Dist | None, drawn_at: int | None = None,
             fixed_extra: float = 0.0) -> _Svc:
    """The service time of work plus per_byte_ps per byte of ``nbytes`` (drawn at stage
    ``drawn_at``) plus a fixed ``fixed_extra`` (ps; a constant number of pages or frames)."""
    svc = _service_of(work, per_byte_ps, nbytes, drawn_at)
    if fixed_extra > 0:  # a constant added: the variance stays, the form is lost (unless it had none)
        m = svc.mean + fixed_extra
        svc = _Svc(m, svc.m2 - svc.mean**2 + m * m, False, "D" if svc.kind == "D" or svc.mean == 0 else "G",
                   svc.drawn_at)
    return svc


def _service_of(work: Dist, per_byte_ps: float, nbytes: Dist | None, drawn_at: int | None) -> _Svc:
    m, m2 = _moments(work)
    var = m2 - m * m
    if per_byte_ps > 0 and nbytes is not None and nbytes[1] > 0:
        bm, bm2, close = bytes_moments(nbytes)
        m += per_byte_ps * bm
        var += per_byte_ps**2 * (bm2 - bm * bm)
        rnd = nbytes[0] != "fixed"
        at = drawn_at if rnd else None
        if rnd and work[1] == 0:
            is_exp = nbytes[0] == "exp" and close
            return _Svc(m, var + m * m, is_exp, "M" if is_exp else "G", at)
        return _Svc(m, var + m * m, False, "D" if work[0] == "fixed" and not rnd else "G", at)
    kind = {"exp": "M", "fixed": "D"}.get(work[0], "G")
    if work[0] in ("lognormal", "uniform") and work[2] == 0:
        kind = "D"
    return _Svc(m, m2, work[0] == "exp", kind)


def _fixed_bytes(nbytes: Dist | None) -> float | None:
    """The bytes a request holds when ``nbytes`` does not vary (rounded and capped as the
    engine holds them), else None."""
    if nbytes is None or not nbytes[1] > 0:
        return 0.0
    if nbytes[0] == "fixed" or nbytes[2] == 0 and nbytes[0] != "exp":
        return bytes_moments(nbytes)[0]
    return None


def _page_work(c: Any, si: int, nbytes: Dist | None) -> float:
    """The fixed work (ps) a paged stage adds for its pages (a cpu stage's `per_page`) or
    frames beyond the first (a link's `segment_bytes`): per_page_ps x ceil((bytes -
    unpaged) / page_bytes) when the request's bytes are fixed; random bytes make it a step
    function of them, which theory does not take moments of."""
    row = c.spec.stages[si]
    paged = row[8] if len(row) > 8 else None
    if not paged:
        return 0.0
    per_page, page_bytes, unpaged = paged
    b = _fixed_bytes(nbytes)
    if b is None:
        q = row[0]
        res = c.resources[c.spec.qclasses[q][0]] if q >= 0 else None
        if res is not None and res.kind == "link":
            raise _Uncovered(f"link '{res.name}' sends a request of random bytes as frames of at most "
                             f"{page_bytes:g} B (`segment_bytes`), each paying its overhead_bytes: its time is a "
                             "step function of the bytes, which theory does not take moments of")
        raise _Uncovered(f"stage '{c.stages[si].name}' charges work per page (`per_page`) of random bytes: its "
                         "service time is a step function of the bytes, which theory does not take moments of")
    return per_page * math.ceil(max(b - unpaged, 0.0) / page_bytes)


def _analyse(exp: Experiment) -> Prediction:
    c = compile_experiment(exp)  # a spec that does not compile is bad input: its error names the file and key
    try:
        return _analyse_compiled(c)
    except ModelError as e:  # a formula refusing what the recognisers let through: say so, do not fail
        raise _Uncovered(f"theory's formulas do not apply ({e.detail})") from e


def _analyse_compiled(c: Any) -> Prediction:
    spec = c.spec
    if not spec.flows:
        raise _Uncovered("the experiment has no flows")
    visited = {spec.qclasses[st[0]][0] for st in spec.stages if st[0] >= 0}
    for ri in sorted(visited):
        if spec.resources[ri][1] >= 0:
            raise _Uncovered(f"resource '{c.resources[ri].name}' has a finite capacity (losses)")
    for si, row in enumerate(spec.stages):
        if len(row) > 7 and row[7]:
            raise _Uncovered(f"stage '{c.stages[si].name}' forks detached work (`fork`): its load is the "
                             "flow's, but it is not a station of the request's path")
    if any(len(spec.resources[ri]) > 2 for ri in visited):
        return _sleeping(c)
    if any(len(row) > 3 and row[3] > 0 for row in spec.qclasses):
        return _throttled(c)
    for qi, row in enumerate(spec.qclasses):
        ri, batch = row[0], row[2]
        if batch > 1:
            raise _Uncovered(f"resource '{c.resources[ri].name}' serves batches of {batch}")
        if len(row) > 3 and row[3] > 0:
            raise _Uncovered(f"resource '{c.resources[ri].name}' has a throttled stage (throttle_us)")
    streams = _independent_streams(c)
    if streams is not None:
        return streams
    if len(spec.flows) == 1 and spec.flows[0][5] > 1 and not spec.flows[0][0] and spec.flows[0][1][0] == "exp":
        return _class_mix(c, 0)
    for fi, fl in enumerate(spec.flows):
        if fl[5] != 1:
            raise _Uncovered(f"flow '{c.flows[fi]}' mixes {fl[5]} request classes (theory covers a mix under one "
                             "open Poisson flow alone on the host)")
    closed = [fi for fi, fl in enumerate(spec.flows) if fl[0]]
    if closed and len(spec.flows) > 1:
        raise _Uncovered("closed and open flows, or several closed flows, share the host")
    if closed:
        return _closed(c, closed[0])
    for fi, fl in enumerate(spec.flows):
        if fl[1][0] != "exp":
            raise _Uncovered(f"flow '{c.flows[fi]}' does not have Poisson arrivals")
    if len(spec.flows) == 1:
        return _open_series(c, 0)
    return _priority(c)


def _walk(c: Any, fi: int, k: int | None = None) -> list[tuple[int, int | None, _Svc | None, Dist]]:
    """The stages of flow fi's only class (or of class k): (stage index, resource or None,
    service, delay)."""
    spec = c.spec
    first_class = spec.flows[fi][4] if k is None else k
    first, n, _ = spec.classes[first_class]
    out: list[tuple[int, int | None, _Svc | None, Dist]] = []
    nbytes: Dist | None = None
    drawn_at: int | None = None
    prev_res: int | None = None
    seen: set[int] = set()
    for si in range(first, first + n):
        q, _cat, work, pb, delay, draw, b = spec.stages[si][:7]
        if draw:
            nbytes, drawn_at = b, si
        if q < 0:
            out.append((si, None, None, delay))
            prev_res = None
            continue
        ri = spec.qclasses[q][0]
        if ri == prev_res:
            # the engine keeps the unit for the next stage (run to completion): with one unit
            # and one queue for both, the two services are one, S = S1 + S2 (independent draws)
            psi, _, first_svc, _ = out[-1]
            svc = _service(work, pb, nbytes if pb > 0 else None, drawn_at, _page_work(c, si, nbytes))
            if (spec.resources[ri][0] != 1 or spec.stages[psi][0] != q or spec.qclasses[q][2] != 1
                    or spec.qclasses[q][3] != 0 or first_svc is None
                    or first_svc.drawn() & svc.drawn()):
                raise _Uncovered(f"consecutive stages on '{c.resources[ri].name}' run to completion as one service "
                                 "(covered with one unit and one queue for both, their times independent)")
            out[-1] = (psi, ri, _chained(first_svc, svc, si), delay)
            prev_res = ri if delay[1] == 0 else None
            continue
        if ri in seen:
            raise _Uncovered(f"the flow visits resource '{c.resources[ri].name}' more than once")
        seen.add(ri)
        prev_res = ri if delay[1] == 0 else None
        if delay[1] > 0 and si + 1 < first + n:
            nq = spec.stages[si + 1][0]
            if nq >= 0 and spec.qclasses[nq][0] == ri:
                raise _Uncovered(f"the flow visits resource '{c.resources[ri].name}' more than once")
        out.append((si, ri, _service(work, pb, nbytes if pb > 0 else None, drawn_at, _page_work(c, si, nbytes)),
                    delay))
    return out


def _chained(a: _Svc, b: _Svc, stage: int) -> _Svc:
    """Two independent service times served back to back as one: means add, and
    E[(A + B)²] = E[A²] + 2 E[A] E[B] + E[B²]."""
    draws = tuple(sorted(a.drawn() | b.drawn()))
    if b.mean == 0:
        return dataclasses.replace(a, chain=a.chain + (stage,), draws=draws)
    if a.mean == 0:
        return dataclasses.replace(b, chain=a.chain + (stage,), draws=draws)
    kind = "D" if a.kind == b.kind == "D" else "G"
    return _Svc(a.mean + b.mean, a.m2 + 2 * a.mean * b.mean + b.m2, False, kind,
                a.drawn_at if a.drawn_at is not None else b.drawn_at, a.chain + (stage,), draws)


def _independent_services(c: Any, queues: list[tuple[int, int | None, _Svc | None, Dist]]) -> None:
    """Product form needs a request's service times at the stations to be independent: two
    stations that both take their time from one draw of the request's random bytes are not
    (bytes drawn by separate path steps are independent draws)."""
    by_draw: dict[int, list[str]] = {}
    for _, ri, svc, _ in queues:
        if svc is not None and ri is not None:
            for d in svc.drawn():
                by_draw.setdefault(d, []).append(c.resources[ri].name)
    for shared in by_draw.values():
        if len(shared) > 1:
            raise _Uncovered(f"stations '{shared[0]}' and '{shared[1]}' take their times from the same random "
                             "bytes (correlated service times)")


def _delay_parts(d: Dist) -> tuple[float, float | None, bool]:
    """A pure delay's contribution to a sojourn: (mean ps, exp rate or None, quantile-known)."""
    kind, mean, _ = d
    if mean == 0:
        return 0.0, None, True
    if kind == "fixed":
        return mean, None, True
    if kind == "exp":
        return mean, 1 / mean, True
    return mean, None, False


def idle_state_probabilities(lam: float, residencies: Sequence[float]) -> list[float]:
    """Which idle state a unit sleeps in, under Poisson arrivals at rate ``lam``: its
    prediction is its previous idle period, Exp(lam) in an M/G/1 queue, and it takes the
    deepest state whose target residency that reaches (the shallowest at least)."""
    if lam <= 0 or not residencies or any(b < a for a, b in zip(residencies, residencies[1:])):
        raise ModelError("need a rate > 0 and target residencies in non-decreasing order")
    out = []
    for k in range(len(residencies)):
        lo = math.exp(-lam * residencies[k]) if k else 1.0
        hi = math.exp(-lam * residencies[k + 1]) if k + 1 < len(residencies) else 0.0
        out.append(lo - hi)
    return out


def setup_moments(lam: float, states: Sequence[tuple[float, float]], poll: float = 0.0) -> tuple[float, float]:
    """E[D] and E[D²] of the wake-up from idle states ((exit latency, target residency), in
    one time unit, shallowest first) under Poisson arrivals at rate ``lam`` (per that unit).
    A unit that polls for ``poll`` before it sleeps wakes only when its idle period outlasts
    the poll, with probability e^(-λ poll), independently of the state it then sleeps in
    (chosen from the previous idle period)."""
    probs = idle_state_probabilities(lam, [r for _, r in states])
    asleep = math.exp(-lam * poll)
    return (asleep * sum(p * e for p, (e, _) in zip(probs, states)),
            asleep * sum(p * e * e for p, (e, _) in zip(probs, states)))


def setup_wait(lam: float, mean_service: float, second_moment: float, d1: float, d2: float) -> float:
    """Mean wait in an M/G/1 queue whose server, on finding work after an idle period,
    first spends a setup time D (here: waking from an idle state) with E[D] = d1 and
    E[D²] = d2: the Pollaczek-Khinchine wait plus (2 E[D] + λ E[D²]) / (2 (1 + λ E[D]))
    (Welch 1964's exceptional first service; Takagi 1991, vol. 1, M/G/1 with setup times).
    An arrival to an idle server waits D; arrivals during a setup wait out its rest."""
    if d1 < 0 or d2 < d1 * d1 * (1 - 1e-12):
        raise ModelError(f"E[D] = {d1:g}, E[D²] = {d2:g} are not the moments of a setup time")
    if mean_service == 0:  # work of no length still waits for the unit to wake: no P-K term
        _check_rates(lam, 1.0)
        pk = 0.0
    else:
        pk = mg1_wait(lam, mean_service, second_moment)
    return pk + (2 * d1 + lam * d2) / (2 * (1 + lam * d1))


def setup_cycle(lam: float, mean_service: float, d1: float, poll: float = 0.0) -> tuple[float, float, float]:
    """An M/G/1 queue with setup times: (the fraction of time its server sleeps, wake-ups per
    unit time, the fraction it polls). A cycle is an idle period (mean 1/λ), a setup and a
    busy period; every arrival of a cycle is served in it, so E[cycle] = (1/λ + E[D]) /
    (1 - ρ). A server that polls for ``poll`` before sleeping polls E[min(I, poll)] =
    (1 - e^(-λ poll)) / λ of each idle period and sleeps (and wakes) only past it."""
    rho = lam * mean_service
    _check_stable(rho, "M/G/1 with setup times")
    cycle = (1 / lam + d1) / (1 - rho)
    asleep = math.exp(-lam * poll)
    return asleep / lam / cycle, asleep / cycle, (1 - asleep) / lam / cycle


def _sleeping(c: Any) -> Prediction:
    """One open Poisson flow through one station whose single unit has idle states: an
    M/G/1 queue with setup times, the setup being the exit latency of the state the unit
    slept in (chosen from its previous idle period, which is Exp(λ) and independent of
    the busy period that follows, so the setups are i.i.d.)."""
    spec = c.spec
    if len(spec.flows) != 1 or spec.flows[0][0] or spec.flows[0][5] != 1 or spec.flows[0][1][0] != "exp":
        raise _Uncovered("a resource with idle states is covered only under one open Poisson flow of one request "
                         "class (no background flows)")
    if any(row[2] > 1 or (len(row) > 3 and row[3] > 0) for row in spec.qclasses):
        raise _Uncovered("idle states together with batches or throttles")
    walk = _walk(c, 0)
    on = [w for w in walk if w[1] is not None]
    if len(on) != 1:
        raise _Uncovered("idle states are covered for a flow with one station (the sleeping one) and pure delays")
    si, ri, svc, delay = on[0]
    assert ri is not None and svc is not None
    units, _cap, states, _wake, *halt = spec.resources[ri]
    poll = float(halt[0]) if halt else 0.0
    name = c.resources[ri].name
    if units != 1:
        raise _Uncovered(f"station '{name}' has {units} units with idle states: no closed form for c > 1")
    lam = 1 / spec.flows[0][1][1]  # per ps
    rho = lam * svc.mean
    if rho >= 1:
        raise _Uncovered(f"station '{name}' is overloaded: load {rho:.3g} >= 1")
    d1, d2 = setup_moments(lam, [(float(e), float(r)) for e, r in states], poll)
    wait = setup_wait(lam, svc.mean, svc.m2, d1, d2)
    idle, _rate, polling = setup_cycle(lam, svc.mean, d1, poll)
    delay_mean = sum(_delay_parts(w[3])[0] for w in walk)
    # busy = working or waking; a unit that halt-polls is not busy (the engine charges the
    # polling to `poll` and reports it apart from the utilization)
    station = StationPrediction(name, f"M/{svc.kind}/1 with setup (idle states)", 1 - idle - polling, wait / PS_PER_US,
                                (wait + svc.mean) / PS_PER_US, stage=si, chain=svc.chain, service_scv=_scv(svc.mean, svc.m2))
    flow = FlowPrediction(c.flows[0], lam * 1e12, (delay_mean + wait + svc.mean) / PS_PER_US)
    # which state each wake-up leaves, named by its exit latency (the compiled model keeps no names)
    probs = idle_state_probabilities(lam, [float(r) for _, r in states])
    shares = ", ".join(f"{e / PS_PER_US:g} us {p:.1%}" for (e, _), p in zip(states, probs))
    return Prediction(f"M/{svc.kind}/1 with setup times: wake-ups from idle states (mean {d1 / PS_PER_US:.4g} us; "
                      f"each wake-up's state by its exit latency: {shares})", [flow], [station], wake_shares=probs)


def throttle_cycle(lam: float, gap: float) -> float:
    """Mean time between the services of a throttled stage under Poisson arrivals at rate
    ``lam`` with gap ``gap`` (any one time unit), when a unit is always free at the gap's
    end: after a service the next comes at ``gap`` if a request arrived meanwhile, else at
    the next arrival, an Exp(lam) later (memorylessness). A renewal cycle of mean
    gap + exp(-lam gap) / lam."""
    if not lam > 0 or gap < 0:
        raise ModelError("need an arrival rate > 0 and a gap >= 0")
    return gap + math.exp(-lam * gap) / lam


def throttle_wait(lam: float, gap: float) -> tuple[float, float]:
    """(mean wait, fraction that waits) at a throttled stage: the requests arriving inside a
    gap (a fraction gap / m of all, m the mean cycle) wait for its end, uniformly spread
    over (0, gap); the rest start at once. Mean wait gap^2 / (2 m)."""
    m = throttle_cycle(lam, gap)
    return gap * gap / (2 * m), gap / m


def throttle_wait_quantile(lam: float, gap: float, p: float) -> float:
    """The p-quantile of the wait: P(W <= w) = 1 - gap/m + w/m on [0, gap]."""
    m = throttle_cycle(lam, gap)
    return max(0.0, m * p - m + gap)


def _poisson_tail(mean: float, k: int) -> float:
    """P(N >= k) for N ~ Poisson(mean), with each term e^{-mean} mean^i / i! taken in log
    space (e^{-mean} alone underflows past mean ~745). Below the mode the tail is
    1 - Σ_{i<k}; beyond it the terms fall geometrically, and the tail is summed upwards
    from i = k (no cancellation when it is tiny)."""
    if k <= 0:
        return 1.0
    if not mean > 0:
        return 0.0
    log_mean = math.log(mean)

    def term(i: int) -> float:
        return math.exp(-mean + i * log_mean - math.lgamma(i + 1))

    if k <= mean:  # P(N <= k - 1), its terms falling geometrically downwards from k - 1
        acc, t, i = 0.0, term(k - 1), k - 1
        while t > 1e-17 * acc and i >= 0:
            acc += t
            t *= i / mean
            i -= 1
        return max(0.0, 1.0 - acc)
    acc, t, i = 0.0, term(k), k
    while t > 1e-17 * acc:
        acc += t
        i += 1
        t *= mean / i
    return min(1.0, acc)


def _lanes(row: tuple[Any, ...]) -> int:
    """The queues (lanes) a compiled stage spreads its requests over: 1 without."""
    return int(row[10]) if len(row) > 10 and row[10] > 1 else 1


def _throttled(c: Any) -> Prediction:
    """A throttled stage (an interrupt throttle) fed by one Poisson flow, alone on its
    resource, followed there by the stages its batch carries on through; pure delays may
    come before and after. Services of fixed length S <= G, so a unit is always free when a
    gap ends, and a batch limit Poisson arrivals in a gap exceed with probability < 1e-6.
    With `queues` (L lanes, each request in one drawn from its key) each lane is such a
    throttle fed by a thinned Poisson stream of rate lam / L, given a unit for each lane
    (units >= L: a lane has at most one service in progress, as S <= G)."""
    spec = c.spec
    if len(spec.flows) != 1:
        raise _Uncovered("a throttled stage is covered only with one flow on the host (no background flows)")
    fl = spec.flows[0]
    if fl[0] or fl[5] != 1 or fl[1][0] != "exp":
        raise _Uncovered("a throttled stage is covered only under one open Poisson flow of one request class")
    lam = 1 / fl[1][1]  # per ps
    first, n, _ = spec.classes[fl[4]]
    idx = list(range(first, first + n))
    thr = [si for si in idx if spec.stages[si][0] >= 0 and len(spec.qclasses[spec.stages[si][0]]) > 3
           and spec.qclasses[spec.stages[si][0]][3] > 0]
    if len(thr) != 1:
        raise _Uncovered(f"the flow passes {len(thr)} throttled stages; theory covers one")
    t = thr[0]
    qi = spec.stages[t][0]
    ri, _prio, batch, gap = spec.qclasses[qi][:4]
    name = c.resources[ri].name
    lanes = _lanes(spec.stages[t])
    units = spec.resources[ri][0]
    if units < lanes:
        raise _Uncovered(f"the throttled stage on '{name}' has {lanes} queues but {units} units: a gap may end "
                         "with every unit busy serving other queues")
    chain = [t]
    while chain[-1] + 1 < first + n and spec.stages[chain[-1]][4][1] == 0:
        nq = spec.stages[chain[-1] + 1][0]
        if nq < 0 or spec.qclasses[nq][0] != ri or spec.qclasses[nq][2] < batch or \
                (len(spec.qclasses[nq]) > 3 and spec.qclasses[nq][3] > 0):
            break
        if _lanes(spec.stages[chain[-1] + 1]) != lanes:
            raise _Uncovered(f"the stages after the throttled one on '{name}' have other `queues` than it: its "
                             "batches split")
        chain.append(chain[-1] + 1)
    for si in idx:
        if si in chain:
            work, pb = spec.stages[si][2], spec.stages[si][3]
            paged = len(spec.stages[si]) > 8 and spec.stages[si][8]
            if _service(work, 0.0, None).kind != "D" and work[1] > 0 or pb > 0 or paged:
                raise _Uncovered(f"the throttled stage on '{name}' and the stages its batch carries on through "
                                 "need fixed work and no per-byte or per-page cost (a batch's service must not "
                                 "depend on its size)")
        elif spec.stages[si][0] >= 0:
            raise _Uncovered(f"besides the throttled stage on '{name}' (and the stages its batch carries on "
                             "through) the flow may only have pure delays: a batch leaving it arrives elsewhere "
                             "all at once, which no closed form here covers")
    if sum(1 for q in spec.qclasses if q[0] == ri) != lanes * len({spec.stages[si][0] for si in chain}):
        raise _Uncovered(f"resource '{name}' serves other stages too")
    svc = sum(spec.stages[si][2][1] for si in chain)  # ps, fixed
    if svc > gap:
        raise _Uncovered(f"a service of {svc / PS_PER_US:g} us is longer than the throttle's gap of "
                         f"{gap / PS_PER_US:g} us (a unit may still be busy when the gap ends)")
    lam_all, lam = lam, lam / lanes  # each lane's requests: a thinned Poisson stream
    if _poisson_tail(lam * gap, batch) > 1e-6:
        raise _Uncovered(f"a batch of {batch} is often full within one gap ({lam * gap:.3g} arrivals on average)")
    m = throttle_cycle(lam, gap)
    wait, _ = throttle_wait(lam, gap)
    own = spec.stages[t][2][1]
    delay_mean, delays_fixed = 0.0, True
    for si in idx:
        dm, _rate, _known = _delay_parts(spec.stages[si][4])
        delay_mean += dm
        delays_fixed &= spec.stages[si][4][0] == "fixed" or dm == 0
    per = f", {lanes} queues" if lanes > 1 else ""
    station = StationPrediction(name, f"throttle {gap / PS_PER_US:g} us{per}", lanes * svc / m / units,
                                wait / PS_PER_US, (wait + own) / PS_PER_US, stage=t)
    p99 = p999 = None
    if delays_fixed:
        p99, p999 = ((delay_mean + svc + throttle_wait_quantile(lam, gap, p)) / PS_PER_US for p in (0.99, 0.999))
    flow = FlowPrediction(c.flows[0], lam_all * 1e12, (delay_mean + wait + svc) / PS_PER_US, p99, p999)
    each = f" in {lanes} queues of {1e12 / m:,.0f}" if lanes > 1 else ""
    return Prediction(f"interrupt throttle (renewal: {lanes * 1e12 / m:,.0f} services/s{each})", [flow], [station])


def _fifo_station(name: str, units: int, members: Sequence[tuple[float, _Svc]]) -> tuple[float, str, float, float,
                                                                                          float]:
    """One FIFO station fed by Poisson streams (rate per ps, service): (mean wait, its
    queue's kind, load, the streams' mean service E[S], E[S²]). One unit: M/G/1 by
    Pollaczek-Khinchine on the mixture's moments; c units: M/M/c, only when every stream's
    service is exponential of one mean (a mixture of other means is not exponential)."""
    lam = sum(r for r, _ in members)
    es = sum(r * sv.mean for r, sv in members) / lam
    es2 = sum(r * sv.m2 for r, sv in members) / lam
    rho = lam * es / units
    if rho >= 1:
        raise _Uncovered(f"station '{name}' is overloaded: load {rho:.3g} >= 1")
    if units == 1:
        kinds = {sv.kind for _, sv in members}
        return mg1_wait(lam, es, es2), (f"M/{kinds.pop()}/1" if len(kinds) == 1 and len(members) == 1
                                        else "M/G/1"), rho, es, es2
    if _one_mean(members):
        return mmc_wait(lam, es, units), f"M/M/{units}", rho, es, es2
    raise _Uncovered(f"station '{name}' has {units} units and a mix of service times: no closed form for M/G/c")


def _one_mean(members: Sequence[tuple[float, _Svc]]) -> bool:
    """Whether every stream's service is exponential of one mean (an M/M/c's, and what a
    station must have to pass a Poisson stream on in a network of several classes)."""
    means = [sv.mean for _, sv in members]
    return all(sv.exp for _, sv in members) and max(means) - min(means) <= 1e-9 * max(means)


def _independent_streams(c: Any) -> Prediction | None:
    """Open Poisson flows whose request classes each follow a fixed route through stations
    (one FIFO stage on each resource it visits), on more than one resource. Each class of
    each flow is its own Poisson stream (a request's class is an independent draw:
    thinning), and the streams at a resource share its FIFO queue (one queue class there).
    A station that feeds another must pass a Poisson stream on: exponential service of one
    mean for every class there (Kelly 1975's network of such stations has product form, each
    station an M/M/c at its total load, whatever the routes; Burke's theorem in series). A
    station with any other service (M/G/1 by Pollaczek-Khinchine, the streams' mixed
    moments) must be the last of every route through it, in a network without cycles, so
    what reaches it is Poisson. A class's mean sojourn is its delays plus, at each station
    of its route, the station's mean wait and its own mean service. None when the
    experiment is not of this shape (one resource in all, or one flow of one class: the
    single-resource and series recognisers, with priorities and percentiles, take it)."""
    spec = c.spec
    if any(fl[0] or fl[1][0] != "exp" for fl in spec.flows):
        return None
    if len(spec.flows) == 1 and spec.flows[0][5] == 1:
        return None
    rows = []  # (flow, class k, share p, its stations in route order, delays)
    for fi, fl in enumerate(spec.flows):
        ks = range(fl[4], fl[4] + fl[5])
        total_w = sum(spec.classes[k][2] for k in ks)
        for k in ks:
            walk = _walk(c, fi, k)
            queues = [w for w in walk if w[1] is not None]
            if len(queues) > 1:
                _independent_services(c, queues)
            rows.append((fi, k, spec.classes[k][2] / total_w, queues, sum(_delay_parts(w[3])[0] for w in walk)))
    at = {q[1] for *_, qs, _ in rows for q in qs}
    # one resource: the single-resource recognisers (priorities, percentiles, one flow's
    # mix) take it, but for several flows one of which mixes classes (which they refuse)
    if len(at) < 2 and (len(spec.flows) == 1 or all(fl[5] == 1 for fl in spec.flows)):
        return None
    groups: dict[int, list[tuple[float, _Svc]]] = {}
    feeds: set[tuple[int, int]] = set()  # (resource, the next one on some route)
    for fi, k, p, qs, _ in rows:
        for i, q in enumerate(qs):
            assert q[2] is not None
            groups.setdefault(q[1], []).append((p / spec.flows[fi][1][1], q[2]))  # (rate per ps, service)
            if i + 1 < len(qs):
                feeds.add((q[1], qs[i + 1][1]))
    feeding = {a for a, _ in feeds}
    one_mean = {ri: _one_mean(m) for ri, m in groups.items()}
    for ri in feeding:
        if not one_mean[ri]:
            raise _Uncovered(f"station '{c.resources[ri].name}' feeds another station but its service is not "
                             "exponential of one mean for every class (its departures are not Poisson)")
    if any(not one_mean[ri] for ri in groups):
        try:
            graphlib.TopologicalSorter({b: {a} for a, b in feeds}).prepare()
        except graphlib.CycleError:
            raise _Uncovered("routes between stations form a cycle and a station has non-exponential service") from None
    waits: dict[int, float] = {}
    stations = []
    for ri, members in sorted(groups.items()):
        name, units = c.resources[ri].name, spec.resources[ri][0]
        if len({spec.stages[q[0]][0] for *_, qs, _ in rows for q in qs if q[1] == ri}) != 1:
            raise _Uncovered(f"streams queue at '{name}' in several queue classes (priorities) while other "
                             "resources serve other streams")
        waits[ri], model, rho, es, es2 = _fifo_station(name, units, members)
        first = next(q for *_, qs, _ in rows for q in qs if q[1] == ri)
        stations.append(StationPrediction(name, model, rho, waits[ri] / PS_PER_US,
                                          (waits[ri] + first[2].mean) / PS_PER_US, stage=first[0], chain=first[2].chain,
                                          mean_service_us=es / PS_PER_US, service_scv=_scv(es, es2)))
    flows = []
    for fi, fl in enumerate(spec.flows):
        mine = [(k, p, qs, d) for f, k, p, qs, d in rows if f == fi]

        def own(qs: Any, d: float) -> float:
            return d + sum(waits[q[1]] + q[2].mean for q in qs)

        lam_f = 1 / fl[1][1]
        flows.append(FlowPrediction(c.flows[fi], lam_f * 1e12, sum(p * own(qs, d) for _, p, qs, d in mine) / PS_PER_US))
        if fl[5] > 1:
            for k, p, qs, d in mine:
                cname = c.classes[k][1]
                flows.append(FlowPrediction(f"{c.flows[fi]}/{cname}", p * lam_f * 1e12, own(qs, d) / PS_PER_US,
                                            of_flow=c.flows[fi], request_class=cname))
    routed = any(len(qs) > 1 for *_, qs, _ in rows)
    return Prediction(f"independent Poisson streams at {len(stations)} stations"
                      + (" on fixed routes (Kelly network; each M/M/c, a last station M/G/1 by Pollaczek-Khinchine)"
                         if routed else " (each M/G/1 by Pollaczek-Khinchine, or M/M/c)"), flows, stations)


def _class_mix(c: Any, fi: int) -> Prediction:
    """One open Poisson flow drawing a mix of classes, each one FIFO stage on one shared
    resource (between pure delays), or no stage at all (pure delays: a cache hit). The
    class is an independent draw per request, so the classes that queue form a Poisson
    stream of rate λ Σ p (thinning). One unit: an M/G/1 queue whose service is their
    mixture (Pollaczek-Khinchine with E[S] and E[S^2] the weighted moments); FIFO, so every
    class waits the same W and a class's mean sojourn is W + its own mean service (+ its
    delays). c units: M/M/c, only when every class's service is exponential of one mean (a
    mixture of other means is no longer exponential). No percentiles: W's distribution
    under a general mixture has no closed form here."""
    spec = c.spec
    fl = spec.flows[fi]
    lam = 1 / fl[1][1]  # per ps
    ks = range(fl[4], fl[4] + fl[5])
    total_w = sum(spec.classes[k][2] for k in ks)
    rows, bypass = [], []
    for k in ks:
        walk = _walk(c, fi, k)
        queues = [w for w in walk if w[1] is not None]
        delay = sum(_delay_parts(w[3])[0] for w in walk)
        if not queues:
            bypass.append((k, spec.classes[k][2] / total_w, delay))
            continue
        if len(queues) != 1:
            raise _Uncovered(f"class '{c.classes[k][1]}' of flow '{c.flows[fi]}' visits {len(queues)} stations; a mix "
                             "is covered at one station")
        rows.append((k, spec.classes[k][2] / total_w, queues[0], delay))
    if not rows:
        raise _Uncovered(f"no class of flow '{c.flows[fi]}' visits a station")
    ris = {q[1] for _, _, q, _ in rows}
    qcs = {spec.stages[q[0]][0] for _, _, q, _ in rows}
    if len(ris) != 1:
        raise _Uncovered(f"the classes of flow '{c.flows[fi]}' queue at different resources")
    if len(qcs) != 1:
        raise _Uncovered(f"the classes of flow '{c.flows[fi]}' queue at different priorities on one resource")
    ri = ris.pop()
    name, units = c.resources[ri].name, spec.resources[ri][0]
    svcs = [q[2] for _, _, q, _ in rows]
    # the classes that queue: thinned Poisson streams of rate p lambda
    wait, kind, rho, es, es2 = _fifo_station(name, units, [(p * lam, sv) for (_, p, _, _), sv in zip(rows, svcs)])
    n_cls = (f"{len(rows)} class{'es' if len(rows) != 1 else ''}"
             + (f", {len(bypass)} more passing no station" if bypass else ""))
    kind = "M/G/1" if units == 1 else kind  # (one class of fixed service is still 'a mix' here)
    model = f"{kind} (a mix of {n_cls}" + (", Pollaczek-Khinchine)" if units == 1 else ")")
    mean = (sum(p * (d + wait + sv.mean) for (_, p, _, d), sv in zip(rows, svcs))
            + sum(p * d for _, p, d in bypass))
    flows = [FlowPrediction(c.flows[fi], lam * 1e12, mean / PS_PER_US)]
    per = {k: (p, d + wait + sv.mean) for (k, p, _, d), sv in zip(rows, svcs)} | {k: (p, d) for k, p, d in bypass}
    for k in ks:
        p, t = per[k]
        cname = c.classes[k][1]
        flows.append(FlowPrediction(f"{c.flows[fi]}/{cname}", p * lam * 1e12, t / PS_PER_US,
                                    of_flow=c.flows[fi], request_class=cname))
    # the station as the first class's stage sees it: every class waits W, and this one is served for its own mean
    station = StationPrediction(name, model, rho, wait / PS_PER_US, (wait + svcs[0].mean) / PS_PER_US,
                                flow=f"{c.flows[fi]}/{c.classes[rows[0][0]][1]}", stage=rows[0][2][0],
                                chain=svcs[0].chain, mean_service_us=es / PS_PER_US, service_scv=_scv(es, es2))
    return Prediction(model, flows, [station])


def _open_series(c: Any, fi: int) -> Prediction:
    spec = c.spec
    lam = 1 / spec.flows[fi][1][1]  # per ps
    walk = _walk(c, fi)
    queues = [w for w in walk if w[1] is not None and w[2] is not None and w[2].mean > 0]
    if len(queues) > 1:
        # each station's arrivals must be Poisson: those of a ./M/c FIFO station leave as
        # they came (Burke), and a random delay keeps a Poisson stream Poisson, but an M/G/1
        # queue's departures are not, so only the last station may have any service
        for si, ri, svc, _ in queues[:-1]:
            assert svc is not None and ri is not None
            if not svc.exp:
                raise _Uncovered(f"station '{c.resources[ri].name}' has non-exponential service and feeds another "
                                 "station (the departures of an M/G/1 queue are not Poisson; only a series' last "
                                 "station may have any service)")
        _independent_services(c, queues)
    stations: list[StationPrediction] = []
    delay_mean = shift = 0.0
    delay_rates: list[float] = []
    delays_known = True
    for si, ri, svc, delay in walk:
        dm, drate, dknown = _delay_parts(delay)
        delay_mean += dm
        if drate is None:
            shift += dm
        else:
            delay_rates.append(drate)
        delays_known &= dknown
        if ri is None:
            continue
        assert svc is not None
        units = spec.resources[ri][0]
        name = c.resources[ri].name
        if svc.mean == 0:
            stations.append(StationPrediction(name, "zero service", 0.0, 0.0, 0.0, stage=si))
            continue
        rho = lam * svc.mean / units
        if rho >= 1:
            raise _Uncovered(f"station '{name}' is overloaded: load {rho:.3g} >= 1")
        if units == 1:
            wait, model = mg1_wait(lam, svc.mean, svc.m2), f"M/{svc.kind}/1"
        elif svc.exp:
            wait, model = mmc_wait(lam, svc.mean, units), f"M/M/{units}"
        else:
            raise _Uncovered(f"station '{name}' is M/G/{units}: no closed form for c > 1 without exponential service")
        stations.append(StationPrediction(name, model, rho, wait / PS_PER_US, (wait + svc.mean) / PS_PER_US, stage=si,
                                          chain=svc.chain, service_scv=_scv(svc.mean, svc.m2)))
    mean = delay_mean + sum(s.mean_sojourn_us for s in stations) * PS_PER_US
    models = [s.model for s in stations if s.model != "zero service"]
    quantiles: tuple[float, float] | None = None
    # A random delay between two queues lets requests overtake one another, so the sojourns
    # at the queues on either side of it are no longer independent (Reich's theorem needs
    # FIFO order throughout); before the first queue or after the last it is independent of
    # them (the M/M/inf output is Poisson and, by reversibility, independent of the delay).
    at = [k for k, w in enumerate(walk) if any(w is q for q in queues)]
    overtaking = bool(at) and any(_delay_parts(walk[k][3])[1] is not None for k in range(at[0], at[-1]))
    delays_known &= not overtaking  # the mean still holds (Jackson); the percentiles are not known
    if delays_known and all(m == "M/M/1" for m in models) and (models or delay_rates):
        # a sum of independent exponentials (Reich 1957), shifted by the fixed delays
        rates = [1 / q[2].mean - lam for q in queues if q[2] is not None] + delay_rates
        quantiles = (hypoexp_quantile(rates, 0.99, shift), hypoexp_quantile(rates, 0.999, shift))
    elif delays_known and not delay_rates and len(queues) == 1 and models[0].startswith("M/M/"):
        _, ri, svc, _ = queues[0]
        assert svc is not None and ri is not None
        units = spec.resources[ri][0]
        quantiles = (shift + mmc_sojourn_quantile(lam, svc.mean, units, 0.99),
                     shift + mmc_sojourn_quantile(lam, svc.mean, units, 0.999))
    elif delays_known and not delay_rates and not models:
        quantiles = (shift, shift)
    if len(models) == 1:
        label = models[0] + (" (Pollaczek-Khinchine)" if models[0][2] != "M" else "")
    elif models:
        label = f"Jackson tandem of {len(models)} stations"
        if models[-1][2] != "M":  # the last one's service is not exponential: its mean by P-K
            label += f" (the last {models[-1]}, Pollaczek-Khinchine)"
    else:
        label = "pure delays"
    if overtaking:
        label += "; no exact percentiles: requests overtake one another in a random delay between queues"
    p99, p999 = (None, None) if quantiles is None else (quantiles[0] / PS_PER_US, quantiles[1] / PS_PER_US)
    return Prediction(label, [FlowPrediction(c.flows[fi], lam * 1e12, mean / PS_PER_US, p99, p999)], stations)


MVA_MAX_TERMS = 1e9  # ~2 s of convolution here


def _closed(c: Any, fi: int) -> Prediction:
    spec = c.spec
    flow = spec.flows[fi]
    clients, think = flow[2], flow[3][1]
    walk = _walk(c, fi)
    delays = sum(w[3][1] for w in walk)
    queues = [w for w in walk if w[1] is not None and w[2] is not None and w[2].mean > 0]
    if not queues:
        raise _Uncovered("the closed loop has no queueing station")
    for si, ri, svc, _ in queues:
        assert svc is not None and ri is not None
        units, name = spec.resources[ri][0], c.resources[ri].name
        # a station with a unit for every client never queues: like a delay, it is insensitive
        if not svc.exp and units < clients:
            raise _Uncovered(f"station '{name}' has non-exponential service: exact MVA covers exponential FIFO "
                             "stations (and stations with a unit for every client)")
    _independent_services(c, queues)
    # the exact solution convolves each multi-server station's N + 1 terms c times, once for
    # the network and once without each station: past ~1e9 terms it takes seconds to hours
    # (a million clients at 20,000 servers ran over a minute), where the simulation is fast
    multi = [spec.resources[w[1]][0] for w in queues if spec.resources[w[1]][0] < clients]
    cost = (len(multi) + 1) * sum(multi) * (clients + 1)
    if cost > MVA_MAX_TERMS:
        raise _Uncovered(f"exact MVA of {clients:,} clients at stations of {', '.join(f'{u:,}' for u in multi)} units "
                         f"costs ~{cost:.2g} terms, more than the {MVA_MAX_TERMS:.0e} solved here")
    net = closed_network(clients, [(w[2].mean, spec.resources[w[1]][0]) for w in queues], think + delays)
    solved = {w[0]: st for w, st in zip(queues, net.stations)}
    stations = []
    for si, ri, svc, _ in walk:
        if ri is None:
            continue
        assert svc is not None
        name, units = c.resources[ri].name, spec.resources[ri][0]
        if si not in solved:
            stations.append(StationPrediction(name, "zero service", 0.0, 0.0, 0.0, stage=si))
            continue
        st = solved[si]
        stations.append(StationPrediction(name, f"closed MVA, {units} server{'s' if units > 1 else ''}",
                                          st.utilization, (st.response - svc.mean) / PS_PER_US,
                                          st.response / PS_PER_US, stage=si, chain=svc.chain))
    label = (f"closed loop of {clients} clients (exact MVA)" if len(queues) == 1 else
             f"closed network of {len(queues)} stations and {clients} clients (exact MVA, product form)")
    return Prediction(label, [FlowPrediction(c.flows[fi], net.throughput * 1e12, (net.response + delays) / PS_PER_US)],
                      stations)


def _priority(c: Any) -> Prediction:
    spec = c.spec
    rows = []
    resource = None
    for fi in range(len(spec.flows)):
        walk = _walk(c, fi)
        queues = [w for w in walk if w[1] is not None]
        if len(queues) != 1:
            raise _Uncovered(f"several open flows: theory here covers each a single stage on one shared resource "
                             f"(flow '{c.flows[fi]}' has {len(queues)} stations)")
        si, ri, svc, _ = queues[0]
        if resource is not None and ri != resource:
            raise _Uncovered("several open flows on different resources (a multi-class network)")
        resource = ri
        assert svc is not None
        if svc.chain:  # between the two stages the unit goes to a waiting request of higher priority
            raise _Uncovered(f"flow '{c.flows[fi]}' runs consecutive stages on '{c.resources[ri].name}' among "
                             "other flows: a waiting request that outranks the later stage takes the unit between them")
        qrow = spec.qclasses[spec.stages[si][0]]
        prio, preempt = qrow[1], bool(qrow[4]) if len(qrow) > 4 else False
        delay = sum(w[3][1] for w in walk)
        rows.append((fi, si, 1 / spec.flows[fi][1][1], svc, prio, delay, preempt))
    assert resource is not None
    units = spec.resources[resource][0]
    name = c.resources[resource].name
    if units != 1:
        return _priority_top(c, rows, units, name)
    levels = sorted({r[4] for r in rows}, reverse=True)
    lam_l = [sum(r[2] for r in rows if r[4] == p) for p in levels]
    mean_l = [sum(r[2] * r[3].mean for r in rows if r[4] == p) / lam_l[k] for k, p in enumerate(levels)]
    m2_l = [sum(r[2] * r[3].m2 for r in rows if r[4] == p) / lam_l[k] for k, p in enumerate(levels)]
    rho = sum(lam * m for lam, m in zip(lam_l, mean_l))
    if rho >= 1:
        raise _Uncovered(f"station '{name}' is overloaded: load {rho:.3g} >= 1")
    # a level preempts the levels below it when its stages preempt (the lowest has none below)
    preempts = [{r[6] for r in rows if r[4] == p} for p in levels[:-1]]
    if any(len(p) > 1 for p in preempts):
        raise _Uncovered(f"'{name}': flows of one priority differ in `preempt`")
    preemptive = [p == {True} for p in preempts]
    if any(preemptive) and not all(preemptive):
        raise _Uncovered(f"'{name}': some priority levels preempt and others do not (a mixed discipline)")
    preempting = any(preemptive)
    if preempting:
        sojourns = preemptive_sojourns(lam_l, mean_l, m2_l)
    else:
        waits = cobham_waits(lam_l, mean_l, m2_l)
    flows, stations = [], []
    for fi, si, lam, svc, prio, delay, _ in rows:
        k = levels.index(prio)
        if preempting:
            # a flow of level k: its own service stretched by the levels above, E[S]/(1 - σ_{k-1}),
            # plus the level's wait term (the same for every flow of the level, FIFO within it)
            stretch = 1 - math.fsum(lam_l[i] * mean_l[i] for i in range(k))
            w = svc.mean / stretch + (sojourns[k] - mean_l[k] / stretch) - svc.mean
        else:
            w = waits[k]
        flows.append(FlowPrediction(c.flows[fi], lam * 1e12, (w + svc.mean + delay) / PS_PER_US))
        stations.append(StationPrediction(name, f"M/G/1 {'preemptive ' if preempting else ''}priority {prio}",
                                          rho, w / PS_PER_US, (w + svc.mean) / PS_PER_US, flow=c.flows[fi], stage=si))
    if len(levels) == 1:
        label = "M/G/1 FIFO, several flows (P-K)"
    elif preempting:
        label = f"M/G/1 with {len(levels)} preemptive-resume priority levels"
    else:
        label = f"M/G/1 with {len(levels)} priority levels (Cobham)"
    return Prediction(label, flows, stations)


def _priority_top(c: Any, rows: list[Any], units: int, name: str) -> Prediction:
    """Several open flows on one resource of c > 1 units. Priority M/G/c has no closed form,
    but a top level that preempts every level below never sees them: its requests take a
    unit exactly when they would find one free without the others. With exponential
    service of one mean it is M/M/c at its own load; the levels below are not predicted."""
    levels = sorted({r[4] for r in rows}, reverse=True)
    top = [r for r in rows if r[4] == levels[0]]
    if len(levels) > 1 and not all(r[6] for r in top):
        raise _Uncovered(f"several flows share '{name}' with {units} units: priority M/G/c has no closed form "
                         "(only a top level that preempts is exact: M/M/c)")
    means = {r[3].mean for r in top}
    if not all(r[3].exp for r in top) or len(means) != 1:
        raise _Uncovered(f"several flows share '{name}' with {units} units: the top level's service is not "
                         "exponential of one mean (M/G/c has no closed form)")
    rho = sum(r[2] * r[3].mean for r in rows) / units
    if rho >= 1:
        raise _Uncovered(f"station '{name}' is overloaded: load {rho:.3g} per unit >= 1")
    lam, mean = sum(r[2] for r in top), means.pop()
    # work of no length never waits: the top level takes a unit only for an instant
    t = mmc_sojourn(lam, mean, units) if mean > 0 else 0.0
    p99 = mmc_sojourn_quantile(lam, mean, units, 0.99) if mean > 0 else 0.0
    model = f"M/M/{units}" if mean > 0 else "zero service"
    flows, stations = [], []
    for fi, si, lam_f, svc, prio, delay, _ in top:
        flows.append(FlowPrediction(c.flows[fi], lam_f * 1e12, (t + delay) / PS_PER_US,
                                    p99_us=(p99 + delay) / PS_PER_US if delay == 0 else None))
        stations.append(StationPrediction(name, model + (f" preemptive priority {prio}" if len(levels) > 1 else ""),
                                          rho, (t - mean) / PS_PER_US, t / PS_PER_US,
                                          flow=c.flows[fi], stage=si))
    below = [c.flows[r[0]] for r in rows if r[4] != levels[0]]
    label = (f"{model} for the top priority level, which preempts"
             + (f" (not predicted: {', '.join(below)})" if below else "") if len(levels) > 1
             else f"M/M/{units}, several flows of one exponential service" if mean > 0
             else f"zero service on '{name}', several flows")
    return Prediction(label, flows, stations)


def why_not(experiment: Experiment) -> str | None:
    """Why theory does not cover ``experiment``, or None when it does."""
    try:
        _analyse(experiment)
    except _Uncovered as e:
        return str(e)
    return None


def predict(experiment: Experiment) -> Prediction | None:
    """The closed-form prediction for ``experiment``, or None when theory does not cover
    it (:func:`why_not` gives the reason)."""
    return analyse(experiment)[0]


def analyse(experiment: Experiment) -> tuple[Prediction | None, str | None]:
    """(prediction, None) when theory covers ``experiment``, else (None, reason)."""
    from .model import as_experiment

    experiment = as_experiment(experiment)  # a path or a table is loaded; anything else is named
    try:
        return _analyse(experiment), None
    except _Uncovered as e:
        return None, str(e)


# ----------------------------------------------------------------------------- the command

def _rel(theory: float | None, sim: float | None) -> float | None:
    if theory is None or sim is None or theory == 0 or math.isnan(sim):
        return None
    return (sim - theory) / theory


def compare_result(pred: Prediction, result: Any) -> dict[str, Any]:
    """Theory beside a simulated :class:`emulator.result.Result`: per flow and station."""
    d = result.to_dict()
    stages = result.stages()
    flows = []
    for f in pred.flows:
        if f.of_flow is not None:  # one class of a flow's mix: its latency and rate
            fs = d["flows"][f.of_flow]
            n = fs["classes"].get(f.request_class, 0)
            nan = {k: math.nan for k in ("mean", "p99", "p999")}
            sim = {"throughput_per_s": n / result.duration_s,
                   "thin_tail": [k for k, q in (("p99", 0.99), ("p999", 0.999)) if thin_tail(n, q)]}
            lat = fs.get("class_latency_us", {}).get(f.request_class, nan)
        else:
            sim = d["flows"][f.name]
            lat = sim["latency_us"]
        flows.append({
            "flow": f.name,
            "throughput_per_s": {"theory": f.throughput_per_s, "sim": sim["throughput_per_s"],
                                 "rel_diff": _rel(f.throughput_per_s, sim["throughput_per_s"])},
            "mean_us": {"theory": f.mean_us, "sim": lat["mean"], "rel_diff": _rel(f.mean_us, lat["mean"])},
            # a simulated percentile on fewer than MIN_TAIL_REQUESTS requests beyond it is biased
            # low: "thin_tail" says so, and the text marks it
            "p99_us": {"theory": f.p99_us, "sim": lat["p99"], "rel_diff": _rel(f.p99_us, lat["p99"]),
                       "thin_tail": "p99" in sim["thin_tail"]},
            "p999_us": {"theory": f.p999_us, "sim": lat["p999"], "rel_diff": _rel(f.p999_us, lat["p999"]),
                        "thin_tail": "p999" in sim["thin_tail"]},
        })
    stations = []
    for s in pred.stations:
        st = stages[s.stage] if s.stage is not None else None
        sim_wait = st["mean_wait_us"] if st else math.nan
        sim_soj = sim_wait + st["mean_service_us"] if st else math.nan
        for j in s.chain:  # stages run to completion with it: their (nil) waits and services
            sim_soj += stages[j]["mean_wait_us"] + stages[j]["mean_service_us"]
        util = d["resources"][s.name]["utilization"]
        stations.append({
            "station": s.name, "flow": s.flow, "model": s.model,
            "utilization": {"theory": s.utilization, "sim": util, "rel_diff": _rel(s.utilization, util)},
            "mean_wait_us": {"theory": s.mean_wait_us, "sim": sim_wait, "rel_diff": _rel(s.mean_wait_us, sim_wait)},
            "mean_sojourn_us": {"theory": s.mean_sojourn_us, "sim": sim_soj,
                                "rel_diff": _rel(s.mean_sojourn_us, sim_soj)},
        })
    out = {"model": pred.model, "flows": flows, "stations": stations}
    if pred.wake_shares is not None and pred.stations:
        # each idle state's share of the station's wake-ups, theory beside the simulation
        by_state = d["resources"][pred.stations[0].name].get("wakeups_by_state", {})
        total = sum(by_state.values())
        out["wakeups_by_state"] = [
            {"state": name, "theory": p, "sim": by_state[name] / total if total else math.nan,
             "rel_diff": _rel(p, by_state[name] / total) if total else math.nan}
            for name, p in zip(by_state, pred.wake_shares)]
    return out


def _fmt(x: float | None, w: int = 11) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"{'-':>{w}}"
    return f"{x:>{w}.5g}"


def _pct(x: float | None, w: int = 8) -> str:
    return f"{'-':>{w}}" if x is None or math.isnan(x) else f"{x:>+{w}.2%}"


def format_comparison(cmp: dict[str, Any]) -> str:
    out = [f"theory: {cmp['model']}", ""]
    fw = max(14, *(len(f["flow"]) for f in cmp["flows"]))  # (a class's FLOW/CLASS runs long)
    out.append(f"{'flow':<{fw}} {'measure':<12} {'theory':>11} {'simulated':>11} {'rel diff':>8}")
    thin = False
    for f in cmp["flows"]:
        for key, label in (("throughput_per_s", "done/s"), ("mean_us", "mean us"), ("p99_us", "p99 us"),
                           ("p999_us", "p99.9 us")):
            v = f[key]
            if v["theory"] is None:
                continue
            mark = " *" if v.get("thin_tail") else ""
            thin |= bool(mark)
            out.append(f"{f['flow']:<{fw}} {label:<12} {_fmt(v['theory'])} {_fmt(v['sim'])} "
                       f"{_pct(v['rel_diff'])}{mark}")
    if thin:
        out.append(f"* fewer than {MIN_TAIL_REQUESTS} simulated requests beyond this percentile: biased low; "
                   "run longer (--duration)")
    if cmp["stations"]:
        out.append("")
        width = max(20, *(len(s["model"]) for s in cmp["stations"]))
        sw = max(14, *(len(s["station"] + (f"/{s['flow']}" if s["flow"] else "")) for s in cmp["stations"]))
        out.append(f"{'station':<{sw}} {'model':<{width}} {'measure':<12} {'theory':>11} {'simulated':>11} {'rel diff':>8}")
        for s in cmp["stations"]:
            label = s["station"] + (f"/{s['flow']}" if s["flow"] else "")
            for key, name in (("utilization", "utilization"), ("mean_wait_us", "wait us"),
                              ("mean_sojourn_us", "sojourn us")):
                v = s[key]
                out.append(f"{label:<{sw}} {s['model']:<{width}} {name:<12} {_fmt(v['theory'])} {_fmt(v['sim'])} "
                           f"{_pct(v['rel_diff'])}")
    if cmp.get("wakeups_by_state"):
        out += ["", f"{'idle state':<14} {'share of wake-ups':<20} {'theory':>11} {'simulated':>11} {'rel diff':>8}"]
        for w in cmp["wakeups_by_state"]:
            out.append(f"{w['state']:<14} {'':<20} {_fmt(w['theory'])} {_fmt(w['sim'])} {_pct(w['rel_diff'])}")
    return "\n".join(out)


# the simulated mean's relative 95% half-width above which `vemu theory` says the window is short
PRECISION_WARN = 0.05


def _scv(mean: float, m2: float) -> float | None:
    """A service time's squared coefficient of variation, from its first two moments."""
    return max(m2 / (mean * mean) - 1.0, 0.0) if mean > 0 else None


def window_precision(pred: Prediction, exp: Any, duration_s: float) -> dict[str, Any] | None:
    """How precisely a window of ``duration_s`` pins the open stations' mean number in system
    (and so, by Little's law, their mean sojourn): the relative 95% half-width
    1.96 √(σ²/T) / L with L = ρ/(1-ρ) and σ² = 2ρ(1+ρ)/(μ(1-ρ)⁴), the asymptotic variance of
    an M/M/1 queue's time-average number in system (Whitt 1989, "Planning queueing
    simulations"), μ the station's total service rate (units / mean service). An estimate
    for other service and c > 1, of the right size near saturation, where it matters: at
    ρ 0.98 and 10 µs a 0.1 s window gives ±197%, and five seeds read the mean -19% to +167%
    off (a review's runs). The station with the widest, and the window for ±5%; None when
    no open station has a load in (0, 1)."""
    from .model import compile_experiment

    units = {r.name: r.units for r in compile_experiment(exp).resources}
    worst: dict[str, Any] | None = None
    for st in pred.stations:
        rho = st.utilization
        svc_us = st.mean_service_us if st.mean_service_us is not None else st.mean_sojourn_us - st.mean_wait_us
        if not st.model.startswith("M/") or not (0 < rho < 1) or not svc_us > 0:
            continue
        mu = units.get(st.name, 1) / (svc_us * 1e-6)  # per second
        # other service: the heavy-traffic variance grows with (1 + cs²)/2 (exponential: 1),
        # so the half-width with its square root; a lower bound for heavy-tailed service (a
        # lognormal of cv 3 spread ±23% over seeds where this says ±9%)
        scale = (1 + st.service_scv) / 2 if st.service_scv is not None else 1.0
        rel = 1.96 * math.sqrt(2 * (1 + rho) * scale / (rho * mu * duration_s)) / (1 - rho)
        need = (1.96 / PRECISION_WARN) ** 2 * 2 * (1 + rho) * scale / (rho * mu * (1 - rho) ** 2)
        if worst is None or rel > worst["rel_half_width"]:
            worst = {"station": st.name, "utilization": rho, "rel_half_width": rel, "duration_for_5pct_s": need,
                     "lower_bound": scale > 1.0 + 1e-9}
    return worst


def cmd_theory(a: argparse.Namespace) -> int:
    from .cli import format_result
    from .model import load_experiment
    from .simulation import Simulation

    if a.spec is None and not (a.host and a.architecture and a.workload):
        from .cli import UsageError
        raise UsageError("vemu theory: give an experiment file, or all of --host, --architecture and --workload")
    exp = load_experiment(a.spec, host=a.host, architecture=a.architecture, workload=a.workload, sets=a.sets,
                          duration_s=a.duration, warmup_s=a.warmup, seed=a.seed)
    pred, reason = analyse(exp)
    res = Simulation(exp).run()
    if a.json:
        body: dict[str, Any] = {"covered": pred is not None, "reason": reason, "seed": res.seed,
                                "duration_s": res.duration_s, "warmup_s": res.warmup_s}
        if pred is not None:
            body["theory"] = pred.to_dict()
            body["comparison"] = compare_result(pred, res)
            body["precision"] = window_precision(pred, exp, res.duration_s)
        body["result"] = res.to_dict()
        print(dumps(body))
        return 0
    if pred is None:
        print(f"outside what theory covers: {reason}")
        print("")
        print(format_result(res.to_dict()))
        return 0
    print(f"{exp.file}   (seed {res.seed}, {res.duration_s:g} s measured after {res.warmup_s:g} s warm-up)")
    print(format_comparison(compare_result(pred, res)))
    prec = window_precision(pred, exp, res.duration_s)
    if prec is not None and prec["rel_half_width"] > PRECISION_WARN:
        print("")
        about = "at best" if prec["lower_bound"] else "about"
        print(f"! a {res.duration_s:g} s window pins station '{prec['station']}''s mean (load "
              f"{prec['utilization']:.3g}) only to {about} ±{prec['rel_half_width']:.0%} (95%, from an M/M/1 queue's "
              f"asymptotic variance, Whitt 1989" + (", scaled by (1 + cs²)/2 for its service: heavy tails make it "
                                                    "worse" if prec["lower_bound"] else "")
              + "): near saturation consecutive requests are strongly correlated, so rel diffs this size are noise; "
              f"--duration {prec['duration_for_5pct_s']:.3g} gives {about} ±5%")
    return 0


def register(subparsers: Any) -> None:
    from .cli import add_run_options

    p = subparsers.add_parser("theory", help="compare a run with closed-form queueing theory")
    p.add_argument("spec", nargs="?", help="experiment file (TOML); optional when --host/--architecture/--workload "
                   "name bundled models")
    p.add_argument("--host", help="bundled host (replaces the file's)")
    p.add_argument("--architecture", "-a", help="bundled architecture (replaces the file's)")
    p.add_argument("--workload", "-w", help="bundled workload (replaces the file's)")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_theory)
