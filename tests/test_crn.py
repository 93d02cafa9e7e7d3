"""Common random numbers that survive a change of timing.

The engine keys every draw by the request that makes it and the stage's tag (vemu.h,
Randomness): the k-th request of a flow draws the same class, sizes and service times in
two runs with one seed, at every stage that stands in the same place of the workload,
however differently the two runs order their events. These tests check that property
exactly (request for request, from traces), where it holds across a changed cost and
across two architectures, and that the draws keyed this way are still independent and
correctly distributed.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator._core import Engine, NativeError, Spec
from emulator.compare import compare
from emulator.model import compile_experiment, load_experiment
from emulator.simulation import Simulation


def _stations(dists: list[dict[str, Any]], units: list[int], rate: float, *, seed: int = 3) -> dict[str, Any]:
    """Poisson arrivals through stations s0, s1, ... in series (1 GHz: cycles are ns)."""
    return {
        "host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
        "architecture": {
            "name": "line",
            "resources": {f"s{i}": {"kind": "cpu", "cores": u, "ghz": 1.0, "on_host": False}
                          for i, u in enumerate(units)},
            "paths": {"p": {"stages": [{"name": f"station {i}", "on": f"s{i}", "cycles": d}
                                       for i, d in enumerate(dists)]}},
        },
        "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": rate,
                                             "steps": [{"path": "p"}]}]},
        "experiment": {"duration_s": 0.01, "warmup_s": 0.0, "seed": seed},
    }


def _services(spec: dict[str, Any], n: int, classes: dict[int, str] | None = None) -> dict[tuple[int, str], int]:
    """(request, stage name) -> its service time in ps, for the first n requests (with
    ``classes``, also filled with each request's class)."""
    exp = load_experiment(spec)
    res = Simulation(exp, trace_requests=n).run()
    info = res.compiled.stages
    t = res.trace
    assert len(t) > 0 and not t["preempted"].any()
    if classes is not None:
        classes.update({int(r["request"]): info[int(r["stage"])].request_class for r in t})
    return {(int(r["request"]), info[int(r["stage"])].name): int(r["end"]) - int(r["start"]) for r in t}


def test_one_changed_cost_leaves_every_other_draw() -> None:
    # tandem-3 (../shared/bench: exponential stations of 0.5, 0.7 and 0.9 ms at 800/s);
    # station 2 made 0.85 ms. Its queue, and so the order of every later event, changes;
    # each request's services at stations 0 and 1 must not, and at station 2 each is the
    # same draw scaled by 0.85/0.9 (to the picosecond the engine rounds to).
    ms = [{"dist": "exp", "mean": m} for m in (500_000, 700_000, 900_000)]
    a = _stations(ms, [1, 1, 1], 800)
    b = copy.deepcopy(a)
    b["architecture"]["paths"]["p"]["stages"][2]["cycles"]["mean"] = 850_000
    a["experiment"]["duration_s"] = b["experiment"]["duration_s"] = 3.0
    sa, sb = _services(a, 2000), _services(b, 2000)
    assert sa.keys() == sb.keys() and len(sa) > 5000
    for (req, stage), x in sa.items():
        y = sb[(req, stage)]
        if stage == "station 2":
            assert abs(y - x * 0.85 / 0.9) <= 1.0
        else:
            assert y == x
    # and the queue at station 2 did change the timing: requests leave it in other order
    # or at other times (else this test would show nothing)
    exp = load_experiment(a), load_experiment(b)
    ends = [Simulation(e, trace_requests=2000).run().trace for e in exp]
    assert not np.array_equal(ends[0]["end"], ends[1]["end"])


_DISTS = st.one_of(
    st.builds(lambda m: {"dist": "exp", "mean": m}, st.integers(500, 5000)),
    st.builds(lambda m, cv: {"dist": "lognormal", "mean": m, "cv": cv}, st.integers(500, 5000),
              st.floats(0.1, 2.0)),
    st.builds(lambda m, cv: {"dist": "uniform", "mean": m, "cv": cv}, st.integers(500, 5000),
              st.floats(0.0, 0.57)),
)


@settings(max_examples=25, deadline=None)
@given(dists=st.lists(_DISTS, min_size=2, max_size=4), data=st.data())
def test_draws_follow_the_request_not_the_order_of_events(dists: list[dict[str, Any]], data: Any) -> None:
    # Any line of 2-4 stations (1-3 servers each, so requests overtake one another) at a
    # random load; one station's mean scaled by f. Every request's draw at every other
    # station is the same in both runs, and at the scaled one f times it.
    n = len(dists)
    units = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    j = data.draw(st.integers(0, n - 1))
    f = data.draw(st.sampled_from([0.5, 0.8, 1.25, 2.0]))
    busiest = max(d["mean"] / u for d, u in zip(dists, units)) * max(f, 1.0)  # ns per request
    rate = data.draw(st.floats(0.2, 0.9)) / busiest * 1e9
    seed = data.draw(st.integers(1, 2**32))
    a = _stations(dists, units, rate, seed=seed)
    b = copy.deepcopy(a)
    b["architecture"]["paths"]["p"]["stages"][j]["cycles"]["mean"] *= f
    sa, sb = _services(a, 300), _services(b, 300)
    common = sa.keys() & sb.keys()
    assert len(common) >= 0.5 * min(len(sa), len(sb))  # the same requests got this far in both
    for (req, stage), x in ((k, sa[k]) for k in common):
        y = sb[(req, stage)]
        if stage == f"station {j}":
            assert abs(y - f * x) <= 1.0 + 1e-9 * x
        else:
            assert y == x


def _two_architectures() -> tuple[dict[str, Any], dict[str, Any]]:
    """One workload (two classes, random sizes, the tenant's random work, an SSD read) on two
    architectures whose paths differ in length, in stage names and in costs."""
    host = {"name": "h", "cores": 4, "ghz": 2.0, "memory_gib": 8,
            "devices": {"ssd": {"kind": "server", "servers": 4,
                                "service_us": {"dist": "lognormal", "mean": 50, "cv": 0.5}}}}
    workload = {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 20000, "mix": [
        {"name": "small", "weight": 3, "steps": [
            {"path": "io", "bytes": {"dist": "exp", "mean": 2000}},
            {"on": "vcpu", "cycles": {"dist": "exp", "mean": 20000}}]},
        {"name": "big", "weight": 1, "steps": [
            {"path": "io", "bytes": {"dist": "uniform", "mean": 60000, "cv": 0.5}},
            {"on": "vcpu", "cycles": {"dist": "lognormal", "mean": 50000, "cv": 1.0}}]},
    ]}]}
    a = {"host": host, "workload": workload, "experiment": {"duration_s": 0.05, "warmup_s": 0.0, "seed": 9},
         "architecture": {"name": "plain", "paths": {"io": {"stages": [
             {"name": "copy in", "on": "vcpu", "per_byte": 0.5, "account": "copy"},
             {"name": "nvme read", "on": "ssd"}]}}}}
    b = copy.deepcopy(a)
    b["architecture"] = {"name": "split", "reserve": {"cores": 1}, "resources": {
        "dom0": {"kind": "cpu", "cores": 1, "ghz": 2.0}}, "paths": {"io": {"stages": [
            {"name": "exit", "on": "vcpu", "cycles": {"dist": "exp", "mean": 3000}, "account": "exit"},
            {"name": "backend", "on": "dom0", "cycles": 4000, "account": "backend"},
            {"name": "copy in", "on": "vcpu", "per_byte": 0.5, "account": "copy"},
            {"name": "NVMe read (dom0's driver)", "on": "ssd"}]}}}
    return a, b


