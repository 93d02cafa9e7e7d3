"""Statistics users can trust: replications, batch means, and a warm-up rule.

One simulated run gives one number per measure, with no idea of its error. This module
gives three ways to attach one, each with a confidence interval from Student's t:

**Independent replications** (:func:`replicate`). The experiment is run n times with seeds
derived deterministically from ``seed0`` (:func:`replication_seeds`), each run with its own
warm-up. The n values of a measure are independent and identically distributed, so the
95% CI of its expectation is x̄ ± t_{0.975, n-1} s/√n (Law, *Simulation Modeling and
Analysis*, 5th ed., §9.4.1). The measures are the usable fraction and, per flow,
throughput, mean latency, p99 and p99.9. A percentile is estimated by sectioning: the
point is the quantile of every run's requests together (their latency histograms summed),
the interval through the distribution function (:func:`quantile_ci`: each run's share of
requests at or below the point, their t interval, mapped back through the pooled
quantiles, so wider above than below). The runs' own percentiles are biased low by as much
as a short run's tail is (M/M/1 with 2,500 requests a run: the per-run p99.9 averages 7%
low); ``biased`` names a percentile whose runs' mean sits further from the pooled value
than the interval's side toward it. A run also needs ~10 or more requests beyond a
percentile (``thin_tail``).
Runs go to a process pool; seeds are fixed per replication index, so results are identical
whatever the number of workers.

**Batch means** (:func:`batch_means`, :func:`long_run`). One long run is cut into b
contiguous batches; for a long enough batch the batch means are nearly independent and
nearly normal, and the CI is computed as above with b - 1 degrees of freedom (Law §9.5.3).
The lag-1 autocorrelation of the batch means is reported, and ``correlated`` flags one
that fails a one-sided 5% test of independence (above -1/b + 1.645 (b-2)/(b√(b-1)), 0.29
for 20 batches; not judged below 4 batches): the batches are too short for the CI to be
trusted. :func:`long_run` runs the
engine window by window (``Engine.run`` / ``stats`` / ``reset_stats``), so each window's
sums are exact, and forms each batch's mean latency as its latency sum over its
completions (a ratio estimator, weighted by completions, not a mean of window means) and
each batch's p99 and p99.9 from the merged histogram of its windows; a percentile's point
estimate is the whole run's, by sectioning, as for replications (:func:`batch_quantiles`).

**Warm-up: MSER-5** (:func:`mser5`, :func:`choose_warmup`). The engine starts empty and
idle, which biases early output. MSER-5 (White 1997; White, Cobb & Spratt 2000; Hoad,
Robinson & Davies 2010) averages a series of window means in groups of 5 and truncates the
first d groups, with d in [0, m/2] minimising the marginal standard error
MSER(d) = Σ_{j>d} (Z_j - Z̄_d)² / (m - d)². It trades the bias of keeping the transient
against the variance of discarding data. :func:`choose_warmup` applies it to a pilot run's
window series and returns the warm-up in seconds; if the minimum sits at the m/2 limit the
run was too short to see steady state, and the choice says so (``converged`` is False).

Student's t quantile comes from scipy when it is importable; otherwise from the exact
closed form of the t distribution for integer degrees of freedom (Abramowitz & Stegun
26.7.3-4) inverted by bisection, accurate far beyond 1e-3.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from ._core import EmulatorError, Engine, ModelError, NativeError
from .model import PS_PER_S, Experiment, as_experiment, check_count, check_level, check_seed, check_window
from .result import MIN_TAIL_REQUESTS, Pool, Result, Tail, hist_quantile, tail_cdf, thin_tail

# ----------------------------------------------------------------------------- Student's t


def _t_abs_cdf(t: float, df: int) -> float:
    """A(t | ν) = P(|T| < t) for integer ν (Abramowitz & Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if df % 2 == 1:
        if df == 1:
            return 2 * theta / math.pi
        term, acc = c, c
        for k in range(3, df - 1, 2):  # c + (2/3)c³ + (2·4)/(3·5)c⁵ + ... up to c^{ν-2}
            term *= c2 * (k - 1) / k
            acc += term
        return 2 / math.pi * (theta + s * acc)
    term, acc = 1.0, 1.0
    for k in range(2, df - 1, 2):  # 1 + (1/2)c² + (1·3)/(2·4)c⁴ + ... up to c^{ν-2}
        term *= c2 * (k - 1) / k
        acc += term
    return s * acc


def _t_quantile_exact(p: float, df: int) -> float:
    if p == 0.5:
        return 0.0
    a = abs(2 * p - 1)  # P(|T| < t) = a
    lo, hi = 0.0, 1.0
    while _t_abs_cdf(hi, df) < a:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_abs_cdf(mid, df) < a:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    t = (lo + hi) / 2
    return t if p > 0.5 else -t


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with ``df`` (integer >= 1) degrees of freedom."""
    if not 0 < p < 1:
        raise ModelError(f"quantile {p!r} is outside (0, 1)")
    if int(df) != df or df < 1:
        raise ModelError(f"degrees of freedom must be an integer >= 1, got {df!r}")
    try:
        from scipy.stats import t as student_t
    except ImportError:
        return _t_quantile_exact(p, int(df))
    return float(student_t.ppf(p, int(df)))


# ----------------------------------------------------------------------------- intervals

@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided t confidence interval. An interval that is not symmetric
    about its point (a percentile's, :func:`quantile_ci`) gives its ends in ``low`` and
    ``high``; its ``half_width`` is then the wider side, so mean ± half_width contains it."""

    mean: float
    half_width: float
    n: int
    std: float  # sample standard deviation of the values (or of the batch means); a percentile's
    #             (quantile_ci): the one its half-width implies, half_width * sqrt(n) / t
    level: float = 0.95
    low: float | None = None
    high: float | None = None

    @property
    def lo(self) -> float:
        return self.mean - self.half_width if self.low is None else self.low

    @property
    def hi(self) -> float:
        return self.mean + self.half_width if self.high is None else self.high

    def covers(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "half_width": self.half_width, "lo": self.lo, "hi": self.hi,
                "n": self.n, "std": self.std, "level": self.level}


def mean_ci(values: Sequence[float] | np.ndarray, *, level: float = 0.95) -> Interval:
    """x̄ ± t_{(1+level)/2, n-1} s/√n over the finite values (NaN when fewer than 2)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, level)
    m = float(x.mean())
    if n < 2:
        return Interval(m, math.nan, n, math.nan, level)
    s = float(x.std(ddof=1))
    return Interval(m, t_quantile((1 + level) / 2, n - 1) * s / math.sqrt(n), n, s, level)


# ----------------------------------------------------------------------------- replications

def replication_seeds(seed0: int, n: int) -> list[int]:
    """n seeds derived from seed0, fixed per replication index (63-bit, via SeedSequence).

    SeedSequence reads a list of integers as 32-bit words, one per word an integer needs,
    and pads the words with zeros, so the list [seed0, i] read [x, i] and [x + (i << 32), 0]
    alike: two seeds 2^32 apart shared replications. Each seed0 is therefore written as a
    fixed number of words: below 2^32 as [seed0, i] (the streams every result so far used),
    from 2^32 as [low word, high word, i, 1], whose fourth word no shorter list has."""
    if n < 0:
        raise ModelError(f"replications must be >= 0, got {n}")
    seed0 = int(seed0)
    out = []
    for i in range(n):
        words = [seed0, i] if 0 <= seed0 < 2**32 else [seed0 & 0xFFFFFFFF, seed0 >> 32, i, 1]
        hi, lo = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
        out.append(((int(hi) << 32) | int(lo)) & (2**63 - 1))
    return out


MAX_REPLICATIONS = 100_000  # per call; more is a typo, and the seeds alone would take minutes

# the percentile measures (as measures() and sweep tables name them) and their quantiles
PERCENTILES = {"p50_us": 0.50, "p99_us": 0.99, "p999_us": 0.999}


# Measures named CYCLES + CATEGORY are a category's fraction of all host cycles. A run
# charges a category only when it spent cycles in it, so where one is missing it is 0.
CYCLES = "host_cycles."


def measures(result: Result) -> dict[str, float]:
    """The measures a replication reports: usable_fraction; per flow NAME,
    NAME.throughput_per_s, NAME.mean_us, NAME.p99_us, NAME.p999_us, and NAME.completed
    (requests completed in the window: what :func:`thin_tails` judges the percentiles by);
    per class CLASS of a flow of several classes, NAME/CLASS.mean_us and NAME/CLASS.p99_us
    (and NAME/CLASS.completed), where the run kept them (``class_latency_us``);
    and per host-cycle category CAT, host_cycles.CAT (its fraction of all host cycles, as in
    ``to_dict()["host_cycles"]``: they sum to 1, and host_cycles.tenant is usable_fraction)."""
    d = result.to_dict()
    out = {"usable_fraction": float(d["usable_fraction"])}
    for name, f in d["flows"].items():
        lat = f["latency_us"]
        out[f"{name}.throughput_per_s"] = float(f["throughput_per_s"])
        out[f"{name}.mean_us"] = float(lat["mean"])
        out[f"{name}.p99_us"] = float(lat["p99"])
        out[f"{name}.p999_us"] = float(lat["p999"])
        out[f"{name}.completed"] = float(f["completed"])
        for cname, clat in f.get("class_latency_us", {}).items():
            out[f"{name}/{cname}.mean_us"] = float(clat["mean"])
            if result.compiled.spec.class_histograms:  # (NaN in a run where the class completed nothing)
                out[f"{name}/{cname}.p99_us"] = float(clat["p99"])
            out[f"{name}/{cname}.completed"] = float(f["classes"][cname])
    for cat, frac in d["host_cycles"].items():
        out[CYCLES + cat] = float(frac)
    return out


def missing(key: str) -> float:
    """What a run that does not report measure ``key`` had of it: 0 for a host-cycle
    category (no cycles were charged to it), NaN (unknown) for anything else."""
    return 0.0 if key.startswith(CYCLES) else math.nan


def thin_tails(samples: dict[str, np.ndarray]) -> set[str]:
    """The percentile measures (NAME.p99_us, NAME.p999_us) of ``samples`` (measure -> one
    value per run, as :func:`measures` gives them) for which some run had fewer than
    MIN_TAIL_REQUESTS requests beyond the percentile: their estimates and intervals are
    not to be trusted; run longer."""
    out = set()
    for key, done in samples.items():
        if not key.endswith(".completed") or key.startswith(CYCLES):
            continue
        name = key[: -len(".completed")]
        least = float(np.min(done)) if len(done) else 0.0
        for suffix, q in PERCENTILES.items():
            if f"{name}.{suffix}" in samples and thin_tail(least, q):
                out.add(f"{name}.{suffix}")
    return out


RunArgs = tuple[Experiment, int, float | None, float | None]  # experiment, seed, duration, warm-up


def _run_one(args: RunArgs) -> tuple[dict[str, float], dict[str, Tail]]:
    """One run's measures and each flow's latency tail (for pooled percentiles)."""
    from .simulation import Simulation

    exp, seed, duration, warmup = args
    try:
        res = Simulation(exp).run(seed=seed, duration_s=duration, warmup_s=warmup)
    except ModelError:
        raise
    except EmulatorError as e:  # which replication: its seed reproduces it alone (--seed)
        ctx = f" (in the replication with seed {seed})"
        raise (NativeError(e.status, f"{e}{ctx}") if isinstance(e, NativeError) else EmulatorError(f"{e}{ctx}")) from None
    return measures(res), res.tails()


def measure_key(args: RunArgs) -> str:
    """The cache key of one replication's measures: the engine input the experiment compiles
    to (not its raw data, which an Experiment built or replaced in Python need not match:
    two such once shared a key), the window it runs (the job's, else the experiment's), its
    seed, and the code."""
    from . import __version__
    from ._core import VERSION as ENGINE_VERSION
    from .model import compile_experiment
    from .runner import code_hash

    exp, seed, duration, warmup = args
    c = compile_experiment(exp)
    # all of it but where each flow was written: the measures read more than the engine's
    # input (which resources are host cores, the reserve, the vCPUs sold, the tenants), and
    # a key of the engine input alone served one host's reserve to another
    spec = hashlib.sha256(repr(replace(c, flow_where=())).encode()).hexdigest()
    blob = json.dumps({"measures": spec, "seed": int(seed), "vemu": __version__,
                       "engine": ENGINE_VERSION, "code": code_hash(),
                       "duration_s": exp.duration_s if duration is None else duration,
                       "warmup_s": exp.warmup_s if warmup is None else warmup}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def run_measures(jobs: Sequence[RunArgs], *, workers: int | None = None, groups: Sequence[int] | None = None,
                 cache: Any = None) -> tuple[list[dict[str, float]], list[Pool]]:
    """The measures of each job (experiment, seed, duration, warm-up), in job order, on a
    process pool (workers=1: here) that Ctrl-C or SIGTERM stops at once (runner.pool_run);
    and the latency histograms pooled over each group of jobs (``groups[i]``, the group of
    job i: 0, 1, ...; default all one group). With a ``cache`` (runner.Cache) each
    replication is stored as it finishes and taken from it when there: a run of ten
    stopped after seven, started again, computes three."""
    from .result import tail_from_json, tail_to_json
    from .runner import as_cache, pool_run

    cache = as_cache(cache)

    groups = [0] * len(jobs) if groups is None else list(groups)
    rows: list[dict[str, float]] = [{} for _ in jobs]
    pools = [Pool() for _ in range(max(groups, default=-1) + 1)]

    def done(i: int, out: tuple[dict[str, float], dict[str, Tail]]) -> None:
        rows[i] = out[0]
        pools[groups[i]].add(out[1], part=i)

    keys = [measure_key(j) for j in jobs] if cache is not None else [None] * len(jobs)
    todo = []
    for i, k in enumerate(keys):
        hit = cache.get(k) if k is not None else None
        if hit is not None:
            done(i, (hit["measures"], {name: tail_from_json(t) for name, t in hit["tails"].items()}))
        else:
            todo.append(i)

    def ran(j: int, out: tuple[dict[str, float], dict[str, Tail]]) -> None:
        i = todo[j]
        if keys[i] is not None:
            cache.put(keys[i], {"measures": out[0], "tails": {n: tail_to_json(t) for n, t in out[1].items()}})
        done(i, out)

    pool_run(_run_one, [jobs[i] for i in todo], workers, ran)
    return rows, pools


def quantile_ci(quantile: Any, q: float, fractions: np.ndarray, *, level: float = 0.95) -> Interval:
    """A q-quantile's interval by sectioning through the distribution function: each part
    (a run, or a batch) gives the fraction of its requests at or below the pooled q-quantile
    (``fractions``; :meth:`Pool.cdf_at`), those fractions' t interval q ± h is an interval
    for the distribution function there, and ``quantile`` (the pooled requests' quantile
    function) maps its ends back to latencies, ``low`` and ``high`` (the upper end no
    further than the largest latency seen); the half-width is the wider side. The
    fractions are means of indicators, near normal across parts, where the parts' own tail
    quantiles are skewed and each biased low: their t·s/√n interval covered an M/M/1's p99
    in 86% of sets of ten 20 ms runs at ρ 0.9, and 67% at ρ 0.95 (exercise 9's runs), where
    this one covered 93% and 87% (a review's measurement, 300 and 200 sets)."""
    point = quantile(q)
    ci = mean_ci(np.sort(fractions), level=level)  # sorted: the same bits whatever order parts came in
    if not (math.isfinite(point) and math.isfinite(ci.half_width)):
        return Interval(point, math.nan, ci.n, math.nan, level)
    lo, hi = quantile(max(q - ci.half_width, 0.0)), quantile(min(q + ci.half_width, 1.0))
    lo, hi = min(lo, point), max(hi, point)
    half = max(point - lo, hi - point)
    t = t_quantile((1 + level) / 2, ci.n - 1)
    return Interval(point, half, ci.n, half * math.sqrt(ci.n) / t, level, lo, hi)


def pooled_percentiles(samples: dict[str, np.ndarray], pool: Pool, *,
                       level: float = 0.95) -> tuple[dict[str, Interval], set[str]]:
    """Each percentile's interval by sectioning, over runs: the point estimate is the
    quantile of every run's requests together (``pool``), the interval :func:`quantile_ci`'s
    over the runs the pool kept apart (``Pool.add(..., part=)``; without them, t·s/√n of
    the runs' own percentiles, ``samples``: one value per run, named as :func:`measures`
    names them). Returns those intervals and the set of percentiles whose runs' mean sits
    further from the pooled value than the half-width (``biased``: each run too short for
    that tail). A percentile no run gives (no completion) is left out."""
    out: dict[str, Interval] = {}
    biased: set[str] = set()
    for k, v in samples.items():
        name, _, suffix = k.rpartition(".")
        if suffix not in PERCENTILES or not np.any(np.isfinite(v)):
            continue
        out[k], off = sectioned(pool, name, PERCENTILES[suffix], mean_ci(v, level=level), level=level)
        if off:
            biased.add(k)
    return out, biased


def sectioned(pool: Pool, name: str, q: float, own: Interval, *, level: float = 0.95) -> tuple[Interval, bool]:
    """The q-quantile of flow ``name``'s requests in ``pool`` with its interval by sectioning
    over the runs the pool kept apart (:func:`quantile_ci`; with fewer than 2 of them, the
    pooled value with ``own``'s half-width: ``own`` is the t interval of the runs' own
    q-quantiles), and whether ``own``'s mean sits further from it than the half-width and a
    histogram bucket (biased: each run too short for that tail)."""
    if len(pool.parts.get(name, {})) >= 2:
        iv = quantile_ci(lambda p: pool.quantile(name, p), q, pool.cdf_at(name, pool.quantile(name, q)), level=level)
    else:
        iv = Interval(pool.quantile(name, q), own.half_width, own.n, own.std, level)
    return iv, outside(own.mean, iv, bucket_us(iv.mean))


@dataclass
class Replications:
    """n independent runs: the seeds, every run's measures, and each measure's CI. A
    percentile's point estimate is that of all the runs' latencies together (their
    histograms summed), its width from the runs' own percentiles (sectioning, as for
    batches: :func:`batch_quantiles`); ``biased`` names those whose runs' mean sits further
    from it than the half-width (each run too short for that tail)."""

    seeds: list[int]
    samples: dict[str, np.ndarray]
    intervals: dict[str, Interval]
    biased: set[str] = field(default_factory=set)

    @property
    def thin_tails(self) -> set[str]:
        """Percentiles estimated from too few tail requests in some run (:func:`thin_tails`)."""
        return thin_tails(self.samples)

    def to_dict(self) -> dict[str, Any]:
        thin = self.thin_tails
        # "runs": each run's own value, in the order of "seeds" (a percentile's own, not the
        # pooled estimate the interval is about: what a reader checks a `biased` flag against)
        return {"seeds": self.seeds,
                "measures": {k: v.to_dict() | {"runs": [float(x) for x in self.samples[k]]}
                             | ({"thin_tail": True} if k in thin else {})
                             | ({"biased": True} if k in self.biased else {}) for k, v in self.intervals.items()}}


def collect(rows: Sequence[dict[str, float]]) -> dict[str, np.ndarray]:
    """Measure -> one value per run (:func:`missing` where a run lacks it)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return {k: np.array([r.get(k, missing(k)) for r in rows], dtype=np.float64) for k in keys}


def one_of(first: Any, second: Any, names: tuple[str, str]) -> tuple[Any, str]:
    """The value of an argument that has two names (``n`` or ``replications``, ``seed0`` or
    ``seed``, as :func:`emulator.sweep.sweep` calls them), and the name the caller gave it
    by (for messages): either, not both."""
    if first is not None and second is not None:
        raise ModelError(f"give {names[0]} or {names[1]}, not both", key=names[0])
    return (second, names[1]) if first is None and second is not None else (first, names[0])


def replicate(experiment: Experiment, n: int | None = None, *, seed0: int | None = None, workers: int | None = None,
              duration_s: float | None = None, warmup_s: float | None = None,
              level: float = 0.95, cache: Any = None, replications: int | None = None,
              seed: int | None = None) -> Replications:
    """Runs n independent replications (seeds from :func:`replication_seeds` of ``seed0``,
    default the experiment's seed) and returns each measure's mean and t-based CI, a
    percentile's by sectioning (:func:`pooled_percentiles`). ``replications`` and ``seed``
    are other names for ``n`` and ``seed0``, as a sweep has them."""
    (n, n_name), (seed0, seed_name) = one_of(n, replications, ("n", "replications")), one_of(seed0, seed, ("seed0", "seed"))
    if n is None:
        raise ModelError("need n (or replications), an integer of at least 2", key="n")
    experiment = as_experiment(experiment)
    n = check_count(n, key=n_name, lo=2, hi=MAX_REPLICATIONS)  # an interval needs 2
    level = check_level(level)
    seeds = replication_seeds(experiment.seed if seed0 is None else check_seed(seed0, key=seed_name), n)
    rows, (pool,) = run_measures([(experiment, s, duration_s, warmup_s) for s in seeds], workers=workers,
                                 cache=cache)
    samples = collect(rows)
    intervals = {k: mean_ci(v, level=level) for k, v in samples.items()}
    pooled, biased = pooled_percentiles(samples, pool, level=level)
    return Replications(seeds, samples, intervals | pooled, biased)


# ----------------------------------------------------------------------------- batch means

# fewer batch means than this cannot fail the lag-1 test (three means' lag-1 is at most 0,
# below the 5% point of independent ones): their independence is not judged
MIN_LAG1_BATCHES = 4

@dataclass(frozen=True)
class BatchMeans:
    """The batch means of one series, their CI, and the lag-1 autocorrelation."""

    interval: Interval
    batch_means: np.ndarray
    lag1: float  # lag-1 autocorrelation of the batch means (NaN with fewer than 3)
    discarded: int  # leading samples dropped so the batches are equal
    thin_tail: bool = False  # a batch percentile from fewer than MIN_TAIL_REQUESTS beyond it
    biased: bool = False  # batch percentiles further from the whole run's than the half-width

    @property
    def correlated(self) -> bool:
        """The batch means fail a one-sided 5% test of independence: for b independent
        normal means the lag-1 sample autocorrelation has mean -1/b and variance
        (b-2)²/(b²(b-1)) (Moran 1948; Law, *Simulation Modeling and Analysis*, 5th ed.,
        §9.5.3 uses it approximately normal), so more than -1/b + 1.645 (b-2)/(b√(b-1))
        (0.29 for 20 batches) says the batches are too short and the interval too narrow:
        use fewer, longer batches or a longer run. Its size on independent normal means,
        measured on 40,000 series each: 5.5% (4 batches), 5.3% (10), 5.1% (20), 5.0% (50);
        Bartlett's variance 1/b, used before, gave 0, 2.6, 3.6 and 4.5%, and with 3 to 5
        batches could never fire (their lag-1 is at most cos(2π/(b+1)): 0, 0.31, 0.5).
        Below 4 batches no test is possible (:data:`MIN_LAG1_BATCHES`): False."""
        b = int(np.isfinite(self.batch_means).sum())
        return (b >= MIN_LAG1_BATCHES and math.isfinite(self.lag1)
                and self.lag1 > -1 / b + 1.645 * (b - 2) / (b * math.sqrt(b - 1)))

    def to_dict(self) -> dict[str, Any]:
        return self.interval.to_dict() | {"lag1": self.lag1, "batches": len(self.batch_means),
                                          "discarded": self.discarded, "correlated": self.correlated,
                                          "thin_tail": self.thin_tail, "biased": self.biased}


def lag1_autocorrelation(x: Sequence[float] | np.ndarray) -> float:
    """Σ (x_i - x̄)(x_{i+1} - x̄) / Σ (x_i - x̄)²; NaN for a constant series (one whose
    spread is rounding: a deterministic latency's batches differ by ~1e-16, whose
    "autocorrelation" flagged it correlated)."""
    a = np.asarray(x, dtype=np.float64)
    if len(a) < 3:
        return math.nan
    d = a - a.mean()
    if not np.any(np.abs(d) > REL_TOL * max(float(np.abs(a).max()), 1e-300)):
        return math.nan
    den = float(d @ d)
    return float(d[:-1] @ d[1:]) / den if den > 0 else math.nan


# differences below this fraction of the values are floating-point rounding, not spread
REL_TOL = 1e-9


def apart(x: float, y: float, half_width: float) -> bool:
    """Whether x and y differ by more than half_width (and by more than rounding): False
    when either is NaN. A percentile whose every run or batch reads the same (a fixed
    latency) has a half-width of ~1e-16 and a pooled value off it by as much."""
    return bool(abs(x - y) > half_width + REL_TOL * max(abs(x), abs(y)))


def outside(x: float, iv: Interval, slack: float = 0.0) -> bool:
    """:func:`apart` from the interval's point by more than its side toward ``x`` (an
    interval that is not symmetric has two) and ``slack``."""
    return apart(x, iv.mean, (iv.mean - iv.lo if x < iv.mean else iv.hi - iv.mean) + slack)


def bucket_us(x_us: float) -> float:
    """The width (µs) of the latency histogram's bucket that holds ``x_us``: a percentile
    is read to within it (runs of identical latencies read a bucket's rank positions a
    little apart: per run and pooled, 2.043872 against 2.043893 µs)."""
    if not math.isfinite(x_us) or x_us < 0:
        return 0.0
    from ._core import hist_index, hist_width

    return float(hist_width(hist_index(int(min(x_us * 1e6, 2**63 - 1))))) / 1e6


def batch_means(samples: Sequence[float] | np.ndarray, n_batches: int, *,
                weights: Sequence[float] | np.ndarray | None = None, level: float = 0.95) -> BatchMeans:
    """Cuts ``samples`` (in time order) into ``n_batches`` contiguous equal batches (the
    remainder is dropped from the start, the part nearest the transient) and returns the
    CI of the mean from the batch means. With ``weights`` (e.g. completions per window,
    with samples the window means) a batch's mean is Σ w x / Σ w, and the point estimate is
    that ratio over all the kept samples (the batches' plain mean would weigh a batch of few
    completions like one of many); the half-width is t·s/√b from the batch means' spread."""
    x = np.asarray(samples, dtype=np.float64)
    if n_batches < 2 or len(x) < n_batches:
        raise ModelError(f"need 2 <= n_batches <= {len(x)} samples, got {n_batches}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape:
        raise ModelError("weights must match the samples")
    size = len(x) // n_batches
    skip = len(x) - size * n_batches
    xb, wb = x[skip:].reshape(n_batches, size), w[skip:].reshape(n_batches, size)
    tot = wb.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(tot > 0, np.nansum(np.where(wb > 0, xb * wb, 0.0), axis=1) / tot, np.nan)
    ci = mean_ci(means, level=level)
    ok = np.isfinite(means)
    if ok.any():  # the point estimate is the kept run's own Σ w x / Σ w, not the plain mean of
        # the batches' ratios: equal-time batches hold unequal counts (O(1/size) ratio bias)
        ci = replace(ci, mean=float((tot[ok] * means[ok]).sum() / tot[ok].sum()))
    return BatchMeans(ci, means, lag1_autocorrelation(means[ok]), skip)


@dataclass
class WindowSeries:
    """Measures of consecutive equal windows of one run. ``weights[k]`` is what each
    window's value of measure k averages over (completions for latencies, 1 otherwise)."""

    window_s: float
    start_s: float  # the simulated time the first window starts
    values: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    # per flow (and class): the latency histogram and maximum (ps) of each group of
    # ``hist_every`` consecutive windows (n_windows / hist_every rows × buckets), so that
    # percentiles of several windows together come from their merged histogram
    hists: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    maxes: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    classes: frozenset[str] = frozenset()  # the names (FLOW/CLASS) that are classes of a flow's mix


def window_series(experiment: Experiment, *, window_s: float, n_windows: int, seed: int | None = None,
                  start_s: float = 0.0, classes: bool = False, hist_every: int = 1) -> WindowSeries:
    """Runs ``experiment`` from empty to ``start_s`` (unmeasured), then ``n_windows`` windows
    of ``window_s``, reading each window's exact statistics and starting a new one. With
    ``classes``, each class of a flow's mix too (FLOW/CLASS), where the engine keeps its
    histogram. Histograms are summed over each ``hist_every`` windows (which must divide
    n_windows): a batch's, when only batches are read, in a fraction of the memory."""
    from .simulation import Simulation

    if not window_s > 0 or n_windows < 1 or start_s < 0 or hist_every < 1 or n_windows % hist_every:
        raise ModelError("need window_s > 0, n_windows >= 1, start_s >= 0, and hist_every dividing n_windows")
    sim = Simulation(experiment)
    c = sim.compiled
    seed = experiment.seed if seed is None else check_seed(seed)
    rows: list[dict[str, float]] = []
    wts: list[dict[str, float]] = []
    # each flow's latency, and each class's of a flow of several (as FLOW/CLASS) where the
    # engine keeps their histograms: (name, its latency sum, count, max and histogram rows)
    series: list[tuple[str, str, int, Any]] = []
    for i, name in enumerate(c.flows):
        series.append((name, "flow", i, None))
        own = c.own_classes(i)
        if classes and len(own) > 1:  # (their p99 only where the engine keeps their histograms)
            series += [(f"{name}/{c.classes[k][1]}", "class", k, None) for k in own]
    kept = [name for name, kind, *_ in series if kind == "flow" or (classes and c.spec.class_histograms)]
    hists: dict[str, list[np.ndarray]] = {name: [] for name in kept}
    maxes: dict[str, list[float]] = {name: [] for name in kept}
    in_group = 0  # windows summed into each series' last histogram row so far
    win_ps = round(window_s * PS_PER_S)
    if win_ps < 1:
        raise ModelError(f"windows of {window_s:g} s are under a picosecond, the engine's time unit: a longer "
                         "--duration (experiment.duration_s), or fewer batches or windows")
    t = round(start_s * PS_PER_S)
    with Engine(c.spec, seed=seed) as eng:
        eng.set_stall_limit(sim.stall_limit)
        if t > 0:  # with no warm-up the first window is [0, win]: what happens at t = 0 counts
            sim.advance(eng, t, t + n_windows * win_ps, 1 << 22, None)
            eng.reset_stats()
        for _ in range(n_windows):
            t += win_ps
            sim.advance(eng, t, t, 1 << 22, None)
            st = eng.stats(class_hist=classes)
            res = Result(experiment, c, st, seed, win_ps / PS_PER_S, 0.0, 0, 0.0)
            row = {"usable_fraction": res.usable_fraction}
            wt = {"usable_fraction": 1.0}
            for name, kind, i, _ in series:
                done = int(st[f"{kind}_completed"][i])
                total, mx = float(st[f"{kind}_latency_sum"][i]), float(st[f"{kind}_latency_max"][i])
                h = st["flow_hist" if kind == "flow" else "class_hist"][i] if kind == "flow" or \
                    "class_hist" in st else None
                if kind == "flow":
                    row[f"{name}.throughput_per_s"] = done / window_s
                    wt[f"{name}.throughput_per_s"] = 1.0
                row[f"{name}.mean_us"] = total / done / 1e6 if done else math.nan
                wt[f"{name}.mean_us"] = float(done)
                if h is None:
                    continue
                row[f"{name}.p99_us"] = hist_quantile(h, 0.99, mx) / 1e6
                wt[f"{name}.p99_us"] = 1.0 if done else 0.0
                if in_group == 0:
                    hists[name].append(np.array(h, dtype=np.uint64))
                    maxes[name].append(mx)
                else:
                    hists[name][-1] += np.asarray(h, dtype=np.uint64)
                    maxes[name][-1] = max(maxes[name][-1], mx)
            in_group = (in_group + 1) % hist_every
            rows.append(row)
            wts.append(wt)
            eng.reset_stats()
    return WindowSeries(window_s, start_s, collect(rows), collect(wts),
                        {k: np.array(v) for k, v in hists.items()}, {k: np.array(v) for k, v in maxes.items()},
                        frozenset(name for name, kind, *_ in series if kind == "class"))


def batch_quantiles(hists: np.ndarray, maxes: np.ndarray, n_batches: int, q: float, *,
                    level: float = 0.95) -> BatchMeans:
    """A latency percentile's interval from batches, by sectioning: the windows' histograms
    (in time order, one row each) are cut into ``n_batches`` contiguous equal batches (the
    remainder dropped from the start) and each batch's q-quantile (µs) is read from the sum
    of its windows' histograms; the point estimate is the q-quantile of the whole run (all
    the batches' histograms summed), and the half-width :func:`quantile_ci`'s over the
    batches: sectioning (Asmussen & Glynn, *Stochastic Simulation*, 2007, §III.5a; Nakayama,
    *ACM TOMACS* 24(4), 2014) through each batch's fraction of requests at or below that
    point, not through the batch quantiles' own spread, which is skewed and gave intervals
    covering an M/M/1's p99 at ρ 0.9 in 62% of 200 runs of 20 batches (a review's
    measurement). The mean of the batch quantiles (Seila's batch-quantile
    method, *Management Science* 28(5), 1982) is biased low by as much as a batch's own
    quantile is, which for a tail under heavy load is far more than the whole run's: an
    M/M/1 at ρ 0.95 in 20 batches of 10 ms read its p99 at 64-71 µs against the true 92
    (and the whole run's 77-85), and its interval covered the truth in none of 12 runs,
    where sectioning's covered 5. ``biased`` flags a percentile whose batch mean sits
    further from the whole run's than the half-width: its batches are too short for it.
    Averaging per-window quantiles would be worse still (-18% for an M/M/1 p99 from
    windows of ~125 requests)."""
    h = np.asarray(hists)
    mx = np.asarray(maxes, dtype=np.float64)
    if h.ndim != 2 or len(mx) != len(h):
        raise ModelError("need one histogram row and one maximum per window")
    if n_batches < 2 or len(h) < n_batches:
        raise ModelError(f"need 2 <= n_batches <= {len(h)} windows, got {n_batches}")
    size = len(h) // n_batches
    skip = len(h) - size * n_batches
    merged = [h[skip + b * size: skip + (b + 1) * size].sum(axis=0, dtype=np.uint64) for b in range(n_batches)]
    vals = np.array([hist_quantile(m, q, float(mx[skip + b * size: skip + (b + 1) * size].max())) / 1e6
                     for b, m in enumerate(merged)])
    thin = any(thin_tail(float(m.sum()), q) for m in merged)
    whole = np.sum(merged, axis=0, dtype=np.uint64)
    top = float(mx[skip:].max())

    def quantile(p: float) -> float:
        return hist_quantile(whole, p, top) / 1e6 if whole.sum() else math.nan

    point = quantile(q)
    bmax = [float(mx[skip + b * size: skip + (b + 1) * size].max()) for b in range(n_batches)]
    fractions = np.array([tail_cdf(nz, m[nz], point * 1e6, bm)
                          for m, bm in zip(merged, bmax) for nz in (np.flatnonzero(m),)])
    iv = quantile_ci(quantile, q, fractions, level=level)
    biased = outside(mean_ci(vals, level=level).mean, iv, bucket_us(iv.mean))
    return BatchMeans(iv, vals, lag1_autocorrelation(vals[np.isfinite(vals)]), skip, thin, biased)


def long_run(experiment: Experiment, *, n_batches: int = 20, windows_per_batch: int = 10, seed: int | None = None,
             duration_s: float | None = None, warmup_s: float | None = None,
             level: float = 0.95) -> dict[str, BatchMeans]:
    """One long run (warm-up, then ``duration_s`` cut into n_batches × windows_per_batch
    windows) and the batch-means CI of every measure. A batch's mean latency is its
    latency sum over its completions; its p99 and p99.9 are those of its merged latency
    histogram (:func:`batch_quantiles`)."""
    experiment = as_experiment(experiment)
    n_batches = check_count(n_batches, key="n_batches", lo=2, hi=10_000)
    windows_per_batch = check_count(windows_per_batch, key="windows_per_batch", hi=10_000)
    level = check_level(level)
    dur = experiment.duration_s if duration_s is None else duration_s
    warm = experiment.warmup_s if warmup_s is None else warmup_s
    check_window(dur, warm)
    n_win = n_batches * windows_per_batch
    # (the histograms summed per batch as they come: only batches are read)
    ws = window_series(experiment, window_s=dur / n_win, n_windows=n_win, seed=seed, start_s=warm, classes=True,
                       hist_every=windows_per_batch)
    out = {k: batch_means(v, n_batches, weights=ws.weights[k], level=level) for k, v in ws.values.items()}
    for name, h in ws.hists.items():  # (a class of a flow's mix: its p99 only, as :func:`measures`)
        for key, q in (("p99_us", 0.99),) + ((("p999_us", 0.999),) if name not in ws.classes else ()):
            out[f"{name}.{key}"] = batch_quantiles(h, ws.maxes[name], n_batches, q, level=level)
    # in the order of :func:`measures`: usable fraction, then each flow's measures together
    order = ["usable_fraction"] + [f"{name}.{k}" for name in ws.hists
                                   for k in ("throughput_per_s", "mean_us", "p99_us", "p999_us")]
    order = [k for k in order if k in out]
    return {k: out[k] for k in order + [k for k in out if k not in order]}


# ----------------------------------------------------------------------------- warm-up

def mser5(series: Sequence[float] | np.ndarray) -> int:
    """MSER-5 truncation point: the number of leading samples of ``series`` to discard.

    The series is averaged in groups of 5 (a trailing partial group is dropped); with m
    groups Z_1..Z_m, d in [0, m/2] minimises Σ_{j>d} (Z_j - Z̄_d)² / (m - d)²; the answer
    is 5d. NaN samples (empty windows) count as their group's other values."""
    x = np.asarray(series, dtype=np.float64)
    m = len(x) // 5
    if m < 2:
        return 0
    z = np.array([np.nanmean(g) if np.isfinite(g).any() else np.nan for g in x[: 5 * m].reshape(m, 5)])
    if not np.isfinite(z).all():
        good = np.isfinite(z)
        z = np.where(good, z, np.nanmean(z) if good.any() else 0.0)
    best_d, best = 0, math.inf
    # suffix sums give every d in O(m)
    s1 = np.cumsum(z[::-1])[::-1]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    for d in range(0, m // 2 + 1):
        k = m - d
        ss = s2[d] - s1[d] * s1[d] / k
        val = max(ss, 0.0) / (k * k)
        if val < best - 1e-15 * abs(best if math.isfinite(best) else 0):
            best, best_d = val, d
    return 5 * best_d


@dataclass
class WarmupChoice:
    """What :func:`choose_warmup` chose, and from what."""

    warmup_s: float
    index: int  # windows truncated
    measure: str
    window_s: float
    converged: bool  # False: MSER-5 hit its m/2 limit, or had too few windows to judge
    series: np.ndarray = field(repr=False)

    @property
    def judged(self) -> int:
        """The windows MSER-5 could judge: those in which some request completed."""
        return int(np.isfinite(self.series).sum())


def choose_warmup(experiment: Experiment, *, horizon_s: float | None = None, n_windows: int = 200,
                  measure: str | None = None, seed: int | None = None) -> WarmupChoice:
    """Runs a pilot of ``horizon_s`` (default warm-up + duration of the experiment) from an
    empty system, cut into ``n_windows`` windows, and applies MSER-5 to the windows' values
    of ``measure`` (default: the first flow's mean latency)."""
    experiment = as_experiment(experiment)
    n_windows = check_count(n_windows, key="n_windows", hi=1_000_000)  # fewer than 10: not converged, and said so
    horizon = experiment.warmup_s + experiment.duration_s if horizon_s is None else horizon_s
    check_window(horizon, 0.0)
    ws = window_series(experiment, window_s=horizon / n_windows, n_windows=n_windows, seed=seed)
    if measure is None:
        measure = next((k for k in ws.values if k.endswith(".mean_us")), "usable_fraction")
    if measure not in ws.values:
        raise ModelError(f"unknown measure '{measure}'; measures: {', '.join(ws.values)}")
    series = ws.values[measure]
    d = mser5(series)
    # converged: MSER-5 chose below its m/2 limit, counted in windows with data (with fewer
    # than 2 groups of 5 such windows it cannot judge: limit 0, never converged)
    limit = 5 * ((int(np.isfinite(series).sum()) // 5) // 2)
    return WarmupChoice(d * ws.window_s, d, measure, ws.window_s, d < limit, series)
