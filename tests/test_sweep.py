"""Sweeps: value syntax, designs (grid, random, Latin hypercube), replication seeds, the tidy
and summary CSVs, confidence intervals, executors (serial, local pool, Dask) and resume."""

from __future__ import annotations

import copy
import json
import math
import re
import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conftest import TANDEM, station, to_toml
from emulator import sweep as sw
from emulator._core import ModelError
from emulator.cli import main
from emulator.provenance import read_csv
from emulator.runner import Cache
from emulator.stats import replication_seeds

# M/M/1 at one off-host 1 GHz core: exponential service of mean 0.5 ms (mu = 2000/s).
MU = 2000.0
RATE_KEY = "workload.flows.f.rate_per_s"


def mm1(duration_s: float = 0.5) -> dict:
    return station({"arrival": "poisson", "rate_per_s": 800}, {"dist": "exp", "mean": 500_000},
                   duration_s=duration_s, warmup_s=duration_s / 20)


def tandem(duration_s: float = 0.5) -> dict:
    doc = copy.deepcopy(TANDEM)
    doc["experiment"] = {"duration_s": duration_s, "warmup_s": duration_s / 10}
    return doc


# ----------------------------------------------------------------------------- value syntax

def values(axis: sw.Axis) -> list:
    return [v for v, _ in axis.values]


def test_lists_are_read_as_toml_values():
    assert values(sw.parse_vary("exit_cycles=1000,2000,4000")) == [1000, 2000, 4000]
    assert values(sw.parse_vary("x=0.5, 2 ,true")) == [0.5, 2, True]
    ax = sw.parse_vary('architecture.paths.p.stages.0.cycles={ dist = "exp", mean = 5 },{dist="fixed",mean=7},9')
    assert values(ax) == [{"dist": "exp", "mean": 5}, {"dist": "fixed", "mean": 7}, 9]
    assert values(sw.parse_vary('k="a:b","c,d",bare')) == ["a:b", "c,d", "bare"]
    assert values(sw.parse_vary("architecture=xen-pv,nitro")) == ["xen-pv", "nitro"]
    assert sw.parse_vary("architecture=xen-pv,nitro").is_name


def test_ranges_linear_log_and_integer():
    assert values(sw.parse_vary("x=1000:5000:5")) == [1000, 2000, 3000, 4000, 5000]
    assert all(type(v) is int for v in values(sw.parse_vary("x=1000:5000:5")))
    assert values(sw.parse_vary("x=1e3:1e6:4:log")) == [1e3, 1e4, 1e5, 1e6]
    assert all(type(v) is float for v in values(sw.parse_vary("x=1e3:1e6:7:log")))
    assert values(sw.parse_vary("x=1000:1000000:4:log")) == [1000, 10000, 100000, 1000000]
    assert values(sw.parse_vary("x=0.1:0.7:7")) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert values(sw.parse_vary("x=1.0:3:5")) == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert values(sw.parse_vary("x=5:1:3")) == [5, 3, 1]


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(lo=finite, hi=finite, n=st.integers(2, 60))
def test_linear_range_points(lo, hi, n):
    assume(abs(hi - lo) >= 1e-6 * max(1.0, abs(lo), abs(hi)))
    pts = values(sw.parse_vary(f"x={lo!r}:{hi!r}:{n}"))
    assert len(pts) == n and pts[0] == lo and pts[-1] == hi
    step = (hi - lo) / (n - 1)
    for k, x in enumerate(pts):
        assert math.isclose(x, lo + k * step, rel_tol=1e-12, abs_tol=1e-12 * max(abs(lo), abs(hi), 1.0))
    d = np.diff(pts)
    assert (d > 0).all() if hi > lo else (d < 0).all()


@given(lo=st.floats(1e-6, 1e9), ratio=st.floats(1.001, 1e6), n=st.integers(2, 40))
def test_log_range_points(lo, ratio, n):
    hi = lo * ratio
    pts = values(sw.parse_vary(f"x={lo!r}:{hi!r}:{n}:log"))
    assert len(pts) == n and pts[0] == lo and pts[-1] == hi
    want = np.geomspace(lo, hi, n)
    assert np.allclose(pts, want, rtol=1e-12)
    assert (np.diff(pts) > 0).all()


@given(lo=st.integers(-10**6, 10**6), span=st.integers(1, 10**6), n=st.integers(2, 50), log=st.booleans())
def test_integer_ranges_give_distinct_integers_or_refuse(lo, span, n, log):
    if log:
        lo = abs(lo) + 1
    hi = lo + span
    text = f"x={lo}:{hi}:{n}" + (":log" if log else "")
    exact = np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)
    try:
        pts = values(sw.parse_vary(text))
    except ModelError as e:  # refused only when two points are under 1 apart (they round together)
        assert str(e).startswith("--vary x") and np.diff(exact).min() < 1 + 1e-9
        return
    assert all(type(x) is int for x in pts) and pts[0] == lo and pts[-1] == hi and len(set(pts)) == n
    assert all(abs(a - b) <= 0.5 + 1e-9 * abs(b) for a, b in zip(pts, exact))


@pytest.mark.parametrize("text, key", [
    ("exit_cycles", ""), ("=1,2", ""), ("x=", "x"), ("x=1:2", "x"), ("x=1:2:0", "x"), ("x=1:2:q", "x"),
    ("x=a:2:3", "x"), ("x=0:10:3:log", "x"), ("x=1:3:5", "x"), ("x=1,,2", "x"), ("x=1,2,1", "x"),
    ("architecture=xen-pv,nitroo", "architecture"), ("x=1:2:3:lin", "x"),
    ("x+=1,2", "x+"), ("+x=1,2", "+x"), ("x+host=1,2", "x+host"), ("x+x=1,2", "x+x"),
])
def test_bad_vary_is_a_model_error_naming_the_key(text, key):
    with pytest.raises(ModelError) as e:
        sw.parse_vary(text)
    assert str(e.value).startswith(f"--vary {key}".rstrip()) and "\n" not in str(e.value)


def test_bad_sample_and_duplicate_axes():
    for bad in ("lhs", "lhs:0", "random:x", "sobol:4"):
        with pytest.raises(ModelError, match="--sample"):
            sw.parse_sample(bad)
    with pytest.raises(ModelError, match="varied twice"):
        sw.plan(mm1(), vary=["exit=1,2", "exit=3"])
    with pytest.raises(ModelError, match="varied twice"):  # a key joined on one axis and varied on another
        sw.plan(mm1(), vary=["exit+other=1,2", "exit=3"])


# ----------------------------------------------------------------------------- designs

def test_grid_is_the_full_product_first_axis_slowest():
    pl = sw.plan(tandem(), vary={"workload.flows.jobs.rate_per_s": "100:400:4",
                                 "architecture.paths.tandem.stages.one.cycles": [1000, 2000, 3000]},
                 replications=2)
    assert len(pl.points) == 12 and len(pl.jobs) == 24
    assert [tuple(v for v, _ in p) for p in pl.points[:4]] == [(100, 1000), (100, 2000), (100, 3000), (200, 1000)]
    assert [j.tag for j in pl.jobs[:3]] == [(0, 0), (0, 1), (1, 0)]