def test_two_architectures_share_classes_sizes_work_and_devices() -> None:
    # The k-th request has the same class in both, the same bytes (seen through the copy's
    # per-byte time), the same SSD read (the device's draw, whatever the stage is called)
    # and the same tenant work, though B adds an exit and a dom0 back end before them.
    a, b = _two_architectures()
    ca: dict[int, str] = {}
    cb: dict[int, str] = {}
    sa, sb = _services(a, 400, ca), _services(b, 400, cb)
    assert ca == cb and len(ca) == 400
    for req in ca:
        assert sa[(req, "copy in")] == sb[(req, "copy in")]  # its class's bytes
        assert sa[(req, "nvme read")] == sb[(req, "NVMe read (dom0's driver)")]
        tenant = [k for k in sa if k[0] == req and k[1] not in ("copy in", "nvme read")]
        assert len(tenant) == 1 and sa[tenant[0]] == sb[tenant[0]]
    # both classes were drawn (weights 3:1), the bytes of each from its own distribution
    big = [sa[(r, "copy in")] for r, c in ca.items() if c == "big"]
    small = [sa[(r, "copy in")] for r, c in ca.items() if c == "small"]
    assert 60 < len(big) < 140 and min(big) >= 0.5 * 500 * 60000 * (1 - math.sqrt(3) * 0.5) - 1
    assert np.mean(small) == pytest.approx(0.5 * 500 * 2000, rel=0.2)


