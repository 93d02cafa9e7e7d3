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
