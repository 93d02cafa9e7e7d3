"""Latency by request class: a flow that draws several classes reports each one's latency
(``class_latency_us`` in ``vemu run --json``; FLOW/CLASS measures in replications, batch
means and comparisons). The engine keeps a latency sum, maximum and histogram per class
beside the flow's, so the classes add up to the flow exactly."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from conftest import experiment

from emulator import model as M
from emulator._core import Engine, NativeError, ModelError, Spec
from emulator.model import load_experiment
from emulator.simulation import Simulation, run
from emulator.stats import long_run, replicate


def _two_classes(duration_s: float = 1.0, rate: float = 1.5e5) -> dict[str, Any]:
    """One 1 GHz core, FIFO, Poisson arrivals at `rate`: half the requests take 2 us of
    fixed service ("short"), half 6 us ("long")."""
    return experiment({"s": {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}}, {},
                      [{"name": "f", "arrival": "poisson", "rate_per_s": rate, "mix": [
                          {"name": "short", "weight": 1, "steps": [{"on": "s", "cycles": 2000}]},
                          {"name": "long", "weight": 1, "steps": [{"on": "s", "cycles": 6000}]}]}],
                      duration_s=duration_s, warmup_s=0.05)


def test_the_classes_add_up_to_their_flow_exactly() -> None:
    res = run(_two_classes(0.2), seed=3)
    s, d = res.stats, res.to_dict()["flows"]["f"]
    own = [0, 1]
    assert int(s["class_completed"][own].sum()) == d["completed"] == int(s["flow_completed"][0])
    assert float(s["class_latency_sum"][own].sum()) == pytest.approx(float(s["flow_latency_sum"][0]), rel=1e-12)
    assert np.array_equal(s["class_hist"][own].sum(axis=0), s["flow_hist"][0])
    assert int(s["class_latency_max"][own].max()) == int(s["flow_latency_max"][0])
    assert set(d["class_latency_us"]) == {"short", "long"}
    mean = sum(d["class_latency_us"][c]["mean"] * d["classes"][c] for c in ("short", "long")) / d["completed"]
    assert mean == pytest.approx(d["latency_us"]["mean"], rel=1e-12)


def test_fifo_classes_wait_alike_and_differ_by_their_service() -> None:
    # M/G/1 FIFO: every class waits the same W = lambda E[S^2] / (2 (1 - rho)) (P-K), so a
    # class's mean sojourn is W + its own service: rho 0.6, E[S^2] = (2^2 + 6^2)/2 = 20 us^2,
    # W = 0.15 x 20 / 0.8 = 3.75 us; short 5.75 us, long 9.75 us. The 1 s run has 150k
    # requests; the relative s.e. of a class's mean is ~0.5% at this load: tolerance 3%.
    d = run(_two_classes(), seed=5).to_dict()["flows"]["f"]["class_latency_us"]
    assert d["short"]["mean"] == pytest.approx(5.75, rel=0.03)
    assert d["long"]["mean"] == pytest.approx(9.75, rel=0.03)
    assert d["long"]["mean"] - d["short"]["mean"] == pytest.approx(4.0, rel=0.02)  # the waits cancel
    assert d["short"]["p50"] < d["long"]["p50"] and d["short"]["max"] <= d["long"]["max"] + 20


def test_a_flow_of_one_class_reports_no_classes() -> None:
    spec = _two_classes(0.05)
    spec["workload"]["flows"][0]["mix"] = spec["workload"]["flows"][0]["mix"][:1]
    sim = Simulation(load_experiment(spec))
    assert not sim.compiled.spec.class_histograms
    assert "class_latency_us" not in sim.run().to_dict()["flows"]["f"]


def test_replications_and_batches_give_each_class_an_interval() -> None:
    exp = load_experiment(_two_classes(0.05))
    reps = replicate(exp, 3, workers=1)
    names = set(reps.intervals)
    assert {"f/short.mean_us", "f/short.p99_us", "f/long.mean_us", "f/long.p99_us"} <= names
    assert reps.intervals["f/long.mean_us"].mean > reps.intervals["f/short.mean_us"].mean
    bm = long_run(exp, n_batches=5, windows_per_batch=2)
    assert {"f/short.mean_us", "f/short.p99_us", "f/long.mean_us", "f/long.p99_us"} <= set(bm)
    keys = list(bm)
    assert keys.index("f/short.mean_us") > keys.index("f.p999_us")  # right after their flow


def test_too_many_classes_keep_means_but_no_percentiles(monkeypatch: pytest.MonkeyPatch) -> None:
    # beyond CLASS_HIST_CLASSES classes the engine keeps no histogram per class (59 KiB each)
    monkeypatch.setattr(M, "CLASS_HIST_CLASSES", 1)
    sim = Simulation(load_experiment(_two_classes(0.05)))
    assert not sim.compiled.spec.class_histograms
    res = sim.run()
    d = res.to_dict()["flows"]["f"]
    assert d["class_latency_us"]["long"]["mean"] > d["class_latency_us"]["short"]["mean"] > 0
    assert all(np.isnan(d["class_latency_us"][c][k]) for c in ("short", "long") for k in ("p50", "p99", "p999"))
    from emulator.stats import measures
    m = measures(res)
    assert "f/short.mean_us" in m and "f/short.p99_us" not in m
    assert "f/short" not in res.tails()


def _spec(class_histograms: Any, n_classes: int = 2) -> Spec:
    nodelay = ("fixed", 0.0, 0.0)
    stage = (0, 0, ("fixed", 1e5, 0.0), 0.0, nodelay, False, nodelay)
    return Spec(resources=[(1, -1)], qclasses=[(0, 0, 1)], stages=[stage],
                classes=[(0, 1, 1.0)] * n_classes, flows=[(False, ("exp", 1e6, 1.0), 0, nodelay, 0, n_classes)],
                n_categories=1, pool_size=100, class_histograms=class_histograms)


def test_the_engine_rechecks_class_histograms() -> None:
    from emulator._core import LIMITS

    with pytest.raises((NativeError, ModelError), match="at most"):
        with Engine(_spec(True, LIMITS["class_hist"] + 1), seed=1):
            pass
    with Engine(_spec(False), seed=1) as eng:
        eng.run(10**9)
        st = eng.stats()
        assert "class_hist" not in st and int(st["class_completed"].sum()) > 100
        assert float(st["class_latency_sum"].sum()) == pytest.approx(float(st["flow_latency_sum"][0]))


def _mix(services: list[Any], *, cores: int = 1, rate: float = 1.5e5, duration_s: float = 1.0,
         second_resource: bool = False) -> dict[str, Any]:
    res = {"s": {"kind": "cpu", "cores": cores, "ghz": 1.0, "on_host": False}}
    if second_resource:
        res["t"] = {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}
    mix = [{"name": f"c{i}", "weight": 1, "steps": [{"on": "t" if second_resource and i else "s", "cycles": sv}]}
           for i, sv in enumerate(services)]
    return experiment(res, {}, [{"name": "f", "arrival": "poisson", "rate_per_s": rate, "mix": mix}],
                      duration_s=duration_s, warmup_s=0.05)


def test_theory_predicts_each_class_of_a_fifo_mix() -> None:
    # vemu theory on a mix at one M/G/1 station: E[S] = (2 + 6)/2 = 4 us, E[S^2] = (4 + 2 x
    # 36)/2 = 38 us^2 (the long class exponential), rho 0.6, W = 0.15 x 38 / 0.8 = 7.125 us;
    # classes 9.125 and 13.125 us, the flow 11.125. Against a 1 s run (150k requests, a
    # relative s.e. of ~1% for a mean sojourn at this load): tolerance 3%.
    from emulator.theory import analyse, compare_result

    exp = load_experiment(_mix([2000, {"dist": "exp", "mean": 6000}]))
    pred, why = analyse(exp)
    assert pred is not None, why
    means = {f.name: f.mean_us for f in pred.flows}
    assert means == pytest.approx({"f": 11.125, "f/c0": 9.125, "f/c1": 13.125})
    assert pred.stations[0].mean_wait_us == pytest.approx(7.125)
    cmp = compare_result(pred, Simulation(exp).run(seed=2))
    for row in cmp["flows"]:
        assert abs(row["mean_us"]["rel_diff"]) < 0.03, row
        assert abs(row["throughput_per_s"]["rel_diff"]) < 0.02, row  # ~0.4% s.e. on 75k/s
    assert abs(cmp["stations"][0]["mean_wait_us"]["rel_diff"]) < 0.04


def test_theory_covers_a_mix_on_c_units_only_as_m_m_c() -> None:
    from emulator.theory import analyse, why_not

    same = {"dist": "exp", "mean": 4000}
    pred, why = analyse(load_experiment(_mix([same, same], cores=2, rate=3e5)))
    assert pred is not None and "M/M/2" in pred.model, why
    assert "M/G/c" in (why_not(load_experiment(_mix([2000, 6000], cores=2, rate=3e5))) or "")
    # classes at two resources are two thinned Poisson streams, two M/D/1 queues: class c0 at
    # s (75k/s x 2 us, rho 0.15) and c1 at t (75k/s x 6 us, rho 0.45)
    apart, why = analyse(load_experiment(_mix([2000, 6000], second_resource=True)))
    assert apart is not None and apart.model.startswith("independent Poisson streams"), why
    by = {f.name: f.mean_us for f in apart.flows}
    md1 = lambda lam, s: s + lam * s * s / (2 * (1 - lam * s))  # noqa: E731 (us, per us)
    assert by == pytest.approx({"f": (md1(0.075, 2) + md1(0.075, 6)) / 2, "f/c0": md1(0.075, 2),
                                "f/c1": md1(0.075, 6)})


def test_a_tenants_flow_keeps_its_p999_in_batch_means() -> None:
    # tenants' flows are named TENANT/FLOW: only a flow's classes go without a p99.9 (a
    # review found every tenant flow's p99.9 dropped)
    spec = {"experiment": {"host": "xeon-2017", "architecture": "sriov", "duration_s": 0.02, "warmup_s": 0.002,
                           "tenants": [{"name": "a", "vcpus": 4, "workload": "kv-cache"},
                                       {"name": "b", "vcpus": 4, "workload": "cloud-mix"}]}}
    bm = long_run(load_experiment(spec), n_batches=5, windows_per_batch=2)
    assert {"a/gets.p999_us", "b/mix.p999_us", "b/mix/kv.p99_us"} <= set(bm)
    assert "b/mix/kv.p999_us" not in bm


def test_batch_histograms_are_summed_as_they_come() -> None:
    # long_run reads histograms only per batch: window_series sums each batch's windows as it
    # goes (a review measured 2.6 GB for 16 tenants' classes kept window by window); the
    # batches' percentiles are the same either way
    from emulator.stats import window_series

    exp = load_experiment(_two_classes(0.05))
    per_window = window_series(exp, window_s=0.005, n_windows=10, classes=True)
    per_batch = window_series(exp, window_s=0.005, n_windows=10, classes=True, hist_every=2)
    for name in ("f", "f/short", "f/long"):
        assert per_window.hists[name].shape == (10, per_window.hists[name].shape[1])
        assert per_batch.hists[name].shape[0] == 5
        assert np.array_equal(per_window.hists[name].reshape(5, 2, -1).sum(axis=1), per_batch.hists[name])
        assert np.array_equal(per_window.maxes[name].reshape(5, 2).max(axis=1), per_batch.maxes[name])
    assert per_batch.classes == {"f/short", "f/long"}
    assert not window_series(exp, window_s=0.005, n_windows=10).classes  # only when asked


def test_flow_and_class_names_may_not_contain_a_slash() -> None:
    spec = _two_classes(0.05)
    spec["workload"]["flows"][0]["name"] = "a/b"
    with pytest.raises(ModelError, match=r"workload.flows\[0\].name: 'a/b' must not contain '/'"):
        load_experiment(spec)
    spec = _two_classes(0.05)
    spec["workload"]["flows"][0]["mix"][0]["name"] = "x/y"
    with pytest.raises(ModelError, match=r"mix\[0\].name: 'x/y' must not contain '/'"):
        load_experiment(spec)


def test_compare_keeps_a_class_p99_that_some_run_lacks() -> None:
    # a rare class completes nothing in some runs: its p99 is NaN there, but the row stays (a
    # review found it dropped whenever the first run of a side had none)
    from emulator.compare import compare

    spec = _two_classes(0.002, rate=2e4)
    spec["workload"]["flows"][0]["mix"][1]["weight"] = 3e-3
    exp = load_experiment(spec)
    c = compare(exp, exp, 4, seed0=9, workers=1)
    keys = set(c.to_dict()["measures"])
    assert {"f/long.mean_us", "f/long.p99_us", "f/short.p99_us"} <= keys


def test_without_class_histograms_batches_still_give_class_means(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(M, "CLASS_HIST_CLASSES", 1)
    bm = long_run(load_experiment(_two_classes(0.05)), n_batches=5, windows_per_batch=2)
    assert {"f/short.mean_us", "f/long.mean_us"} <= set(bm) and "f/short.p99_us" not in bm


def test_class_latency_figure_claims_hold() -> None:
    # results/class-latency.png on its quick design (one replication): a small I/O-heavy
    # request pays the virtualisation tax out of proportion, a compute-heavy one hardly: under
    # every virtualised architecture a kv get's mean latency rises more against bare metal's
    # than a compute call's, and bare metal is the reference (1.0)
    from emulator.experiments.figures import class_latency

    rows = {(r["architecture"], r["class"]): r for r in class_latency(quick=True, workers=1, replications=1)}
    archs = {a for a, _ in rows}
    assert {"bare-metal", "nitro", "sriov", "kvm-virtio", "xen-pv", "emulated"} <= archs
    assert all(r["mean_vs_bare_metal"] == 1.0 for (a, _), r in rows.items() if a == "bare-metal")
    for a in archs - {"bare-metal"}:
        assert rows[a, "kv"]["mean_vs_bare_metal"] > rows[a, "compute"]["mean_vs_bare_metal"] >= 0.97, a  # (one replication: ~1% noise)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_engine import engine_of, valid_specs  # noqa: E402


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(spec=valid_specs(), seed=st.integers(0, 2**32), hist=st.booleans())
def test_the_classes_account_for_every_flows_latency(spec: Spec, seed: int, hist: bool) -> None:
    # Random small specs (shared classes, forks, batches, throttles, drops): every completed
    # request of a flow adds its latency to its class as to its flow, a detached one to
    # neither, so over all classes the sums, the maxima and (with class histograms) the
    # histograms equal the flows'. The sums agree to float rounding (1e-9 relative).
    eng = engine_of(dataclasses.replace(spec, class_histograms=hist), seed)
    if eng is None:
        return
    with eng:
        try:
            eng.run(10**9, 1_000_000)
        except NativeError:
            return  # an open flow outran the pool: a clean error, tested elsewhere
        s = eng.stats()
    assert float(s["class_latency_sum"].sum()) == pytest.approx(float(s["flow_latency_sum"].sum()), rel=1e-9, abs=1e-3)
    assert int(s["class_latency_max"].max(initial=0)) == int(s["flow_latency_max"].max(initial=0))
    if hist:
        assert np.array_equal(s["class_hist"].sum(axis=0), s["flow_hist"].sum(axis=0))
    else:
        assert "class_hist" not in s


def test_a_sweep_tabulates_each_class(tmp_path: Any) -> None:
    # a sweep's table and summary carry FLOW/CLASS columns (completed, mean, p99), the p99
    # pooled over a point's replications and judged by the class's own completions
    from emulator.provenance import read_csv
    from emulator.sweep import sweep

    sweep(_two_classes(0.02), vary={"workload.flows.0.rate_per_s": [5e4, 1e5]}, replications=2, workers=1,
          cache=None, out=tmp_path / "s.csv")
    header, rows, _ = read_csv(tmp_path / "s.csv")
    assert {"f/short.completed", "f/short.mean_us", "f/short.p99_us", "f/long.mean_us"} <= set(header)
    assert header.index("f/short.completed") > header.index("f.p999_us")  # right after their flow
    for r in rows:
        assert int(r["f/short.completed"]) + int(r["f/long.completed"]) == int(r["f.completed"])
    header, rows, _ = read_csv(tmp_path / "s-summary.csv")
    assert {"f/long.p99_us_ci95", "f/long.p99_us_thin_tail", "f/long.p99_us_biased"} <= set(header)
    assert all(float(r["f/long.mean_us"]) > float(r["f/short.mean_us"]) for r in rows)



def test_argument_errors_name_the_argument_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from emulator.compare import compare

    exp = load_experiment(_two_classes(0.005))
    for call, key in ((lambda: replicate(exp, replications=1), "replications"), (lambda: replicate(exp, 1), "n"),
                      (lambda: replicate(exp, 2, seed=-1), "seed"), (lambda: compare(exp, exp, replications=1), "replications"),
                      (lambda: compare(exp, exp, 2, seed=-1), "seed"), (lambda: compare(exp, exp), "n")):
        with pytest.raises(ModelError) as e:
            call()
        assert e.value.key == key, (key, str(e.value))


def test_a_sweep_without_class_histograms_has_no_class_p99_column(tmp_path: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from emulator.provenance import read_csv
    from emulator.sweep import sweep

    monkeypatch.setattr(M, "CLASS_HIST_CLASSES", 1)
    sweep(_two_classes(0.01), vary={"workload.flows.0.rate_per_s": [5e4, 1e5]}, replications=1, workers=1,
          cache=None, out=tmp_path / "s.csv")
    header, _, _ = read_csv(tmp_path / "s.csv")
    assert "f/short.mean_us" in header and "f/short.p99_us" not in header