def test_crn_pays_when_one_station_of_a_line_changes() -> None:
    # tandem-3 with its last station 0.85 ms (theory: mean sojourn 5.6385 -> 5.0804 ms,
    # -558.0 us). Paired on request-keyed draws, 10 replications of 2 s must estimate the
    # change at least 3x more precisely than 10 independent ones (an interval 3x narrower:
    # 9x fewer runs for the same precision; measured 5.5x, 4.2x and 3.8x for seed0 1, 2, 3,
    # against 2.1x, 1.5x and 1.6x when each flow drew all its services from one stream, which
    # fell out of step at the first changed service), and cover the theory.
    ms = [{"dist": "exp", "mean": m} for m in (500_000, 700_000, 900_000)]
    a = _stations(ms, [1, 1, 1], 800)
    a["experiment"].update(duration_s=2.0, warmup_s=0.2)
    b = copy.deepcopy(a)
    b["architecture"]["paths"]["p"]["stages"][2]["cycles"]["mean"] = 850_000
    ea, eb = load_experiment(a), load_experiment(b)
    crn = compare(ea, eb, 10, seed0=1, workers=2).difference("f.mean_us")
    ind = compare(ea, eb, 10, seed0=1, workers=2, crn=False).difference("f.mean_us")
    assert crn.diff.half_width * 3 < ind.diff.half_width
    truth = (0.85 / (1 - 0.8 * 0.85) - 0.9 / (1 - 0.8 * 0.9)) * 1e3
    assert truth == pytest.approx(-558.04, abs=0.01) and crn.diff.covers(truth)


def _engine_spec(tags: list[tuple[int, int]]) -> Spec:
    exp_draw = ("exp", 1000.0, 0.0)
    none = ("fixed", 0.0, 0.0)
    stages = [(0, 0, exp_draw, 0.0, none, True, ("exp", 100.0, 0.0), 0, None, t) for t in tags]
    return Spec([(1, -1)], [(0, 0, 1)], stages, [(0, len(stages), 1.0)],
                [(False, ("exp", 5000.0, 0.0), 0, none, 0, 1)], 1, 64)


def test_stages_must_have_tags_of_their_own() -> None:
    # two stages of one tag would draw the same numbers for every request passing both
    Engine(_engine_spec([(1, 1), (2, 2)]), seed=1)
    Engine(_engine_spec([(1, 2), (2, 1)]), seed=1)  # a tag and a bytes tag may coincide
    with pytest.raises(NativeError, match=r"stages 0 and 1 share the tag 0x7"):
        Engine(_engine_spec([(7, 1), (7, 2)]), seed=1)
    with pytest.raises(NativeError, match=r"stages 0 and 2 share the bytes_tag"):
        Engine(_engine_spec([(1, 5), (2, 6), (3, 5)]), seed=1)