@given(n=st.integers(1, 60), d=st.integers(1, 5), seed=st.integers(0, 2**32))
def test_lhs_unit_hits_every_stratum_once_per_dimension(n, d, seed):
    u, strata = sw.lhs_unit(n, d, np.random.Generator(np.random.PCG64(seed)))
    assert u.shape == (n, d) and ((u >= 0) & (u < 1)).all()
    for j in range(d):
        assert sorted(strata[:, j]) == list(range(n))
        assert ((strata[:, j] / n <= u[:, j]) & (u[:, j] < (strata[:, j] + 1) / n)).all()


@given(n=st.integers(2, 40), seed=st.integers(0, 2**32))
def test_lhs_design_over_ranges_and_lists(n, seed):
    axes = [sw.parse_vary("a=10.0:20.0", sampled=True), sw.parse_vary("b=1e2:1e5:log", sampled=True),
            sw.parse_vary("c=x,y,z")]
    pts = sw.design(axes, f"lhs:{n}", sample_seed=seed)
    assert len(pts) == n
    a = np.array([p[0][0] for p in pts])
    b = np.array([p[1][0] for p in pts])
    assert sorted(np.floor((a - 10) / 10 * n).astype(int)) == list(range(n))
    assert sorted(np.floor(np.log(b / 1e2) / np.log(1e3) * n + 1e-9).astype(int)) == list(range(n))
    counts = [sum(p[2][0] == c for p in pts) for c in "xyz"]
    assert sum(counts) == n and set(counts) <= {n // 3, -(-n // 3)}  # ⌊n/k⌋ or ⌈n/k⌉, as documented
    assert pts == sw.design(axes, f"lhs:{n}", sample_seed=seed)  # the same design every time


def test_lhs_never_leaves_out_a_list_item():
    # the reviewer's design: three architectures, lhs:4, sample seed 194 gave xen-pv twice,
    # kvm-virtio twice and no nitro (the jittered u of a stratum straddling two items)
    axes = [sw.parse_vary("architecture=xen-pv,nitro,kvm-virtio", sampled=True),
            sw.parse_vary("exit_cycles=1000:5000", sampled=True)]
    total = {a: 0 for a in ("xen-pv", "nitro", "kvm-virtio")}
    for seed in range(300):
        names = [p[0][0] for p in sw.design(axes, "lhs:4", sample_seed=seed)]
        assert sorted(names.count(a) for a in total) == [1, 1, 2], seed
        for a in names:
            total[a] += 1
    # ...and which item gets the extra point is random: each gets it in 100 of 300 designs on
    # average (sd sqrt(300 * 1/3 * 2/3) = 8.2); 50 is six sd. (A fixed stratum-to-item map
    # gave the first item every extra point, and lhs:3 over nine items only ever the same three.)
    assert all(abs(n - 400) < 50 for n in total.values()), total
    nine = sw.parse_vary("x=a,b,c,d,e,f,g,h,i", sampled=True)
    seen = {p[0][0] for s in range(100) for p in sw.design([nine], "lhs:3", sample_seed=s)}
    assert len(seen) == 9
    # an integer range with no more integers than points is dealt out as a list is
    few = sw.parse_vary("workload.flows.0.clients=1:3", sampled=True)
    for seed in range(200):
        assert {p[0][0] for p in sw.design([few], "lhs:4", sample_seed=seed)} == {1, 2, 3}, seed


def test_a_sampled_integer_range_gives_every_integer_alike():
    # 4:8 has five integers, each drawn with probability 1/5 (the ends used to get 1/10:
    # a rounded real). 100,000 draws: a count's sd is sqrt(1e5 * 0.2 * 0.8) = 126, and
    # 700 is 5.5 sd; the old ends' 12,700 are 58 sd off
    ax = sw.parse_vary("architecture.reserve.cores=4:8", sampled=True)
    got = [p[0][0] for p in sw.design([ax], "random:100000", sample_seed=1)]
    assert all(type(v) is int for v in got)
    assert all(abs(got.count(i) - 20_000) < 700 for i in range(4, 9)), [got.count(i) for i in range(4, 9)]
    ax = sw.parse_vary("x=1:1000:log", sampled=True)  # log-uniform over [1, 1001): P(1) = log 2 / log 1001
    got = [p[0][0] for p in sw.design([ax], "random:100000", sample_seed=2)]
    assert min(got) == 1 and max(got) <= 1000 and abs(got.count(1) - 1e5 * math.log(2) / math.log(1001)) < 600


def test_random_design_is_within_bounds_and_seeded():
    axes = [sw.parse_vary("a=10:20", sampled=True), sw.parse_vary("b=1.0:2.0:log", sampled=True),
            sw.parse_vary("c=x,y")]
    pts = sw.design(axes, "random:50", sample_seed=3)
    assert len(pts) == 50 and pts == sw.design(axes, "random:50", sample_seed=3)
    assert pts != sw.design(axes, "random:50", sample_seed=4)
    assert all(type(p[0][0]) is int and 10 <= p[0][0] <= 20 and 1 <= p[1][0] <= 2 for p in pts)
    assert {p[2][0] for p in pts} == {"x", "y"}
    with pytest.raises(ModelError, match="point count"):
        sw.design(axes, None)


# ----------------------------------------------------------------------------- seeds

def test_replication_r_of_every_point_has_the_same_seed():
    pl = sw.plan(mm1(), vary={RATE_KEY: "200,400,600"}, replications=3, seed=11)
    want = replication_seeds(11, 3)
    assert pl.seeds == want and len(set(want)) == 3
    for j in pl.jobs:
        p, r = j.tag
        assert j.seed == want[r]
    assert sw.plan(mm1(), vary={RATE_KEY: "200"}, replications=3, seed=12).seeds != want
    spec = mm1()
    spec["experiment"]["seed"] = 11
    assert sw.plan(spec, vary={RATE_KEY: "200"}, replications=3, seed=None).seeds == want  # the file's seed


# ----------------------------------------------------------------------------- tables

def test_csv_shape_and_provenance(tmp_path):
    out = tmp_path / "s.csv"
    table = sw.sweep(tandem(), vary={"workload.flows.jobs.rate_per_s": "200,400",
                                     "architecture.paths.tandem.stages.two.cycles": "1e5:2e5:3"},
                     replications=2, seed=3, workers=1, out=out)
    header, rows, prov = read_csv(out)
    flow = ["jobs.throughput_per_s", "jobs.completed", "jobs.mean_us", "jobs.p50_us", "jobs.p99_us", "jobs.p999_us"]
    assert header[:7] == ["point", "replication", "seed", "workload.flows.jobs.rate_per_s",
                          "architecture.paths.tandem.stages.two.cycles", "usable_fraction", "throughput_per_s"]
    cats = [h for h in header[13:] if h.startswith("host_cycles.")]
    util = [h for h in header[13:] if h.startswith("utilization.")]
    assert header[7:13] == flow and header[13:] == cats + util
    assert {"utilization.s1", "utilization.s2", "utilization.s3"} <= set(util)
    assert "host_cycles.tenant" in header and "host_cycles.idle" in header
    # each resource's utilization, per run, as the run's result has it (which resource binds a
    # point: the usable fraction alone made two link-bound architectures look alike)
    assert all(0 < float(r[f"utilization.{n}"]) < 1 for r in rows for n in ("s1", "s2", "s3"))
    assert len(rows) == 12 and [r["point"] for r in rows] == [str(i // 2) for i in range(12)]
    assert [r["architecture.paths.tandem.stages.two.cycles"] for r in rows[:6:2]] == ["100000.0", "150000.0", "200000.0"]
    opts = json.loads(prov["options"])
    assert opts["vary"] == ["workload.flows.jobs.rate_per_s=200,400", "architecture.paths.tandem.stages.two.cycles=100000.0:200000.0:3"]
    assert opts["seeds"] == replication_seeds(3, 2) and opts["spec"] == "inline" and opts["replications"] == 2
    assert {"vemu_version", "git_revision", "models"} <= set(prov)
    s_header, s_rows, _ = read_csv(tmp_path / "s-summary.csv")
    assert len(s_rows) == 6 and s_header[:4] == ["point", "workload.flows.jobs.rate_per_s",
                                                  "architecture.paths.tandem.stages.two.cycles", "replications"]
    assert "usable_fraction_ci95" in s_header and "jobs.p99_us_ci95" in s_header
    # percentiles are judged by the completions of their flow: the tandem's default 0.1 s
    # window at 200-400 jobs/s leaves under 10 requests beyond every p99 and p99.9
    assert s_header.index("jobs.p99_us_thin_tail") == s_header.index("jobs.p99_us_ci95") + 1
    assert "jobs.mean_us_thin_tail" not in s_header and "usable_fraction_thin_tail" not in s_header
    assert all(r["jobs.p99_us_thin_tail"] == "1" and r["jobs.p999_us_thin_tail"] == "1" for r in s_rows)
    assert all(r["jobs.p50_us_thin_tail"] == "0" for r in s_rows)
    # the returned table is the CSV at full precision
    recs = table.to_dict("records") if hasattr(table, "to_dict") else table
    assert len(recs) == 12 and [f"{r['jobs.mean_us']:.6g}" for r in recs] == [r["jobs.mean_us"] for r in rows]
    assert all(float(r["throughput_per_s"]) > 0 for r in rows)


def test_without_pandas_the_table_is_a_list_of_dicts(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    t = sw.sweep(mm1(0.05), vary={RATE_KEY: "200,400"}, replications=2, workers=1)
    assert isinstance(t, list) and len(t) == 4 and t[0]["point"] == 0 and "f.mean_us" in t[0]
    s = sw.summary(t)
    assert len(s) == 2 and s[1]["replications"] == 2 and s[1][RATE_KEY] == 400


def test_summary_is_mean_and_t_half_width():
    pytest.importorskip("scipy")
    from scipy.stats import t as student_t

    rows = [{"point": 0, "replication": r, "seed": r, "k": 1, "usable_fraction": x, "m": None}
            for r, x in enumerate([0.5, 0.7, 0.65, 0.4])]
    cols, out = sw.summarize(["point", "replication", "seed", "k", "usable_fraction", "m"], rows)
    assert cols == ["point", "k", "replications", "usable_fraction", "usable_fraction_ci95", "m", "m_ci95"]
    x = np.array([0.5, 0.7, 0.65, 0.4])
    assert out[0]["usable_fraction"] == pytest.approx(x.mean())
    assert out[0]["usable_fraction_ci95"] == pytest.approx(student_t.ppf(0.975, 3) * x.std(ddof=1) / 2)
    assert math.isnan(out[0]["m"]) and out[0]["replications"] == 4
    # a measure missing from one replication has no mean over the point, not one over 3 of 4
    rows = [dict(r, m=v) for r, v in zip(rows, [1.0, None, 3.0, float("nan")])]
    _, out = sw.summarize(["point", "replication", "seed", "k", "usable_fraction", "m"], rows)
    assert math.isnan(out[0]["m"]) and math.isnan(out[0]["m_ci95"])
    rows = [dict(r, m=v) for r, v in zip(rows, [1.0, 2.0, 3.0, 2.0])]
    _, out = sw.summarize(["point", "replication", "seed", "k", "usable_fraction", "m"], rows)
    assert out[0]["m"] == 2.0 and out[0]["m_ci95"] == pytest.approx(student_t.ppf(0.975, 3) * np.std([1, 2, 3, 2], ddof=1) / 2)


def test_summary_percentiles_are_the_replications_pooled(tmp_path):
    # A point's p99 and p99.9 are estimated as vemu run -n does (sectioning): its value the
    # quantile of all its replications' requests together, the width from their own
    # percentiles, bit for bit what stats.replicate gives for the same experiment and seeds;
    # _biased says when the replications sit further from it than the half-width.
    from emulator.model import load_experiment
    from emulator.stats import replicate

    pd = pytest.importorskip("pandas")
    spec = mm1(0.05)
    out = tmp_path / "s.csv"
    t = sw.sweep(spec, vary={RATE_KEY: "400,1600"}, replications=4, seed=3, workers=1, out=out)
    s = sw.summary(t)
    csv = read_csv(tmp_path / "s-summary.csv")[1]
    for p, rate in enumerate((400, 1600)):
        reps = replicate(load_experiment(spec, sets=[f"{RATE_KEY}={rate}"]), 4, seed0=3, workers=1)
        row = s[s.point == p].iloc[0]
        for k in ("f.p50_us", "f.p99_us", "f.p999_us"):
            if k in reps.intervals:
                assert (row[k], row[f"{k}_ci95"]) == (reps.intervals[k].mean, reps.intervals[k].half_width), k
                assert row[f"{k}_biased"] == int(k in reps.biased)
                assert float(csv[p][k]) == pytest.approx(row[k], rel=1e-5)  # the CSV's 6 digits
        # pooled is not the mean of the replications' own percentiles
        assert row["f.p999_us"] != t[t.point == p]["f.p999_us"].mean()
    # rows selected or reordered keep their runs' histograms: matched by point and replication
    again = sw.summary(t[t.point == 1].iloc[::-1])
    assert again.iloc[0]["f.p999_us"] == s[s.point == 1].iloc[0]["f.p999_us"]
    # a table without the histograms (read back from the CSV) averages, and says so
    bare = pd.DataFrame(t.to_dict("records"))
    plain = sw.summary(bare)
    assert plain.iloc[0]["f.p99_us"] == pytest.approx(t[t.point == 0]["f.p99_us"].mean())
    assert plain["f.p99_us_biased"].isna().all()
    # without pandas, the histograms are passed by hand
    rows = t.to_dict("records")
    listed = sw.summary(rows, t.attrs["latency_tails"])
    assert listed[1]["f.p999_us"] == s.iloc[1]["f.p999_us"]


def test_summary_flags_replications_too_short_for_a_tail(tmp_path):
    # examples/heavy-load.toml (M/M/1 at ρ 0.95, p99.9 138 µs) in 5 ms runs: each run's own
    # p99.9 sits far below all the runs' requests together (its tail is cut short by the
    # window), further than the half-width, so the summary says _biased = 1 and gives the
    # pooled value; at ρ 0.5 (p99.9 ~14 µs, ~1,000 requests beyond the p99 a run) it does not.
    # With 12 runs a point (the half-width ~1/√12 of the runs' spread) the flag was raised
    # for seeds 1-20 at ρ 0.95 every time and at ρ 0.5 never; with 6 runs, 14 times of 20
    from pathlib import Path

    spec = str(Path(__file__).resolve().parent.parent / "examples" / "heavy-load.toml")
    t = sw.sweep(spec, vary={"workload.flows.0.rate_per_s": "500000,950000"}, replications=12, seed=1, workers=1,
                 duration_s=0.005, warmup_s=0.001)
    s = sw.summary(t)
    low, high = s.iloc[0], s.iloc[1]
    assert high["requests.p999_us_biased"] == 1 and low["requests.p99_us_biased"] == 0
    runs = t[t.point == 1]["requests.p999_us"]
    assert runs.mean() < high["requests.p999_us"] - high["requests.p999_us_ci95"]


def test_sweep_tables_concatenate_and_merge():
    # the runs' histograms ride in attrs, shared and never compared by value: pandas
    # operations that copy or compare attrs (concat, merge, selection) work as on any table
    pd = pytest.importorskip("pandas")
    a = sw.sweep(mm1(0.02), vary={RATE_KEY: "200,400"}, replications=2, workers=1)
    b = sw.sweep(mm1(0.02), vary={RATE_KEY: "600,800"}, replications=2, workers=1)
    assert len(pd.concat([a, b])) == 8 and len(a.merge(b, on=["replication"])) == 8
    assert a[a.point == 1].attrs["latency_tails"] is a.attrs["latency_tails"]


def test_mm1_confidence_intervals_cover_the_mean_sojourn():
    """M/M/1 with mu = 2000/s at rho = 0.2 and 0.5, 12 sweeps with independent seeds, each
    10 replications of 2 s (800 and 2000 completions a run): 24 95% CIs of the mean sojourn
    1/(mu - lambda). Warm-up bias (~W/T) is under 0.1% of W, so each CI covers with
    probability ~0.95; the two points of one sweep share their seeds (common random
    numbers) and are correlated, so coverage is judged over all 24: at least 20 (the mean is
    22.8; fewer than 20 has probability < 3% even counting each sweep's pair as one trial),
    and no miss beyond 3 half-widths. Seeds are fixed: deterministic once it passes."""
    spec = mm1(2.0)
    spec["experiment"]["warmup_s"] = 0.1
    covered, total = 0, 0
    for seed in range(1, 13):
        t = sw.summary(sw.sweep(spec, vary={RATE_KEY: [400, 1000]}, replications=10, seed=seed, workers=1))
        for r in (t.to_dict("records") if hasattr(t, "to_dict") else t):
            want = 1e6 / (MU - r[RATE_KEY])
            half = r["f.mean_us_ci95"]
            assert 0 < half < 0.15 * want
            assert abs(r["f.mean_us"] - want) < 3 * half
            assert r["f.throughput_per_s"] == pytest.approx(r[RATE_KEY], rel=0.1)
            covered += abs(r["f.mean_us"] - want) <= half
            total += 1
    assert total == 24 and covered >= 20


# ----------------------------------------------------------------------------- executors

def _bytes(tmp_path, name, **kw):
    out = tmp_path / f"{name}.csv"
    sw.sweep(vary={RATE_KEY: "200,500,900", "architecture.resources.s.cores": "1,2"}, replications=2, seed=7,
             out=out, **kw)
    return out.read_bytes() + (tmp_path / f"{name}-summary.csv").read_bytes()


def test_serial_and_local_pool_write_identical_bytes(tmp_path):
    spec = mm1(0.2)
    assert _bytes(tmp_path, "serial", spec=spec, workers=1) == _bytes(tmp_path, "pool", spec=spec, workers=2)


def test_a_dask_local_cluster_writes_the_serial_bytes(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec_file = tmp_path / "mm1.toml"
    spec_file.write_text(to_toml(mm1(0.2)))  # a file: workers get its data, not its path
    serial = _bytes(tmp_path, "serial", spec=spec_file, workers=1)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cl:
        cache = Cache(tmp_path / "cache")
        dask_run = _bytes(tmp_path, "dask", spec=spec_file, executor="dask", scheduler=cl.scheduler_address,
                          cache=cache)
        assert dask_run == serial
        assert len(list((tmp_path / "cache").rglob("*.json"))) == 12  # each stored as it arrived
        with distributed.Client(cl.scheduler_address) as client:  # and through a caller's client
            assert _bytes(tmp_path, "client", spec=spec_file, executor="dask", client=client) == serial


def test_resume_computes_only_the_missing_points(tmp_path):
    cache = Cache(tmp_path / "cache")
    spec = mm1(0.2)
    sw.sweep(spec, vary={RATE_KEY: "200,400"}, replications=2, workers=1, cache=cache)  # "killed" after 2 of 4
    computed = []
    out = tmp_path / "resumed.csv"
    sw.sweep(spec, vary={RATE_KEY: "200,400,600,800"}, replications=2, workers=2, cache=cache, out=out,
             on_result=lambda i, r: computed.append(i))
    assert sorted(computed) == [4, 5, 6, 7]  # points 2 and 3, both replications
    fresh = tmp_path / "fresh.csv"
    sw.sweep(spec, vary={RATE_KEY: "200,400,600,800"}, replications=2, workers=1, out=fresh)
    assert out.read_bytes() == fresh.read_bytes()
    assert (tmp_path / "resumed-summary.csv").read_bytes() == (tmp_path / "fresh-summary.csv").read_bytes()


# ----------------------------------------------------------------------------- command line

def test_cli_sweep_of_bundled_models(tmp_path, capsys):
    out = tmp_path / "b.csv"
    args = ["sweep", "--host", "xeon-2017", "-w", "cloud-mix", "--vary", "architecture=xen-pv,nitro",
            "--vary", "exit_cycles=1000,3000", "--duration", "0.002", "--warmup", "0.0005", "--out", str(out),
            "--cache", str(tmp_path / "cache"), "--quiet", "--workers", "2"]
    assert main(args) == 0
    assert "4 runs computed" in capsys.readouterr().out
    header, rows, prov = read_csv(out)
    assert [(r["architecture"], r["exit_cycles"]) for r in rows] == [
        ("xen-pv", "1000"), ("xen-pv", "3000"), ("nitro", "1000"), ("nitro", "3000")]
    assert float(rows[0]["usable_fraction"]) < float(rows[2]["usable_fraction"])
    assert "architectures/nitro" in json.loads(prov["models"])
    first = out.read_bytes()
    assert main(args) == 0
    assert "0 runs computed, 4 from the cache" in capsys.readouterr().out and out.read_bytes() == first


def test_joined_keys_take_one_value_together(tmp_path):
    # dom0 must fit in the reserve, so growing it alone is refused at its first point beyond
    # 8; joined, both keys take each value, and the run at a balanced split (11, where xen-pv
    # peaks: results/dom0-size.csv) beats the dom0-bound 4 by far more than noise.
    joined = "architecture.reserve.cores+architecture.resources.dom0.cores"
    pl = sw.plan(host="xeon-2017", architecture="xen-pv", workload="cloud-mix", vary=[f"{joined}=4,11"],
                 duration_s=0.004, warmup_s=0.001)
    assert [j.sets for j in pl.jobs] == [tuple(f"{k}={c}" for k in joined.split("+")) for c in (4, 11)]
    sw.sweep(host="xeon-2017", architecture="xen-pv", workload="cloud-mix", vary=[f"{joined}=4,11"],
             duration_s=0.004, warmup_s=0.001, out=tmp_path / "j.csv", workers=1, cache=Cache(tmp_path / "cache"))
    _, rows, _ = read_csv(tmp_path / "j.csv")
    rows = [{k: float(v) for k, v in r.items()} for r in rows]
    assert [r[joined] for r in rows] == [4, 11]
    assert rows[1]["usable_fraction"] > 2 * rows[0]["usable_fraction"]
    with pytest.raises(ModelError, match="reserve"):
        sw.plan(host="xeon-2017", architecture="xen-pv", workload="cloud-mix",
                vary=["architecture.resources.dom0.cores=4,11"])

    # a '+' inside a name on one path (a resource "dom0+x") is part of that name, not a join
    assert sw.joined_keys("architecture.resources.dom0+x.cores") == ("architecture.resources.dom0+x.cores",)
    assert sw.joined_keys("exit_cycles+architecture.reserve.cores") == ("exit_cycles", "architecture.reserve.cores")


@pytest.mark.parametrize("vary, key", [("exit_cyclez=1,2", "exit_cyclez"), ("exit_cycles=1:2:x", "exit_cycles"),
                                       ("architecture=xen-pvv", "architecture"),
                                       ("architecture.reserve.cores=1,2", "reserve.cores")])
def test_cli_bad_vary_exits_2_with_one_line(tmp_path, capsys, vary, key):
    out = tmp_path / "x.csv"
    rc = main(["sweep", "--host", "xeon-2017", "-a", "xen-pv", "-w", "cloud-mix", "--vary", vary,
               "--out", str(out), "--duration", "0.001"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and key in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("seed, shown", [('"abc"', "'abc'"), ("1.5", "1.5"), ("-5", "-5")])
def test_sweep_checks_the_files_seed_as_run_does(tmp_path, capsys, seed, shown):
    # it took a bad seed as 1, or blamed -5 on a --seed flag that was never given
    spec = tmp_path / "s.toml"
    doc = mm1(0.02)
    doc["experiment"]["seed"] = 777
    spec.write_text(to_toml(doc).replace("seed = 777", f"seed = {seed}"))
    assert f"seed = {seed}" in spec.read_text()
    rc = main(["sweep", str(spec), "--vary", f"{RATE_KEY}=100,200", "-q", "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"{spec}: experiment.seed:" in err and shown in err
    assert not (tmp_path / "o.csv").exists()


def test_cli_dask_missing_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    rc = main(["sweep", "--host", "xeon-2017", "-a", "xen-pv", "-w", "cloud-mix", "--vary", "exit_cycles=1,2",
               "--executor", "dask", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "dask" in err


# ----------------------------------------------------------------------------- vemu plot

def test_plot_draws_the_summary_it_is_given(tmp_path, capsys):
    # vemu plot takes the tidy CSV (or its summary) and draws each point's summary value:
    # one line per --by value, in x order, the other varied keys fixed by --where
    out = tmp_path / "s.csv"
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(mm1(0.02)))
    assert main(["sweep", str(spec), "--vary", f"{RATE_KEY}=100:1000:3:log", "--vary",
                 "architecture.resources.s.cores=1,2", "-r", "2", "--out", str(out), "-q"]) == 0
    fig = sw.figure_of(out, RATE_KEY, ["f.mean_us", "usable_fraction"], by="architecture.resources.s.cores")
    summary = read_csv(tmp_path / "s-summary.csv")[1]
    assert fig.numeric and fig.logx and list(fig.lines) == ["1", "2"]
    for label, pts in fig.lines.items():
        assert [x for x, _ in pts] == [100.0, 316.0, 1000.0]  # integer ends: integer points
        want = [r for r in summary if r["architecture.resources.s.cores"] == label]
        assert [p["f.mean_us"] for _, p in pts] == [float(r["f.mean_us"]) for r in want]
    # a key neither drawn nor fixed is an error; --where fixes it (as text or the same number)
    with pytest.raises(ModelError, match="also varies architecture.resources.s.cores"):
        sw.figure_of(out, RATE_KEY, ["f.mean_us"])
    one = sw.figure_of(tmp_path / "s-summary.csv", RATE_KEY, ["f.mean_us"], where=["architecture.resources.s.cores=2.0"])
    assert list(one.lines) == [""] and one.lines[""] == fig.lines["2"] and "=2.0" in one.title
    cat = sw.figure_of(out, "architecture.resources.s.cores", ["f.mean_us"], where=[f"{RATE_KEY}=1e3"], logx=True)
    assert not cat.numeric or [x for x, _ in cat.lines[""]] == [1.0, 2.0]
    assert main(["plot", str(out), "--x", RATE_KEY, "--y", "f.p99_us", "--by", "architecture.resources.s.cores"]) == 0
    png = tmp_path / f"s-{RATE_KEY.replace('.', '_')}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.with_suffix(".svg").is_file()
    assert str(png) in capsys.readouterr().out


def test_plot_hollows_only_flagged_percentiles():
    # a point is drawn hollow, without a bar, when its thin_tail or biased column is 1; a
    # blank cell (NaN: a summary written without the runs' histograms) is not a flag
    from emulator.plot import _flagged

    nan = float("nan")
    assert _flagged({"y_thin_tail": 1.0, "y_biased": nan}, "y") and _flagged({"y_thin_tail": 0.0, "y_biased": 1.0}, "y")
    assert not _flagged({"y_thin_tail": 0.0, "y_biased": nan}, "y") and not _flagged({}, "y")


@pytest.mark.parametrize("args, message", [
    (["--x", "nope", "--y", "usable_fraction"], "--x nope: not a varied key of this sweep; one of"),
    (["--x", RATE_KEY, "--y", "nope"], "--y nope: not a measure of this sweep"),
    (["--x", RATE_KEY, "--y", "usable_fraction", "--by", RATE_KEY], "the same key as --x"),
    (["--x", RATE_KEY, "--y", "usable_fraction", "--where", "x"], "--where x: give KEY=VALUE"),
    (["--x", RATE_KEY, "--y", "usable_fraction", "--by", "architecture.resources.s.cores", "--out", "/proc/x.png"],
     "--out"),
])
def test_plot_bad_input_is_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "s.csv"
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(mm1(0.01)))
    assert main(["sweep", str(spec), "--vary", f"{RATE_KEY}=100,200", "--vary", "architecture.resources.s.cores=1,2",
                 "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["plot", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_plot_refuses_what_is_not_a_sweep(tmp_path, capsys):
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    (tmp_path / "t.csv").write_text("point,replication,seed,x,usable_fraction\n0,0,1,1,0.5\n")
    for name, message in (("missing.csv", "no such file"), ("junk.csv", "not a vemu sweep table"),
                          ("t.csv", "its summary")):
        assert main(["plot", str(tmp_path / name), "--x", "x", "--y", "usable_fraction"]) == 2
        err = capsys.readouterr().err
        assert message in err and str(tmp_path / name) in err and len(err.strip().splitlines()) == 1


def _exit_cycles_sweep(tmp_path, values: str = "0,1000"):
    # the headline model with exit_cycles 0 (a value a log axis cannot place) and 1000
    out = tmp_path / "z.csv"
    assert main(["sweep", "--host", "xeon-2017", "-a", "xen-pv", "-w", "cloud-mix", "--vary", f"exit_cycles={values}",
                 "--duration", "0.002", "--warmup", "0.001", "--workers", "1", "--no-cache", "--cache",
                 str(tmp_path / "cache"), "--out", str(out), "-q"]) == 0
    return out


def test_plot_logx_refuses_non_positive_x(tmp_path, capsys):
    # a log x axis cannot place x <= 0: --logx with such points is one line naming --logx
    # and the values, nothing drawn (the points used to vanish from the figure)
    out = _exit_cycles_sweep(tmp_path, "0,1000")
    capsys.readouterr()
    fig = tmp_path / "fig.png"
    assert main(["plot", str(out), "--x", "exit_cycles", "--y", "usable_fraction", "--logx", "--out", str(fig)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    named = err.split("--logx", 1)[1]  # the flag, then the key and its offending values (not the good ones)
    assert "exit_cycles" in named and re.search(r"(?<![\w.])0(?![\w.])", named) and "1000" not in named
    assert not fig.exists() and not fig.with_suffix(".svg").exists()
    # without --logx (a list axis: linear), and with --no-logx, every point is drawn
    for flag in ([], ["--no-logx"]):
        assert main(["plot", str(out), "--x", "exit_cycles", "--y", "usable_fraction", *flag, "--out", str(fig)]) == 0
        drawn = sw.figure_of(out, "exit_cycles", ["usable_fraction"], logx=False if flag else None)
        assert not drawn.logx and sorted(x for x, _ in drawn.lines[""]) == [0.0, 1000.0]
    # a named x (spread evenly, no scale) cannot be drawn on a log scale either: refused, not ignored
    named_x = tmp_path / "n.csv"
    assert main(["sweep", "--host", "xeon-2017", "-w", "cloud-mix", "--vary", "architecture=xen-pv,bare-metal",
                 "--duration", "0.002", "--warmup", "0.001", "--workers", "1", "--no-cache", "--cache",
                 str(tmp_path / "cache"), "--out", str(named_x), "-q"]) == 0
    capsys.readouterr()
    assert main(["plot", str(named_x), "--x", "architecture", "--y", "usable_fraction", "--logx", "--out",
                 str(tmp_path / "n.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--logx" in err and "architecture" in err
    assert not (tmp_path / "n.png").exists()


@pytest.mark.parametrize("given, png", [("fig.svg", "fig.png"), ("fig.png", "fig.png"), ("fig.PNG", "fig.png"),
                                        ("fig.SVG", "fig.png"), ("fig", "fig.png"), ("a.b.svg", "a.b.png")])
def test_plot_out_names_the_png_and_svg_pair(tmp_path, capsys, given, png):
    # --out FIG.png, FIG.svg or FIG: exactly FIG.png and FIG.svg are written, nothing else
    out = _exit_cycles_sweep(tmp_path)
    figs = tmp_path / "figs"
    figs.mkdir()
    assert main(["plot", str(out), "--x", "exit_cycles", "--y", "usable_fraction", "--out", str(figs / given)]) == 0
    stem = png.removesuffix(".png")
    assert sorted(p.name for p in figs.iterdir()) == [f"{stem}.png", f"{stem}.svg"]
    assert (figs / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (figs / f"{stem}.svg").read_bytes()[:2000]
    assert str(figs / png) in capsys.readouterr().out


def test_plot_default_out_beside_a_dotted_table(tmp_path, capsys):
    # without --out the figure is named after the table; a dot in the table's name is not a suffix
    out = _exit_cycles_sweep(tmp_path)
    dotted = tmp_path / "run.v2-summary.csv"
    dotted.write_bytes(out.with_name("z-summary.csv").read_bytes())
    assert main(["plot", str(dotted), "--x", "exit_cycles", "--y", "usable_fraction"]) == 0
    assert (tmp_path / "run.v2-exit_cycles.png").is_file() and (tmp_path / "run.v2-exit_cycles.svg").is_file()


@pytest.mark.parametrize("given", ["fig.jpg", "fig.pdf", "fig.svg.bak"])
def test_plot_out_refuses_other_suffixes(tmp_path, capsys, given):
    out = _exit_cycles_sweep(tmp_path)
    figs = tmp_path / "figs"
    figs.mkdir()
    capsys.readouterr()
    assert main(["plot", str(out), "--x", "exit_cycles", "--y", "usable_fraction", "--out", str(figs / given)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--out" in err and given in err and ".png" in err and ".svg" in err
    assert list(figs.iterdir()) == []


def test_plot_help_says_what_out_takes(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ".png" in text and ".svg" in text and "suffix" in text


def test_plot_where_refuses_a_key_given_twice(tmp_path, capsys):
    # --where fixes a key to one value (a repeated key is not an OR): a key given twice
    # is one line naming it, whether the values differ or not
    out = tmp_path / "p.csv"
    assert main(["sweep", "--host", "xeon-2017", "-w", "cloud-mix", "--vary", "architecture=xen-pv,bare-metal",
                 "--vary", "exit_cycles=1000,2000", "--duration", "0.002", "--warmup", "0.001", "--workers", "1",
                 "--no-cache", "--cache", str(tmp_path / "cache"), "--out", str(out), "-q"]) == 0
    for second in ("architecture=bare-metal", "architecture=xen-pv"):
        capsys.readouterr()
        assert main(["plot", str(out), "--x", "exit_cycles", "--y", "usable_fraction", "--where",
                     "architecture=xen-pv", "--where", second, "--out", str(tmp_path / "f.png")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert "--where" in err and "architecture" in err and "twice" in err
        with pytest.raises(ModelError, match="twice"):
            sw.figure_of(out, "exit_cycles", ["usable_fraction"], where=["architecture=xen-pv", second])
    assert not (tmp_path / "f.png").exists()
    one = sw.figure_of(out, "exit_cycles", ["usable_fraction"], where=["architecture=bare-metal"])
    assert len(one.lines[""]) == 2


@pytest.mark.parametrize("edit, says", [
    (lambda lines: lines[:-1] + [",".join(lines[-1].split(",")[:4])], "cells where the header has"),
    (lambda lines: [ln for ln in lines if ln.startswith(("#", "point"))], "no points"),
    (lambda lines: lines + [lines[-1]], "in the summary twice"),
    (lambda lines: lines[:-1] + [_cell(lines, "f.mean_us_ci95", "-1")], "is not a half-width"),
    (lambda lines: lines[:-1] + [_cell(lines, "f.mean_us", "abc")], "is not a finite number"),
    (lambda lines: lines[:-1] + [_cell(lines, "f.mean_us", "inf")], "is not a finite number"),
])
def test_plot_refuses_a_broken_summary_in_one_line(tmp_path, capsys, edit, says):
    # a summary cut short, edited or joined: exit 2 naming the file and the row, not a
    # traceback (a short row was "internal error: TypeError"), nor a silent drawing
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(mm1(0.01)))
    out = tmp_path / "s.csv"
    assert main(["sweep", str(spec), "--vary", f"{RATE_KEY}=100,200", "-q", "--out", str(out)]) == 0
    summary = tmp_path / "s-summary.csv"
    summary.write_text("\n".join(edit(summary.read_text().splitlines())) + "\n")
    capsys.readouterr()
    rc = main(["plot", str(summary), "--x", RATE_KEY, "--y", "f.mean_us", "--out", str(tmp_path / "fig.png")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and str(summary) in err and says in err, err
    assert not (tmp_path / "fig.png").exists()


def _cell(lines: list[str], column: str, value: str) -> str:
    header = next(ln for ln in lines if ln.startswith("point")).split(",")
    row = lines[-1].split(",")
    row[header.index(column)] = value
    return ",".join(row)


@pytest.mark.parametrize("values", ["1,1.0", "2e3,2000", "0.5,5e-1"])
def test_the_same_number_spelt_twice_is_one_point(values):
    # the docs say coinciding points are an error: 1 and 1.0 ran as two points
    with pytest.raises(ModelError, match="given twice"):
        sw.parse_vary(f"exit_cycles={values}")
    assert len(sw.parse_vary("x=true,1").values) == 2  # a boolean is not the number 1


def test_plot_draws_a_sampled_sweeps_own_summary(tmp_path, capsys):
    # a sampled design repeats values: two points at one x are not a summary "edited" (the
    # duplicate check keys on the point's number)
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(mm1(0.005)))
    out = tmp_path / "l.csv"
    assert main(["sweep", str(spec), "--vary", "architecture.resources.s.cores=1,2", "--vary", f"{RATE_KEY}=100:400",
                 "--sample", "lhs:4", "-q", "--out", str(out)]) == 0
    assert main(["plot", str(tmp_path / "l-summary.csv"), "--x", RATE_KEY, "--y", "f.mean_us",
                 "--by", "architecture.resources.s.cores", "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").is_file()


def test_integers_past_two_to_the_53_are_told_apart():
    assert len(sw.parse_vary("x=9007199254740992,9007199254740993").values) == 2


def test_a_sweep_says_when_integer_ends_rounded_its_points(tmp_path, capsys):
    # 10:200:5:log ran 10, 21, 45, 95, 200 for a link's gbps without a word
    assert sw.integer_notes(["host.devices.nic.gbps=10:200:5:log"], None) == [
        "note: --vary host.devices.nic.gbps: integer ends, so its points are integers (10, 21, 45, 95, 200); "
        "write 10.0 as the low end for 10, 21.15, 44.72, 94.57, 200"]
    assert sw.integer_notes(["architecture.reserve.cores=4:24:11", "x=10.0:200:5:log", "k=a,b"], None) == []
    assert "sampled values are integers" in sw.integer_notes(["x=1:3"], "lhs:4")[0]


def test_a_reversed_integer_range_samples_its_integers():
    for rhs, lo, hi in (("3000:1000", 1000, 3000), ("3:1", 1, 3)):
        ax = sw.parse_vary(f"x={rhs}", sampled=True)
        for kind in ("lhs:4", "random:20"):
            got = [p[0][0] for s in range(20) for p in sw.design([ax], kind, sample_seed=s)]
            assert all(lo <= v <= hi for v in got) and len(set(got)) > 1, (rhs, kind)


def _fixed_spec() -> dict:
    # a fixed 2 us of work at 1e5/s on an off-host core: every request takes the same time
    return {"host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
            "architecture": {"name": "a", "resources": {"s": {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}},
                             "paths": {"p": {"stages": [{"on": "s", "cycles": 2000}]}}},
            "workload": {"name": "w", "flows": [{"name": "f", "arrival": "periodic", "rate_per_s": 1e5,
                                                 "steps": [{"path": "p"}]}]},
            "experiment": {"duration_s": 0.001, "warmup_s": 0.0001}}


def test_identical_replications_are_not_flagged_biased_and_one_is_not_judged(tmp_path) -> None:
    # a fixed latency: each run reads its percentile at one rank of a bucket and the pooled
    # runs at another (2.043872 against 2.043893 us), so `_biased` was 1 at every point with
    # a half-width of 0; within a bucket is no evidence. With one replication nothing can be
    # judged: blank, not 0 ("not biased")
    table = sw.sweep(_fixed_spec(), vary={"architecture.paths.p.stages.0.cycles": np.arange(2000, 4000, 1000)},
                     replications=2, workers=1, cache=tmp_path / "c")  # NumPy integers as values
    rows = sw.summary(table).to_dict("records")
    assert rows and all(r["f.p50_us_biased"] == 0 and r["f.p99_us_biased"] == 0 for r in rows)
    one = sw.sweep(_fixed_spec(), vary={"architecture.paths.p.stages.0.cycles": [2000, 3000]}, replications=1,
                   workers=1, cache=tmp_path / "c")
    assert all(r["f.p99_us_biased"] is None or math.isnan(r["f.p99_us_biased"])
               for r in sw.summary(one).to_dict("records"))


@pytest.mark.parametrize("argv,words", [
    (["--set", "exit_cycles=50000", "--vary", "exit_cycles=1000,2000"], "also set by --set exit_cycles"),
    (["--vary", "architecture=xen-pv,kvm-virtio"], "is varied and also named (architecture nitro)"),
])
def test_a_setting_the_vary_would_override_is_refused(argv, words, tmp_path, capsys) -> None:
    # the --vary won at every point while the --set (or -a) stayed in the options line and
    # a plot's title as if in force
    code = main(["sweep", "--host", "xeon-2017", "-w", "kv-cache", "-a", "nitro", *argv, "--duration", "0.0005",
                 "--out", str(tmp_path / "s.csv"), "--cache", str(tmp_path / "c"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and words in err and not (tmp_path / "s.csv").exists()


def test_a_summary_saved_without_its_provenance_lines_still_plots(tmp_path, capsys) -> None:
    # filtered in pandas and saved, it has no `# table: summary` line: known by its columns
    assert main(["sweep", "--host", "xeon-2017", "-w", "kv-cache", "-a", "nitro", "--vary", "exit_cycles=1000,2000",
                 "--duration", "0.0005", "--out", str(tmp_path / "s.csv"), "--cache", str(tmp_path / "c"), "-q"]) == 0
    bare = tmp_path / "mine.csv"
    bare.write_text("".join(ln for ln in (tmp_path / "s-summary.csv").read_text().splitlines(True)
                            if not ln.startswith("#")))
    assert main(["plot", str(bare), "--x", "exit_cycles", "--y", "usable_fraction",
                 "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0


def test_a_sampled_design_plots_as_points_against_x(tmp_path, capsys) -> None:
    # a Latin-hypercube sample gives each point its own value of every key: it was refused
    # ("the sweep also varies tx_per_byte"), and --where could pick only one point
    assert main(["sweep", "--host", "xeon-2017", "-w", "kv-cache", "-a", "nitro", "--vary", "exit_cycles=1000:9000",
                 "--vary", "tx_per_byte=0.1:2.0", "--sample", "lhs:5", "--duration", "0.0005",
                 "--out", str(tmp_path / "s.csv"), "--cache", str(tmp_path / "c"), "-q"]) == 0
    fig = sw.figure_of(tmp_path / "s.csv", "exit_cycles", ["usable_fraction"])
    assert fig.scattered and sum(len(p) for p in fig.lines.values()) == 5 and "tx_per_byte varying too" in fig.title
    assert main(["plot", str(tmp_path / "s.csv"), "--x", "exit_cycles", "--y", "usable_fraction",
                 "--out", str(tmp_path / "p.png")]) == 0


def test_a_sampled_summary_saved_without_its_lines_still_plots(tmp_path, capsys) -> None:
    # no options line to say it was sampled: a design where no combination of the other keys
    # comes twice is taken for a sample (it was refused: "the sweep also varies tx_per_byte")
    assert main(["sweep", "--host", "xeon-2017", "-w", "kv-cache", "-a", "nitro", "--vary", "exit_cycles=1000:3000",
                 "--vary", "tx_per_byte=0.1:0.5", "--sample", "lhs:4", "--duration", "0.0005",
                 "--out", str(tmp_path / "s.csv"), "--cache", str(tmp_path / "c"), "-q"]) == 0
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(ln for ln in (tmp_path / "s-summary.csv").read_text().splitlines(True)
                            if not ln.startswith("#")))
    assert sw.figure_of(bare, "exit_cycles", ["usable_fraction"]).scattered
    # a grid keeps refusing an unfixed second key, with or without its lines
    assert main(["sweep", "--host", "xeon-2017", "-w", "kv-cache", "-a", "nitro", "--vary", "exit_cycles=1000,2000",
                 "--vary", "tx_per_byte=0.1,0.5", "--duration", "0.0005", "--out", str(tmp_path / "g.csv"),
                 "--cache", str(tmp_path / "c"), "-q"]) == 0
    grid = tmp_path / "grid.csv"
    grid.write_text("".join(ln for ln in (tmp_path / "g-summary.csv").read_text().splitlines(True)
                            if not ln.startswith("#")))
    with pytest.raises(ModelError, match="also varies tx_per_byte"):
        sw.figure_of(grid, "exit_cycles", ["usable_fraction"])


@pytest.mark.parametrize("line", ['{x"vary": []}', "[1, 2]", '{"vary": 5}', '{"sets": "a=1"}', '{"sets": [null, 3]}',
                                  '{"duration_s": "x"}', '{"host": 5}', '{"replications": true}'])
def test_plot_of_a_summary_with_a_damaged_options_line_is_one_line(tmp_path, capsys, line):
    # an edited '# options:' line was an internal error (JSONDecodeError, AttributeError, TypeError)
    out = tmp_path / "s.csv"
    spec = tmp_path / "mm1.toml"
    spec.write_text(to_toml(mm1(0.01)))
    assert main(["sweep", str(spec), "--vary", f"{RATE_KEY}=100,200", "--out", str(out), "-q"]) == 0
    summary = tmp_path / "s-summary.csv"
    text = summary.read_text()
    assert "\n# options: {" in "\n" + text
    bad = tmp_path / "bad-summary.csv"
    bad.write_text(re.sub(r"(?m)^# options: .*$", f"# options: {line}", text))
    capsys.readouterr()
    assert main(["plot", str(bad), "--x", RATE_KEY, "--y", "usable_fraction"]) == 2
    err = capsys.readouterr().err
    assert "# options" in err and str(bad) in err and len(err.strip().splitlines()) == 1


def test_plot_lines_past_the_palette_still_differ():
    # seven --by values drew the 1st and 6th (and 2nd and 7th) alike: one colour, one dash,
    # one marker; each of 40 lines now has its own combination
    from emulator.plot import _line_style

    styles = [_line_style(str(v), i) for i, v in enumerate(range(1000, 41000, 1000))]
    assert len({(c, ls, mk["marker"]) for c, ls, mk in styles}) == 40
    assert _line_style("nitro", 3)[:2] == _line_style("nitro", 0)[:2]  # an architecture keeps its own


def test_a_bad_varied_key_or_value_is_blamed_on_the_vary(capsys) -> None:
    """A sweep passes its points' values to the loader as overrides; an error in one is the
    --vary's, not a --set the user never gave (a --set the user did give keeps its name)."""
    from emulator.cli import main

    base = ["sweep", "-a", "kvm-virtio", "-w", "cloud-mix", "--host", "xeon-2017", "-r", "2"]
    assert main(base + ["--vary", "exit_cycle=1000,2000"]) == 2
    assert capsys.readouterr().err.startswith("vemu: --vary exit_cycle: no param 'exit_cycle'")
    assert main(base + ["--vary", "exit_cycles=1000,-2000"]) == 2
    assert capsys.readouterr().err.startswith("vemu: --vary exit_cycles: host.params.exit_cycles of xeon-2017.toml")
    assert main(base + ["--set", "exit_cycle=5", "--vary", "exit_cycles=1000,2000"]) == 2
    assert capsys.readouterr().err.startswith("vemu: --set exit_cycle: no param")


def test_no_output_is_written_over_an_input(tmp_path, capsys) -> None:
    """A sweep's --out (or its summary) naming the experiment file, or a model file, and a
    plot's --out naming its table, wrote the result over the input and exited 0."""
    from emulator.cli import main
    from emulator.model import MODELS_DIR

    spec = tmp_path / "victim.toml"
    spec.write_text(to_toml(mm1(0.01)))
    before = spec.read_bytes()
    assert main(["sweep", str(spec), "--vary", f"{RATE_KEY}=200,300", "--out", str(spec), "-q"]) == 2
    assert "an input of this command" in capsys.readouterr().err and spec.read_bytes() == before
    model = MODELS_DIR / "hosts" / "xeon-2017.toml"
    assert main(["sweep", "-a", "kvm-virtio", "-w", "cloud-mix", "--host", "xeon-2017", "--vary",
                 "exit_cycles=1,2", "--out", str(model)]) == 2
    assert "an input of this command" in capsys.readouterr().err
    # a real summary saved under a figure's name: plotting it --out itself would overwrite it
    assert main(["sweep", str(spec), "--vary", f"{RATE_KEY}=200,300", "--out", str(tmp_path / "t.csv"), "-q"]) == 0
    table = tmp_path / "t-summary.svg"
    (tmp_path / "t-summary.csv").rename(table)
    before = table.read_bytes()
    capsys.readouterr()
    assert main(["plot", str(table), "--x", RATE_KEY, "--y", "usable_fraction", "--out", str(table)]) == 2
    assert "an input of this command" in capsys.readouterr().err and table.read_bytes() == before


def test_sets_given_as_pairs_are_recorded_as_text_and_plot(tmp_path, capsys) -> None:
    """load_experiment takes (KEY, VALUE) pairs, and so did a sweep: it recorded them as
    given, and vemu plot then refused its own unedited options line; a pair also slipped
    past the --set/--vary checks."""
    from emulator.cli import main

    out = tmp_path / "p.csv"
    sw.sweep(mm1(0.01), vary={RATE_KEY: "200,300"}, sets=[("architecture.reserve.cores", 0)], replications=2,
             workers=1, out=out)
    _, _, prov = read_csv(tmp_path / "p-summary.csv")
    assert json.loads(prov["options"])["sets"] == ["architecture.reserve.cores=0"]
    assert main(["plot", str(tmp_path / "p-summary.csv"), "--x", RATE_KEY, "--y", "usable_fraction"]) == 0
    with pytest.raises(ModelError, match="also set by --set"):
        sw.plan(mm1(0.01), vary={RATE_KEY: "200,300"}, sets=[(RATE_KEY, 100)])


def test_a_wildcard_vary_that_voids_a_set_is_refused(tmp_path, capsys) -> None:
    """A '*' in the varied key wrote over a --set's one place at every point while the
    options line recorded the --set as in force; a '*' --set that the --vary overrides in
    one place only still sets the others (a baseline), and runs."""
    from emulator.cli import main

    spec = tmp_path / "two.toml"
    doc = tandem()
    spec.write_text(to_toml(doc))
    stages = "architecture.paths.tandem.stages"
    out = ["--out", str(tmp_path / "s.csv"), "-q", "-r", "2", "--duration", "0.01", "--warmup", "0.002"]
    assert main(["sweep", str(spec), "--vary", f"{stages}.*.cycles.mean=1e5,2e5", "--set", f"{stages}.two.cycles.mean=5e4",
                 *out]) == 2
    err = capsys.readouterr().err
    assert f"--vary {stages}.*.cycles.mean: also sets" in err and f"--set {stages}.two.cycles.mean sets" in err
    # every stage set, one of them varied: the --set still holds for the others
    assert main(["sweep", str(spec), "--vary", f"{stages}.two.cycles.mean=1e5,2e5", "--set", f"{stages}.*.cycles.mean=5e4",
                 *out]) == 0


def test_the_options_line_records_the_window_the_runs_used(tmp_path) -> None:
    # with no --duration the runs take the experiment's window; the options said null
    out = tmp_path / "w.csv"
    sw.sweep(mm1(0.01), vary={RATE_KEY: "200,300"}, replications=2, workers=1, out=out)
    opts = json.loads(read_csv(out)[2]["options"])
    assert (opts["duration_s"], opts["warmup_s"]) == (0.01, 0.01 / 20)
