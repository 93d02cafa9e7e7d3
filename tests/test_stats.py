"""emulator.stats and emulator.compare: intervals that cover, CRN that pays, determinism.

Statistical assertions state their tolerance and why it holds. Every run uses fixed seeds,
so the tests are deterministic; the stated failure probabilities say how unlikely a
failure would be for a correct implementation under an arbitrary seed.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator._core import ModelError
from emulator.cli import main
from emulator.compare import compare, unpaired_ci
from emulator.model import load_experiment
from emulator._core import HIST_BUCKETS, hist_index
from emulator.stats import (
    _t_quantile_exact,
    apart,
    batch_means,
    batch_quantiles,
    choose_warmup,
    lag1_autocorrelation,
    long_run,
    mean_ci,
    mser5,
    replicate,
    replication_seeds,
    t_quantile,
)
from emulator.result import hist_quantile
from emulator.theory import mm1_sojourn, mm1_sojourn_quantile
from conftest import TANDEM, station, to_toml


def _mm1(rho: float = 0.5, *, service_ns: float = 1000, duration_s: float = 0.05, warmup_s: float = 0.005,
         seed: int = 1) -> dict[str, Any]:
    """M/M/1 on an off-host 1 GHz core (cycles are ns), Poisson arrivals at ρ per µs."""
    return {
        "host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
        "architecture": {"name": "a", "resources": {"s": {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}},
                         "paths": {"p": {"stages": [{"on": "s", "cycles": {"dist": "exp", "mean": service_ns}}]}}},
        "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": rho * 1e6,
                                             "steps": [{"path": "p"}]}]},
        "experiment": {"duration_s": duration_s, "warmup_s": warmup_s, "seed": seed},
    }


# ----------------------------------------------------------------------------- Student's t


@pytest.mark.parametrize("df", list(range(1, 31)) + [31, 40, 60, 99, 120, 250, 1000])
def test_t_quantile_fallback_matches_scipy(df: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    for p in (0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.05):
        # the fallback is the exact integer-df CDF inverted by bisection: far inside 1e-3
        assert _t_quantile_exact(p, df) == pytest.approx(float(stats.t.ppf(p, df)), abs=1e-6)


def test_t_quantile_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # import fails
    monkeypatch.setitem(sys.modules, "scipy", None)
    assert t_quantile(0.975, 1) == pytest.approx(12.706204736, abs=1e-6)  # tabulated
    assert t_quantile(0.975, 9) == pytest.approx(2.262157163, abs=1e-6)
    assert t_quantile(0.975, 10**4) == pytest.approx(1.960201, abs=1e-5)
    with pytest.raises(ModelError):
        t_quantile(0.975, 0)
    with pytest.raises(ModelError):
        t_quantile(1.0, 5)


def test_mean_ci_by_hand() -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    ci = mean_ci(x)
    assert ci.mean == 2.5 and ci.n == 4
    assert ci.half_width == pytest.approx(3.182446305 * np.std(x, ddof=1) / 2, rel=1e-6)
    assert math.isnan(mean_ci([1.0]).half_width)


# ----------------------------------------------------------------------------- batch means and MSER-5


def _ar1(phi: float, n: int, *, seed: int) -> np.ndarray:
    """x_i = φ x_{i-1} + e_i with standard normal e, from x_0 = e_0."""
    e = np.random.default_rng(seed).standard_normal(n)
    x = np.empty_like(e)
    acc = 0.0
    for i, v in enumerate(e):
        acc = phi * acc + v
        x[i] = acc
    return x


def test_batch_means_of_an_ar1_series() -> None:
    # AR(1) with φ = 0.9, 2·10⁵ samples, 20 batches of 10⁴: the autocorrelation decays within
    # ~50 samples, so the batch means are nearly independent, and the interval covers the
    # true mean 0. One draw (seed 7, so the test is deterministic): over 1,000 seeds a
    # review measured these three checks failing 17.8% (|lag1| < 0.3: its standard error
    # with 20 batches is ~0.22), 5.9% (a 95% interval) and 4.5% (the 5% test) of the time,
    # so they are a smoke check of this draw, not of the method's rates; coverage over many
    # seeds is test_confidence_intervals_have_their_coverage's.
    x = _ar1(0.9, 200_000, seed=7)
    bm = batch_means(x, 20)
    assert not bm.correlated  # and the 5% test of independence agrees
    assert bm.interval.covers(0.0)
    assert abs(bm.lag1) < 0.3
    # the raw series is strongly correlated: the naive iid interval is ~4x too narrow
    assert lag1_autocorrelation(x) == pytest.approx(0.9, abs=0.01)
    assert mean_ci(x).half_width < bm.interval.half_width / 3


def test_batch_means_weights_and_remainder() -> None:
    bm = batch_means([9.0, 1.0, 2.0, 3.0, 4.0], 2, weights=[1, 1, 3, 1, 1])
    assert bm.discarded == 1  # dropped from the start, nearest the transient
    assert list(bm.batch_means) == pytest.approx([(1 + 6) / 4, 3.5])
    # the point estimate weighs each kept sample once: (1 + 6 + 3 + 4) / 6, not (1.75 + 3.5) / 2
    assert bm.interval.mean == pytest.approx(14 / 6)
    assert bm.interval.half_width == pytest.approx(mean_ci(bm.batch_means).half_width)
    with pytest.raises(ModelError):
        batch_means([1.0, 2.0], 3)


def test_mser5_finds_an_obvious_transient() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    noise = rng.standard_normal(n)
    transient = 50 * np.exp(-np.arange(n) / 20)  # decays to below the noise by ~80 samples
    d = mser5(noise + transient)
    assert 40 <= d <= 150
    assert mser5(noise) <= 100  # no transient: little or nothing is cut (deterministic seed)
    assert mser5(np.r_[np.full(100, 10.0), np.zeros(400)]) == 100  # a step: exactly the step
    # a step at 40% of the series: MSER-5 searches up to half of it (a mutant searching a
    # quarter cut 250)
    assert mser5(np.r_[np.full(400, 10.0), np.zeros(600)]) == 400
    assert mser5([1.0, 2.0, 3.0]) == 0


def test_choose_warmup_from_an_empty_start() -> None:
    # M/M/1 at ρ 0.95 starts empty; its relaxation time 1/(μ(1-√ρ)²) is 1.6 ms. A 400 ms
    # pilot in 200 windows: MSER-5 must converge (not hit its m/2 limit). It did for 40 of
    # 40 seeds (on a 100 ms pilot for 38), and cut nothing for 26 of them: an empty start's
    # bias is within this queue's noise (that MSER-5 finds a transient that is not is
    # test_mser5_finds_an_obvious_transient's)
    exp = load_experiment(_mm1(0.95, duration_s=0.4, warmup_s=0.0))
    w = choose_warmup(exp, n_windows=200)
    assert w.measure == "f.mean_us"
    assert w.converged
    assert w.warmup_s == pytest.approx(w.index * w.window_s)
    # too few windows to judge (fewer than 2 groups of 5), or none with a completion in it:
    # not converged, whatever it cut
    assert not choose_warmup(exp, n_windows=9).converged
    assert not choose_warmup(exp, horizon_s=1e-9).converged


def test_long_run_batch_means_covers_mm1() -> None:
    # one run of 1 s at ρ 0.5 (5·10⁵ requests, ~10⁵ relaxation times), 20 batches: the
    # interval covers theory (95%, fixed seed), is narrow (pilot half-width ~0.6%), and the
    # batches are long enough that the lag-1 autocorrelation of their means is small.
    exp = load_experiment(_mm1(0.5, duration_s=1.0, warmup_s=0.01))
    bm = long_run(exp, n_batches=20)
    m = bm["f.mean_us"]
    assert m.interval.covers(mm1_sojourn(0.5, 1.0))
    assert m.interval.half_width < 0.015 * mm1_sojourn(0.5, 1.0)
    assert abs(m.lag1) < 0.5
    assert bm["f.throughput_per_s"].interval.covers(5e5)
    assert set(bm) >= {"usable_fraction", "f.p99_us"}


def test_batch_quantiles_merge_the_windows_histograms() -> None:
    # 6 windows, 2 batches of 3 (no remainder): each batch's quantile is that of the sum of
    # its windows' histograms, not the mean of the windows' quantiles
    rng = np.random.default_rng(4)
    h = rng.integers(0, 5, size=(6, 4000)).astype(np.uint64)
    mx = np.full(6, 1e15)
    bq = batch_quantiles(h, mx, 2, 0.99)
    want = [hist_quantile(h[:3].sum(axis=0), 0.99, 1e15) / 1e6, hist_quantile(h[3:].sum(axis=0), 0.99, 1e15) / 1e6]
    assert list(bq.batch_means) == pytest.approx(want)
    # sectioning: the whole run's quantile; the interval through the distribution function,
    # each batch's share of requests at or below that point (values spread evenly over their
    # bucket), t with 1 df, its ends mapped back through the whole run's quantiles
    from emulator._core import hist_lower, hist_width
    whole = h.sum(axis=0)
    point = hist_quantile(whole, 0.99, 1e15)
    assert bq.interval.mean == pytest.approx(point / 1e6)
    lo, w = hist_lower(np.arange(4000)), hist_width(np.arange(4000))
    share = [float((np.clip((point - lo) / w, 0, 1) * b).sum() / b.sum()) for b in (h[:3].sum(axis=0), h[3:].sum(axis=0))]
    hw = 12.706205 * np.std(share, ddof=1) / math.sqrt(2)
    ends = [hist_quantile(whole, 0.99 - hw, 1e15), hist_quantile(whole, min(0.99 + hw, 1.0), 1e15)]
    assert bq.interval.half_width == pytest.approx(max(point - ends[0], ends[1] - point) / 1e6, rel=1e-6)
    assert bq.discarded == 0
    with pytest.raises(ModelError):
        batch_quantiles(h, mx, 7, 0.99)


def test_long_run_percentiles_are_sectioned_batch_quantiles() -> None:
    # M/M/1 at ρ 0.5 for 0.4 s in 800 windows of ~250 requests, 20 batches of ~10⁴. The mean
    # of the windows' p99s (what a batch used to report) is biased low by the few requests
    # in a window: -7.7% .. -10.3% over 12 seeds. Batch quantiles of the merged histograms
    # spread 1.5% (sd) around the true p99 = ln(100)/(μ - λ) over those seeds, and the whole
    # run's quantile (the sectioning estimate) less: tolerance 5%.
    exp = load_experiment(_mm1(0.5, duration_s=0.4, warmup_s=0.005))
    bm = long_run(exp, n_batches=20, windows_per_batch=40, seed=1)
    truth = mm1_sojourn_quantile(0.5, 1.0, 0.99)
    p99 = bm["f.p99_us"].interval
    assert p99.n == 20 and abs(p99.mean / truth - 1) < 0.05
    assert p99.covers(truth)  # a 95% interval, fixed seed
    assert "f.p999_us" in bm and bm["f.p999_us"].interval.n == 20


def test_batches_too_short_for_a_tail_are_flagged_biased() -> None:
    # examples/heavy-load.toml: M/M/1 at ρ 0.95 (true p99 92.1 µs, p99.9 138.2 µs), 0.2 s in
    # 20 batches of 10 ms. A batch's own p99 sits well below the whole run's (64-71 against
    # 77-85 µs over seeds 1-3), further than the half-width (8-9 µs): flagged, and the
    # estimate is the whole run's. At ρ 0.5 (the test above) batches of ~10⁴ are long enough.
    # The interval comes through the batches' shares of requests below the point (wider than
    # the batch quantiles' spread, and at seed 1 it covers the p99); the p99.9's batches hold
    # ~10 requests beyond it each, and their mean is further below than the half-width.
    exp = load_experiment(str(Path(__file__).resolve().parent.parent / "examples" / "heavy-load.toml"))
    bm = long_run(exp, n_batches=20, windows_per_batch=10, seed=1, warmup_s=0.01)
    for k in ("requests.p99_us", "requests.p999_us"):
        assert np.mean(bm[k].batch_means) < bm[k].interval.mean  # a batch's own tail is biased low
    assert bm["requests.p99_us"].interval.covers(mm1_sojourn_quantile(0.95, 1.0, 0.99))
    b = bm["requests.p999_us"]
    assert b.biased and np.mean(b.batch_means) < b.interval.mean - b.interval.half_width
    assert not long_run(load_experiment(_mm1(0.5, duration_s=0.4, warmup_s=0.005)), n_batches=20,
                        windows_per_batch=40, seed=1)["f.p99_us"].biased


# ----------------------------------------------------------------------------- replications


def test_replication_seeds_are_fixed_per_index() -> None:
    a, b = replication_seeds(1, 5), replication_seeds(1, 8)
    assert a == b[:5] and len(set(b)) == 8
    assert replication_seeds(2, 5) != a
    assert all(0 <= s < 2**63 for s in b)


@given(st.integers(0, 2**64 - 1), st.integers(1, 7), st.integers(0, 6))
@settings(max_examples=200, deadline=None)
def test_seeds_2_to_the_32_apart_share_no_replication(x: int, k: int, i: int) -> None:
    """SeedSequence pads its words with zeros: [x, i] and [x + (i << 32), 0] were one state,
    so replication i of seed x was replication 0 of seed x + (i << 32) (a review found it)."""
    y = x + (k << 32)
    if y >= 2**64:
        y = x - (k << 32)
    if y < 0:
        return
    assert set(replication_seeds(x, 7)).isdisjoint(replication_seeds(y, 7))


def test_small_seeds_keep_their_streams() -> None:
    # seeds below 2^32 (every bundled result's) are derived as before the encoding was fixed
    assert replication_seeds(1, 2) == [7883430198869069541, 5106859519625161097]


def test_replicate_identical_for_any_workers() -> None:
    exp = load_experiment(_mm1(0.7, duration_s=0.02))
    one = replicate(exp, 4, seed0=11, workers=1)
    two = replicate(exp, 4, seed0=11, workers=2)
    assert one.seeds == two.seeds
    assert one.samples.keys() == two.samples.keys()
    for k in one.samples:
        assert np.array_equal(one.samples[k], two.samples[k], equal_nan=True), k
    assert set(one.intervals) == {"usable_fraction", "f.throughput_per_s", "f.mean_us", "f.p99_us", "f.p999_us",
                                  "f.completed", "host_cycles.tenant", "host_cycles.idle", "host_cycles.reserved_idle"}
    # the percentiles' pooled histograms too: integer sums, the same bits in any order
    assert one.intervals == two.intervals and one.biased == two.biased
    # sectioning: a percentile is that of every run's requests together (each run redone
    # here), its interval through the runs' shares of requests at or below it
    from emulator.simulation import Simulation

    hist, top = None, 0.0
    for seed in one.seeds:
        st = Simulation(exp).run(seed=seed).stats
        h = np.array(st["flow_hist"][0], dtype=np.uint64)
        hist, top = (h if hist is None else hist + h), max(top, float(st["flow_latency_max"][0]))
    point = hist_quantile(hist, 0.99, top)
    assert one.intervals["f.p99_us"].mean == point / 1e6
    from emulator._core import hist_lower, hist_width
    lo, w = hist_lower(np.arange(len(hist))), hist_width(np.arange(len(hist)))
    share = []
    for seed in one.seeds:
        h = np.array(Simulation(exp).run(seed=seed).stats["flow_hist"][0], dtype=np.float64)
        share.append(float((np.clip((point - lo) / w, 0, 1) * h).sum() / h.sum()))
    hw = mean_ci(share).half_width
    ends = hist_quantile(hist, 0.99 - hw, top), hist_quantile(hist, 0.99 + hw, top)
    assert one.intervals["f.p99_us"].half_width == pytest.approx(max(point - ends[0], ends[1] - point) / 1e6,
                                                                 rel=1e-12)
    # each run's categories are all its host cycles, and tenant's share is the usable fraction
    cats = sum(v for k, v in one.samples.items() if k.startswith("host_cycles."))
    assert np.allclose(cats, 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(one.samples["host_cycles.tenant"], one.samples["usable_fraction"])


def test_twenty_replications_cover_mm1() -> None:
    # the brief's check: 20 replications of M/M/1 at ρ 0.8, the t interval of the mean
    # sojourn contains 1/(μ - λ) = 5 µs. A 95% interval misses for one seed in 20 (seed0
    # 2024 is one such here), so ten intervals (seed0 2024-2033) are taken: at least 8 must
    # cover (for a true 95% coverage, P(fewer than 8 of 10) = 1.2%). Over seed0 2000-2059,
    # 58 of 60 covered, the means unbiased (+0.09%, sd 0.95%).
    exp = load_experiment(_mm1(0.8, duration_s=0.05))
    reps = [replicate(exp, 20, seed0=s, workers=2) for s in range(2024, 2034)]
    assert all(r.intervals["f.mean_us"].n == 20 for r in reps)
    assert sum(r.intervals["f.mean_us"].covers(mm1_sojourn(0.8, 1.0)) for r in reps) >= 8
    # p99 = ln(100)/(μ - λ): its interval (sectioning: the 20 runs' requests pooled, the
    # width from the runs' own p99s, each ~4·10⁴ strongly correlated requests) covers it
    # as often (59 of 60 over seed0 2000-2059) and is informative: its half-width was 4.4%
    # on average (over seed0 2014-2043)
    p99 = [r.intervals["f.p99_us"] for r in reps]
    assert sum(ci.covers(math.log(100) * 5.0) for ci in p99) >= 8
    assert np.mean([ci.half_width for ci in p99]) < 0.08 * math.log(100) * 5.0


def test_confidence_intervals_have_their_coverage() -> None:
    # 40 independent intervals, each from 5 replications of M/M/1 at ρ 0.5 (2.5·10⁴ requests
    # each, ~4000 relaxation times: near-normal, nearly unbiased means). With true coverage
    # 95% the number covering is Binomial(40, 0.95): P(fewer than 33) = 7e-4. The intervals
    # must also be informative (mean half-width under 3% of the value).
    exp = load_experiment(_mm1(0.5, duration_s=0.05))
    truth = mm1_sojourn(0.5, 1.0)
    covered, widths = 0, []
    for k in range(40):
        ci = replicate(exp, 5, seed0=1000 + k, workers=1).intervals["f.mean_us"]
        covered += ci.covers(truth)
        widths.append(ci.half_width / truth)
    assert covered >= 33, covered
    assert float(np.mean(widths)) < 0.03


# ----------------------------------------------------------------------------- compare


def test_crn_pairs_narrow_the_interval() -> None:
    # B serves 10% slower. Under common random numbers both see the same arrivals and the
    # same service draws (scaled), so B - A per pair varies far less than B or A alone: the
    # paired interval must be several times narrower than the two-sample interval of
    # independent runs (observed ratio ~8; asserted 3).
    a = load_experiment(_mm1(0.5, duration_s=0.02))
    b = load_experiment(_mm1(0.5, service_ns=1100, duration_s=0.02))
    crn = compare(a, b, 10, seed0=5, workers=1)
    ind = compare(a, b, 10, seed0=5, workers=1, crn=False)
    d_crn, d_ind = crn.difference("f.mean_us"), ind.difference("f.mean_us")
    assert d_crn.paired and not d_ind.paired
    # paired: one seed a pair; independent: B's seeds its own (a mutant giving B A's seeds
    # passed, since the two-sample interval ignores the pairing it then had)
    assert crn.seeds_a == crn.seeds_b and set(ind.seeds_a).isdisjoint(ind.seeds_b) and len(set(ind.seeds_b)) == 10
    # the paired interval by hand: t with n - 1 = 9 degrees of freedom on the 10 differences,
    # and A, B and B - A over the same pairs
    assert d_crn.diff.n == 10 and d_crn.diff.mean == pytest.approx(d_crn.b.mean - d_crn.a.mean, rel=1e-12)
    assert d_crn.diff.half_width == pytest.approx(2.262157163 * d_crn.diff.std / math.sqrt(10), rel=1e-8)
    assert d_crn.diff.half_width * 3 < d_ind.diff.half_width
    # theory: 1/(1-.55)·1.1 - 1/(1-.5) = 0.444 µs; the paired interval finds it significant
    assert d_crn.significant and d_crn.diff.covers(1.1 / 0.45 - 2.0)


def test_compare_percentiles_are_each_sides_pooled_requests() -> None:
    # A percentile in compare is estimated as vemu run -n does (sectioning): each side's
    # value is its runs' requests pooled, bit for bit stats.replicate's; B - A is the
    # difference of those, its width t·s/√n over the pairs' linearised quantiles: run i's
    # g_B (q - F_B,i) - g_A (q - F_A,i), F the run's fraction at or below its side's pooled
    # quantile and g that side's quantile-function slope over q ± its fractions' half-width.
    from emulator.result import tail_cdf
    from emulator.stats import run_measures

    a = load_experiment(_mm1(0.5, duration_s=0.01))
    b = load_experiment(_mm1(0.5, service_ns=1100, duration_s=0.01))
    c = compare(a, b, 6, seed0=3, workers=1)
    ra, rb = replicate(a, 6, seed0=3, workers=1), replicate(b, 6, seed0=3, workers=1)
    seeds = replication_seeds(3, 6)
    _, (pa, pb) = run_measures([(a, s, None, None) for s in seeds] + [(b, s, None, None) for s in seeds],
                               workers=1, groups=[0] * 6 + [1] * 6)

    def lin(pool, parts, q):
        point = pool.quantile("f", q)
        f = np.array([tail_cdf(*pool.parts["f"][i][:2], point * 1e6, pool.parts["f"][i][2]) for i in parts])
        h = mean_ci(f).half_width
        g = (pool.quantile("f", min(q + h, 1)) - pool.quantile("f", max(q - h, 0))) / (min(q + h, 1) - max(q - h, 0))
        return g * (q - f)

    for k, q in (("f.p99_us", 0.99), ("f.p999_us", 0.999)):
        d = c.difference(k)
        assert d.a == ra.intervals[k] and d.b == rb.intervals[k]
        assert d.diff.mean == d.b.mean - d.a.mean
        want = mean_ci(np.sort(lin(pb, range(6, 12), q) - lin(pa, range(6), q)))
        assert (d.diff.half_width, d.diff.n) == pytest.approx((want.half_width, want.n), rel=1e-12)
        own = mean_ci(rb.samples[k] - ra.samples[k])  # the runs' own percentiles: what `biased` judges
        assert d.biased == (k in ra.biased or k in rb.biased or abs(own.mean - d.diff.mean) > own.half_width)
    # means are not percentiles: the plain paired interval
    m = c.difference("f.mean_us")
    assert m.diff == mean_ci(rb.samples["f.mean_us"] - ra.samples["f.mean_us"]) and not m.biased


def test_compare_flags_runs_too_short_for_a_tail(capsys: pytest.CaptureFixture[str]) -> None:
    # examples/heavy-load.toml (M/M/1 at ρ 0.95: p99.9 138 µs) in 5 ms runs of ~4,750
    # requests: each run's p99.9 sits far below the pooled one (the runs' tails are cut
    # short by the window; the exercise-9 effect), further than the interval's half-width.
    exp = str(Path(__file__).resolve().parent.parent / "examples" / "heavy-load.toml")
    c = compare(load_experiment(exp), load_experiment(exp, sets=["workload.flows.0.rate_per_s=900000"]), 8, seed0=1, workers=1,
                duration_s=0.005, warmup_s=0.001)
    assert c.difference("requests.p999_us").biased
    assert main([*"compare --duration 0.005 --warmup 0.001 -n 8 --set-b workload.flows.0.rate_per_s=900000".split(), exp, exp]) == 0
    out = capsys.readouterr().out
    assert "biased" in out and "pooled (sectioning)" in out


def test_unpaired_ci_by_hand() -> None:
    ci = unpaired_ci([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert ci.mean == 1.0
    assert ci.half_width == pytest.approx(2.776445105 * math.sqrt(1.0 * (2 / 3)), rel=1e-6)


def test_unpaired_ci_is_welch_for_unequal_variances() -> None:
    # variances 1 and 100: Welch–Satterthwaite df = (101/3)² / ((1/3)²/2 + (100/3)²/2) =
    # 2.04, rounded down to 2 (t = 4.302653), not the pooled 2n - 2 = 4 (t = 2.776), which
    # assumes equal variances and undercovers (93.7% with n = 10 at a variance ratio of 100)
    ci = unpaired_ci([1.0, 2.0, 3.0], [0.0, 10.0, 20.0])
    assert ci.mean == pytest.approx(8.0)
    assert ci.half_width == pytest.approx(4.302652730 * math.sqrt(101 / 3), rel=1e-6)


def _write(path: Path, doc: dict[str, Any]) -> Path:
    """An experiment dict written as TOML (conftest's writer)."""
    path.write_text(to_toml(doc))
    return path


def test_cli_compare_experiment_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fa = _write(tmp_path / "a.toml", _mm1(0.5, duration_s=0.01))
    fb = _write(tmp_path / "b.toml", _mm1(0.5, service_ns=1200, duration_s=0.01))
    assert main(["compare", str(fa), str(fb), "-n", "4", "--workers", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["replications"] == 4 and d["crn"] is True
    m = d["measures"]["f.mean_us"]
    assert m["significant"] and m["diff"]["mean"] > 0  # 20% slower service: ~+1 µs on 2 µs
    assert main(["compare", str(fa), str(fb), "-n", "3", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "B - A" in out and "f.mean_us" in out and "significant" in out


def test_cli_compare_bundled_architectures(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", "xen-pv", "nitro", "-n", "3", "--duration", "0.004", "--warmup", "0.001", "--json",
            "--workers", "2", "--seed", "4"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    uf = d["measures"]["usable_fraction"]
    # the headline gap (~0.8 vs ~1.0) dwarfs run-to-run noise even in 4 ms runs
    assert uf["significant"] and uf["diff"]["mean"] > 0.1
    assert d["a"] == "xen-pv" and d["b"] == "nitro"


def test_cli_compare_one_changed_cost_shows_where_the_cycles_go(capsys: pytest.CaptureFixture[str]) -> None:
    # The teaching use: one architecture against itself with one cost doubled (--set-b),
    # paired. Each side's categories are all its host cycles, so the differences of the
    # category means sum to 0 (to rounding), and tenant's is the usable fraction's. A dearer
    # exit can only move cycles into `exit`: its share rises and tenant's falls, each
    # significantly (at 4 ms the paired half-widths are ~0.0005 against effects of ~0.018).
    argv = ["compare", "kvm-virtio", "kvm-virtio", "--set-b", "exit_cycles=3100", "-n", "3", "--duration", "0.004",
            "--warmup", "0.001", "--workers", "1"]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["a"], d["b"], d["a_sets"], d["b_sets"]) == ("kvm-virtio", "kvm-virtio", [], ["exit_cycles=3100"])
    m = d["measures"]
    cats = [k for k in m if k.startswith("host_cycles.")]
    assert {"host_cycles.tenant", "host_cycles.exit", "host_cycles.backend"} <= set(cats)
    assert sum(m[k]["diff"]["mean"] for k in cats) == pytest.approx(0.0, abs=1e-12)
    assert m["host_cycles.tenant"]["diff"]["mean"] == pytest.approx(m["usable_fraction"]["diff"]["mean"], abs=1e-15)
    assert m["host_cycles.exit"]["significant"] and m["host_cycles.exit"]["diff"]["mean"] > 0
    assert m["host_cycles.tenant"]["significant"] and m["host_cycles.tenant"]["diff"]["mean"] < 0
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "B = kvm-virtio with exit_cycles=3100, A = kvm-virtio" in out
    assert "where the host's cycles go" in out and "host_cycles.exit" in out


def test_compare_a_category_one_side_never_charges_is_zero_there() -> None:
    # Nitro's back ends run on the card, whose cycles are not host cycles: the host charges
    # no `backend` at all, so nitro's share is 0 (not unknown) and B - A is all of kvm-virtio's.
    a = load_experiment(host="xeon-2017", architecture="kvm-virtio", workload="cloud-mix",
                        duration_s=0.003, warmup_s=0.001)
    b = load_experiment(host="xeon-2017", architecture="nitro", workload="cloud-mix",
                        duration_s=0.003, warmup_s=0.001)
    d = compare(a, b, 2, workers=1).difference("host_cycles.backend")
    assert d.a.mean > 0.05 and d.b.mean == 0.0 and d.diff.mean == -d.a.mean


def test_cli_compare_refuses_an_experiment_against_itself(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "a.toml", _mm1(0.5, duration_s=0.001))
    for argv in (["xen-pv", "xen-pv", "--set", "exit_cycles=3000"],  # the shared --set changes both alike
                 [str(f), str(tmp_path / "." / "a.toml")],             # one file by two paths
                 ["xen-pv", "xen-pv", "--set-a", "exit_cycles=1", "--set-a", "irq_exit_cycles=2",
                  "--set-b", "irq_exit_cycles=2", "--set-b", "exit_cycles=1"],  # one change, in two orders
                 ["xen-pv", "xen-pv", "--set-b", "exit_cycles=1550"]):  # B's override is the bundled value
        assert main(["compare", *argv, "-n", "2"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "same experiment" in err and "--set-b" in err
    # one key set twice, in opposite orders: A ends at 3000, B at 1000, two experiments (the
    # sorted lists of overrides were compared, and called them one)
    assert main(["compare", "xen-pv", "xen-pv", "-n", "2", "--duration", "0.0005", "--set-a", "exit_cycles=1000",
                 "--set-a", "exit_cycles=3000", "--set-b", "exit_cycles=3000", "--set-b", "exit_cycles=1000"]) == 0
    capsys.readouterr()
    # a side's own override that breaks it is reported as that side's
    assert main(["compare", "xen-pv", "xen-pv", "--set-b", "architecture.reserve.cores=-1", "-n", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vemu: B (xen-pv with architecture.reserve.cores=-1): ")
    assert main(["compare", "xen-pv", "xen-pv", "--set-b", "no_such_param=3", "-n", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_param" in err and "Traceback" not in err


def test_compare_lists_categories_in_report_order_whichever_side_has_them() -> None:
    # bare metal charges only tenant and idle; xen-pv's overheads come in the order every
    # report uses (result.categories), not after the idle rows of the side listed first.
    # A category may be named anything, "completed" too: it is not a flow's completion count.
    a = load_experiment(host="xeon-2017", architecture="bare-metal", workload="cloud-mix", duration_s=0.002,
                        warmup_s=0.0005)
    b = load_experiment(host="xeon-2017", architecture="xen-pv", workload="cloud-mix", duration_s=0.002,
                        warmup_s=0.0005)
    got = [d.measure for d in compare(a, b, 2, workers=1).differences if d.measure.startswith("host_cycles.")]
    assert got == ["host_cycles." + c for c in ("tenant", "hypervisor", "backend", "copy", "idle", "reserved_idle")]
    spec = _mm1(0.5, duration_s=0.002)
    spec["architecture"]["paths"]["p"]["stages"][0].update(on="vcpu", account="completed")  # on host cycles
    c = load_experiment(spec)
    assert "host_cycles.completed" in [d.measure for d in compare(c, c, 2, workers=1).differences]


def test_cli_compare_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "no-such-arch", "nitro", "-n", "2"]) == 2
    assert main(["compare", "xen-pv", "nitro", "-n", "1"]) == 2
    assert main(["compare", "xen-pv", "nitro", "--set", "no_such_param=3", "-n", "2"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 3


def test_percentiles_from_thin_tails_are_flagged() -> None:
    # A run's p99 needs >= 10 requests beyond it (>= 1,000 completions), its p99.9 >= 10,000:
    # the least of the runs decides.
    from emulator.stats import MIN_TAIL_REQUESTS, thin_tails

    assert MIN_TAIL_REQUESTS == 10
    base = {"f.p99_us": np.ones(3), "f.p999_us": np.ones(3), "f.mean_us": np.ones(3)}
    assert thin_tails(base | {"f.completed": np.array([20_000.0, 10_000.0, 30_000.0])}) == set()
    assert thin_tails(base | {"f.completed": np.array([20_000.0, 9_999.0, 30_000.0])}) == {"f.p999_us"}
    assert thin_tails(base | {"f.completed": np.array([999.0, 5e6, 5e6])}) == {"f.p99_us", "f.p999_us"}


def test_compare_marks_thin_tails_and_says_why() -> None:
    # M/M/1 at rho 0.5 for 2 ms: ~1,000 requests a run, so the p99.9 (1 beyond it) is flagged,
    # the mean is not; the flag travels in the JSON too.
    from emulator.compare import compare, format_comparison

    exp = load_experiment(_mm1(0.5, duration_s=0.002, warmup_s=0.0005))
    c = compare(exp, exp, 3, workers=1)
    assert c.difference("f.p999_us").thin_tail and not c.difference("f.mean_us").thin_tail
    assert "f.completed" not in [d.measure for d in c.differences]
    text = format_comparison(c)
    assert "no *" in text and "fewer than 10 requests beyond this percentile" in text
    assert c.to_dict()["measures"]["f.p999_us"]["thin_tail"] is True


# ----------------------------------------------------------------------------- vemu run: intervals


def _cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    from emulator.cli import main

    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_batch_means_flag_correlated_batches() -> None:
    # AR(1) with φ = 0.995 has a correlation time of ~200 samples: 20 batches of 50 are far
    # too short and are flagged (in 98.5% of 200 seeds; the seed is fixed). For iid noise
    # the test's false-alarm rate is nominally 5%: 3.6% over 2000 seeds (the sample lag-1 of
    # 20 values is biased low); over these 400 it must stay under 8% (the binomial sd at
    # 5% is 1.1 points); the φ = 0.9 series of the AR(1) test above (batches of 10⁴) is not
    # flagged.
    assert batch_means(_ar1(0.995, 1000, seed=11), 20).correlated
    alarms = sum(batch_means(np.random.default_rng(s).standard_normal(1000), 20).correlated for s in range(400))
    assert alarms < 0.08 * 400
    assert not batch_means([1.0, 2.0], 2).correlated  # too few batches to judge: not flagged


def test_cli_run_replications_are_replicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `vemu run -n 4` is stats.replicate: the same intervals, bit for bit, on 1 worker or 2
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(_mm1(0.5, duration_s=0.01)))
    want = replicate(load_experiment(spec), 4, workers=1)
    for workers in ("1", "2"):
        d = _cli_json(capsys, ["run", str(spec), "-n", "4", "--workers", workers, "--json"])
        assert d["method"] == "replications" and d["seeds"] == want.seeds
        for k, iv in want.intervals.items():
            got = d["measures"][k]
            assert got["n"] == iv.n == 4
            assert got["mean"] == iv.mean and (got["half_width"] == iv.half_width)


def _json_num(x: float) -> Any:
    return None if math.isnan(x) else pytest.approx(x)


def test_cli_run_batches_is_long_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(_mm1(0.5, duration_s=0.2)))
    want = long_run(load_experiment(spec), n_batches=10, windows_per_batch=10)
    d = _cli_json(capsys, ["run", str(spec), "--batches", "10", "--json"])
    assert d["method"] == "batch means" and list(d["measures"]) == list(want)
    for k, bm in want.items():
        got = d["measures"][k]
        # strict JSON: what is not defined (a lag-1 of constant batches) is null
        assert got["mean"] == bm.interval.mean and got["half_width"] == _json_num(bm.interval.half_width)
        assert got["lag1"] == _json_num(bm.lag1) and got["correlated"] == bm.correlated
    # ~10⁴ requests a batch: ~100 beyond its p99 (trusted), ~10 beyond p99.9 (at the bar)
    assert not d["measures"]["f.p99_us"]["thin_tail"]
    from emulator.cli import main

    assert main(["run", str(spec), "--batches", "10"]) == 0
    text = capsys.readouterr().out
    assert "10 batches" in text and "lag-1" in text and "f.p99_us" in text


def test_cli_run_auto_warmup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # M/M/1 at ρ 0.95 from empty (relaxation ~1.6 ms): MSER-5 on a pilot of warm-up +
    # window converges (as above), and the run measures after exactly that warm-up
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(_mm1(0.95, duration_s=0.4, warmup_s=0.0)))
    d = _cli_json(capsys, ["run", str(spec), "--warmup", "auto", "--json"])
    w = d["warmup_choice"]
    assert w["rule"] == "MSER-5" and w["converged"] and w["measure"] == "f.mean_us"
    assert d["warmup_s"] == w["warmup_s"]
    assert w["warmup_s"] == choose_warmup(load_experiment(spec)).warmup_s


@pytest.mark.parametrize("argv, says", [
    (["-n", "1"], "at least 2"),
    (["-n", "3", "--batches", "4"], "give one"),
    (["-n", "3", "--trace", "2"], "--trace"),
    (["--batches", "0"], "--batches"),
    (["--warmup", "automatic"], "--warmup"),
])
def test_cli_run_interval_options_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            argv: list[str], says: str) -> None:
    from emulator.cli import main

    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(_mm1(0.5, duration_s=0.01)))
    assert main(["run", str(spec), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err


def test_a_fixed_latency_is_neither_biased_nor_correlated() -> None:
    # A timer whose every interrupt takes the same 1.3739 us: its batches' percentiles agree
    # to ~1e-16, and that rounding read as spread (half-width 2e-16) flagged it `biased`
    # (pooled value off by 1e-16) and `correlated` (the autocorrelation of rounding noise).
    x = np.full(20, 1.3739) + np.array([0.0, 2.2e-16] * 10)
    assert math.isnan(lag1_autocorrelation(x))
    bm = batch_means(x, 20)
    assert not bm.correlated
    assert not apart(1.3739, 1.3739 + 2.2e-16, 1e-16) and apart(1.0, 1.1, 0.05)
    assert not apart(math.nan, 1.0, 0.1)
    h = np.zeros((20, HIST_BUCKETS), dtype=np.uint64)
    h[:, hist_index(1_373_900)] = 64  # every window: 64 requests of one latency
    bq = batch_quantiles(h, np.full(20, 1_373_900.0), 10, 0.99)
    assert not bq.biased and not bq.correlated


def test_replications_are_cached_as_they_finish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `vemu run -n 10` stopped after seven kept nothing: it now stores each replication as
    # it finishes and takes what is there, so a restart computes the rest; the intervals are
    # the same bits either way
    from emulator import stats
    from emulator.runner import Cache

    exp = load_experiment(TANDEM, duration_s=0.05, warmup_s=0.005)
    fresh = replicate(exp, 4, workers=1)
    cache = Cache(tmp_path)
    replicate(exp, 3, workers=1, cache=cache)  # "stopped" after three
    ran = []
    real = stats._run_one
    monkeypatch.setattr(stats, "_run_one", lambda args: ran.append(args[1]) or real(args))
    again = replicate(exp, 4, workers=1, cache=cache)
    assert ran == [replication_seeds(exp.seed, 4)[3]]  # only the fourth ran
    assert again.to_dict() == fresh.to_dict()
    # a different window is a different run, not a cache hit
    ran.clear()
    replicate(exp, 2, workers=1, cache=cache, duration_s=0.02)
    assert len(ran) == 2


def test_replications_of_two_experiments_never_share_a_cache_key() -> None:
    # an Experiment replaced in Python keeps the raw data it came from: keyed on that, B
    # (emulated) read A's (sriov) cached figures
    import dataclasses

    from emulator.model import load
    from emulator.stats import measure_key
    a = load_experiment(host="xeon-2017", architecture="sriov", workload="cloud-mix", duration_s=0.002)
    b = dataclasses.replace(a, architecture=load("architecture", "emulated"))
    assert measure_key((a, 1, None, None)) != measure_key((b, 1, None, None))
    assert measure_key((a, 1, None, None)) == measure_key((dataclasses.replace(a), 1, None, None))


@pytest.mark.parametrize("sets", [["architecture.reserve.cores=12"],
                                  ["architecture.resources.dom0.on_host=false",
                                   "architecture.resources.dom0.ghz=2.3"]])
def test_what_the_measures_read_beyond_the_engine_input_is_in_the_cache_key(sets) -> None:
    # the usable fraction and host-cycle shares read which resources are host cores, the
    # reserve and the vCPUs sold, not only the engine's input: keyed on the engine input,
    # a run with 4 more reserved (idle) cores was served the cached figures of the other
    from emulator.stats import measure_key
    base = load_experiment(host="xeon-2017", architecture="xen-pv", workload="cloud-mix", duration_s=0.002)
    other = load_experiment(host="xeon-2017", architecture="xen-pv", workload="cloud-mix", duration_s=0.002,
                            sets=sets)
    assert measure_key((base, 1, None, None)) != measure_key((other, 1, None, None))


def test_replicated_p99_intervals_cover_the_mm1_truth_at_heavy_load() -> None:
    # 200 sets of ten 20 ms runs of an M/M/1 at ρ 0.9 (~18,000 requests a run; true p99
    # ln(100)/(μ - λ) = 46.05 µs). Through the runs' shares of requests below the pooled
    # p99 (stats.quantile_ci) the 95% intervals cover it in 92.5% of these sets (the runs'
    # finite length costs a little); the runs' own p99s' t·s/√n covered 86.5% (a review
    # found it). With 200 sets a coverage's sd is ~1.7 points, so 90% is 1.5 sd below the
    # measured 92.5% and 2 sd above the old 86.5%; the seeds are fixed, so the test is
    # deterministic, and fails if the interval goes back to the percentiles' own spread.
    truth = mm1_sojourn_quantile(0.9, 1.0, 0.99)
    covered = 0
    for s in range(200):
        exp = load_experiment(_mm1(0.9, duration_s=0.02, warmup_s=0.002, seed=1000 + s))
        covered += replicate(exp, 10, workers=1).intervals["f.p99_us"].covers(truth)
    assert covered / 200 >= 0.90


def test_replications_and_seed_are_other_names_for_n_and_seed0() -> None:
    # the API named them n/seed0 here and replications/seed in sweep(): both are taken
    from emulator.compare import compare

    exp = load_experiment(station({"arrival": "poisson", "rate_per_s": 1e5}, 5000, duration_s=0.005))
    a = replicate(exp, 2, seed0=5, workers=1)
    b = replicate(exp, replications=2, seed=5, workers=1)
    assert a.seeds == b.seeds and a.samples["f.mean_us"].tolist() == b.samples["f.mean_us"].tolist()
    with pytest.raises(ModelError, match="give n or replications, not both"):
        replicate(exp, 2, replications=2)
    with pytest.raises(ModelError, match="need n"):
        replicate(exp)
    c = compare(exp, exp, replications=2, seed=5, workers=1)
    assert c.to_dict()["measures"]["f.mean_us"]["diff"]["mean"] == 0.0


def test_a_difference_without_an_interval_is_not_significant() -> None:
    # a NaN half-width (one finite pair) says nothing: "covers(0)" is False for NaN ends, so
    # without its guard such a difference read as significant
    from emulator.compare import Difference
    from emulator.stats import Interval

    one = Interval(1.0, math.nan, 1, math.nan)
    d = Difference("m", one, Interval(2.0, math.nan, 1, math.nan), Interval(1.0, math.nan, 1, math.nan), True)
    assert not d.significant
    assert Difference("m", one, one, Interval(1.0, 0.5, 5, 0.4), True).significant
    assert not Difference("m", one, one, Interval(1.0, 1.5, 5, 1.2), True).significant


def test_a_comparison_says_its_level_and_pairing() -> None:
    """An 80% comparison without common random numbers said '95%' and 'paired (common
    random numbers)' and left B's seeds out of its JSON (a review found it)."""
    from emulator.compare import format_comparison

    a = load_experiment(_mm1(0.5, duration_s=0.002))
    c = compare(a, a, 3, seed0=5, workers=1, crn=False, level=0.8)
    text = format_comparison(c)
    assert "3 independent replications of each (no common random numbers), 80% Welch intervals" in text
    assert "± 80%" in text and "95%" not in text and "paired" not in text
    d = c.to_dict()
    assert d["level"] == 0.8 and d["seeds_b"] == c.seeds_b and set(d["seeds_b"]).isdisjoint(d["seeds"])
    p = compare(a, a, 3, seed0=5, workers=1)
    assert "3 paired replications (common random numbers), 95% t intervals" in format_comparison(p)
    assert "seeds_b" not in p.to_dict()


def test_the_lag1_test_has_its_size_and_can_fire_with_few_batches() -> None:
    """Independent normal batch means are flagged `correlated` about 5% of the time (Moran's
    variance; 4,000 series per count, so the binomial sd is 0.35 points and 3.5-6.8% is a
    ±4.5 sd band around the measured 5.0-5.5%), and a random walk's means, maximally
    correlated, are flagged with as few as 4 or 5 batches, if seldom: 17% and 28% of 2,000
    (so few means leave the test little power; Bartlett's variance flagged none below 6).
    Three batches are never judged."""
    rng = np.random.default_rng(7)
    for b in (4, 5, 10, 20):
        size = np.mean([batch_means(rng.standard_normal(b), b).correlated for _ in range(4000)])
        assert 0.035 <= size <= 0.068, (b, size)
    for b in (4, 5):
        walks = [batch_means(np.cumsum(rng.standard_normal(b)), b).correlated for _ in range(2000)]
        assert np.mean(walks) > 0.1, b
    assert not any(batch_means(np.cumsum(rng.standard_normal(3)), 3).correlated for _ in range(500))


def test_the_top_rank_is_the_max_and_the_cdf_reaches_one_there() -> None:
    """A quantile of rank N is the largest value, recorded exactly (read inside its bucket
    it came out below the max: a flow of 539 requests reported its p99.9, rank 539, 1.8 us
    under its max); the top bucket's values spread only up to the max, and the CDF is 1 at
    the max (it was 0.873 for one value)."""
    from emulator.result import tail_cdf, thin_tail

    h = np.zeros(HIST_BUCKETS, np.uint64)
    i = hist_index(1_003_000)
    h[i] = 1
    assert hist_quantile(h, 1.0, 1_003_000) == 1_003_000
    assert tail_cdf(np.array([i]), np.array([1], np.uint64), 1_003_000, 1_003_000) == 1.0
    rng = np.random.default_rng(3)
    for _ in range(200):
        vals = rng.exponential(5e6, size=int(rng.integers(1, 600)))
        h = np.zeros(HIST_BUCKETS, np.uint64)
        np.add.at(h, [hist_index(int(v)) for v in vals], 1)
        mx = float(int(vals.max()))
        assert hist_quantile(h, 1.0, mx) == mx
        assert hist_quantile(h, 0.999, mx) <= mx
        nz = np.flatnonzero(h)
        assert tail_cdf(nz, h[nz], mx, mx) == 1.0
        q = hist_quantile(h, 0.9, mx)  # the distribution function there, read back, is 0.9 within a value
        assert abs(tail_cdf(nz, h[nz], q, mx) - 0.9) <= 1 / len(vals) + 1e-12
    # 10 requests beyond, counted in whole requests (100 x (1 - 0.9) is 9.999999999999998),
    # the low tail as the mirror of the high one
    assert not thin_tail(100, 0.9) and not thin_tail(50, 0.8) and thin_tail(99, 0.9)
    assert thin_tail(9500, 0.001) and thin_tail(9500, 0.999) and not thin_tail(10000, 0.001)
    # equal latencies read as that one value at every quantile (not squeezed under the max)
    h = np.zeros(HIST_BUCKETS, np.uint64)
    h[hist_index(4_000_000)] = 100
    assert all(hist_quantile(h, q, 4_000_000) == 4_000_000 for q in (0.5, 0.9, 0.99))
    # an exact bucket (below 256 ps) holds its one value: the CDF at the quantile is the quantile's level
    h = np.zeros(HIST_BUCKETS, np.uint64)
    h[hist_index(0)], h[hist_index(1)] = 50, 50
    nz = np.flatnonzero(h)
    assert hist_quantile(h, 0.5, 1) == 0 and tail_cdf(nz, h[nz], 0, 1) == 0.5