def test_the_compiler_gives_every_stage_its_own_tags() -> None:
    # over the bundled models' largest expansion: every tag distinct, and the bytes tags of
    # the stages that draw bytes distinct
    for arch in ("xen-pv", "kvm-virtio", "nitro"):
        exp = load_experiment(host="xeon-2017", architecture=arch, workload="cloud-mix")
        rows = compile_experiment(exp).spec.stages
        tags = [r[9][0] for r in rows]
        btags = [r[9][1] for r in rows if r[5]]
        assert len(set(tags)) == len(tags) and len(set(btags)) == len(btags) and len(btags) > 10


def test_keyed_draws_are_independent_and_distributed_as_asked() -> None:
    # 10^5 requests through three pure delays (exponential, lognormal cv 1, uniform cv 0.5),
    # each delay a draw from its own request-keyed stream. Each must pass a KS test against
    # its distribution (p > 1e-3, as tests/test_rng.py), and the draws must be uncorrelated
    # between stages of one request and between consecutive requests at one stage: under
    # independence each sample correlation is ~N(0, 1/n), so |r| < 4/sqrt(n) = 0.0126
    # fails a correct engine with probability ~6e-5 per coefficient.
    from test_rng import ks_p, _erf

    n = 100_000
    spec = {
        "host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
        "architecture": {"name": "d", "paths": {"p": {"stages": [
            {"name": "e", "delay_us": {"dist": "exp", "mean": 1.0}},
            {"name": "l", "delay_us": {"dist": "lognormal", "mean": 1.0, "cv": 1.0}},
            {"name": "u", "delay_us": {"dist": "uniform", "mean": 1.0, "cv": 0.5}}]}}},
        "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 1e6,
                                             "steps": [{"path": "p"}]}]},
        "experiment": {"duration_s": 0.2, "warmup_s": 0.0, "seed": 4},
    }
    res = Simulation(load_experiment(spec), trace_requests=n).run()
    t = res.trace
    d = np.zeros((3, n))
    d[t["stage"], t["request"]] = (t["leave"] - t["end"]) / 1e6  # µs, rounded to the ps
    assert (d > 0).all()
    s2 = math.log(2.0)
    mu = -s2 / 2
    half = math.sqrt(3) * 0.5
    assert ks_p(d[0], lambda v: 1 - np.exp(-v)) > 1e-3
    assert ks_p(d[1], lambda v: 0.5 * (1 + _erf((np.log(v) - mu) / math.sqrt(2 * s2)))) > 1e-3
    assert ks_p(d[2], lambda v: np.clip((v - (1 - half)) / (2 * half), 0, 1)) > 1e-3
    bound = 4 / math.sqrt(n)
    r = np.corrcoef(d)
    assert abs(r[0, 1]) < bound and abs(r[0, 2]) < bound and abs(r[1, 2]) < bound
    for row in d:
        assert abs(np.corrcoef(row[:-1], row[1:])[0, 1]) < bound


def test_a_steps_count_leaves_the_later_steps_draws() -> None:
    # sweeping a path step's `count` adds stages to every request; the steps after it keep
    # their tags (a step's place is its place in the class's list, its repetitions apart), so
    # the k-th request's later draws stay the same at every count
    def tags(count: int) -> dict[str, int]:
        spec = _stations([{"dist": "exp", "mean": 1000}], [1], 1000)
        spec["workload"]["flows"][0]["steps"] = [{"path": "p", "count": count},
                                                 {"name": "app", "on": "s0", "cycles": {"dist": "exp", "mean": 500}}]
        c = compile_experiment(load_experiment(spec))
        return {f"{s.name}#{i}": row[9][0] for i, (s, row) in enumerate(zip(c.stages, c.spec.stages))}

    one, three = tags(1), tags(3)
    assert len(three) == 4 and one["station 0#0"] == three["station 0#0"]
    assert one["app#1"] == three["app#3"] and len(set(three.values())) == 4
