"""Idle states (C-states): a core that has nothing to do sleeps, and a request that finds it
asleep waits out the exit latency of the state it chose.

The governor: a unit going idle takes the deepest state whose target residency its
previous idle period reaches (the shallowest at least). Checked against

* exact arithmetic under periodic arrivals (every packet finds the core in the same state);
* the M/G/1 queue with setup times (Welch 1964; Takagi 1991): under Poisson arrivals an
  idle period is Exp(lambda) and independent of what follows, so the setups (exit
  latencies) are i.i.d. with known probabilities and the mean wait is
  P-K + (2 E[D] + lambda E[D^2]) / (2 (1 + lambda E[D])), the idle fraction
  (1 - rho) / (1 + lambda E[D]) and the wake-up rate lambda (1 - rho) / (1 + lambda E[D]);
* the engine's own accounting (wake time = wake-ups x exit latency, host cycles sum to 1).
"""

from __future__ import annotations

import math

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import theory
from emulator._core import Engine, ModelError, NativeError, ffi, lib
from emulator.model import load_experiment
from emulator.simulation import Simulation

# intel_idle's Broadwell table (intel-idle-bdw): exit latency / target residency, us
BDW = [("C1", 2.0, 2.0), ("C1E", 10.0, 20.0), ("C3", 40.0, 100.0), ("C6", 133.0, 400.0)]
SERVICE_US = 1.0  # 1000 cycles at 1 GHz


def spec(rate: float, arrival: str = "poisson", *, states=BDW, cores: int = 1, duration: float = 1.0,
         seed: int = 1, cycles: float = 1000.0, halt_poll_us: float = 0.0) -> dict:
    host = {"name": "h", "cores": cores, "ghz": 1.0, "memory_gib": 1}
    if states is not None:
        host["idle_states"] = [{"name": n, "exit_us": e, "residency_us": r} for n, e, r in states]
    if halt_poll_us:
        host["halt_poll_us"] = halt_poll_us
    return {
        "host": host,
        "architecture": {"name": "a", "paths": {"rx": {"stages": [{"name": "handle", "on": "vcpu", "cycles": cycles}]}}},
        "workload": {"name": "w", "flows": [{"name": "pkts", "arrival": arrival, "rate_per_s": rate,
                                             "steps": [{"path": "rx"}]}]},
        "experiment": {"duration_s": duration, "warmup_s": duration / 10, "seed": seed},
    }


def run(doc: dict) -> dict:
    res = Simulation(load_experiment(doc)).run()
    d = res.to_dict()
    d["host_cycles"] = res.host_cycles()  # unrounded
    return d


# periodic arrivals: period -> the state the core settles in. The idle period is the period
# less the exit latency and the service, so each period is chosen inside one state's band.
@pytest.mark.parametrize("period_us,state", [(4, "C1"), (50, "C1E"), (150, "C3"), (1000, "C6")])
def test_periodic_packets_each_wait_the_exit_of_the_deepest_state_that_fits(period_us, state):
    exit_us = {n: e for n, e, _ in BDW}[state]
    d = run(spec(1e6 / period_us, "periodic", duration=0.2))
    lat = d["flows"]["pkts"]["latency_us"]
    assert lat["mean"] == pytest.approx(exit_us + SERVICE_US, rel=1e-9)
    assert lat["max"] == pytest.approx(exit_us + SERVICE_US, rel=1e-9)
    vcpu = d["resources"]["vcpu"]
    assert vcpu["wakeups"] == vcpu["served"]  # every packet finds the core asleep
    # the core's time: awake for the service, waking for the exit latency, asleep otherwise
    # (exact up to the one period the window's edges may cut)
    edge = 2 * period_us * 1e-6 / d["duration_s"]
    assert d["host_cycles"]["wake"] == pytest.approx(exit_us / period_us, rel=edge)
    assert d["host_cycles"]["tenant"] == pytest.approx(SERVICE_US / period_us, rel=edge)


def test_without_idle_states_nothing_changes():
    a = run(spec(200_000, states=None, duration=0.05))
    b = run(spec(200_000, states=[], duration=0.05))
    for d in (a, b):
        assert "wake" not in d["host_cycles"] and "wakeups" not in d["resources"]["vcpu"]
    assert a["flows"] == b["flows"] and a["host_cycles"] == b["host_cycles"]


def test_a_zero_latency_state_is_the_same_as_none():
    # a core whose only state wakes instantly behaves bit for bit like one without states
    a = run(spec(200_000, states=None, duration=0.05))
    b = run(spec(200_000, states=[("C0", 0.0, 0.0)], duration=0.05))
    assert a["flows"] == b["flows"]
    assert b["host_cycles"]["wake"] == 0.0


def _setup_theory(lam_per_us: float, states=BDW, service_us: float = SERVICE_US):
    d1, d2 = theory.setup_moments(lam_per_us, [(e, r) for _, e, r in states])
    wait = theory.setup_wait(lam_per_us, service_us, service_us**2, d1, d2)
    idle, wake_rate, _ = theory.setup_cycle(lam_per_us, service_us, d1)
    return wait + service_us, idle, wake_rate, d1


# Poisson arrivals across the table: mostly C6 (1k/s), C3/C1E mixes (20k, 60k/s), mostly C1
# and queueing behind wake-ups (300k/s, rho = 0.3). Tolerance: 5 standard errors of the mean
# over 8 independent replications (t with 7 degrees of freedom exceeds 5 with probability
# 0.16%); the seeds are fixed, so the test is deterministic.
@pytest.mark.parametrize("rate,duration", [(1_000, 4.0), (20_000, 0.5), (60_000, 0.3), (300_000, 0.1)])
def test_poisson_matches_mg1_with_setup_times(rate, duration):
    lam = rate / 1e6
    mean_t, idle_t, wake_rate_t, _ = _setup_theory(lam)
    means, idles, wakes = [], [], []
    for seed in range(1, 9):
        d = run(spec(rate, duration=duration, seed=seed))
        means.append(d["flows"]["pkts"]["latency_us"]["mean"])
        idles.append(d["host_cycles"]["idle"])
        wakes.append(d["resources"]["vcpu"]["wakeups"] / d["duration_s"])
    for name, xs, want in (("mean latency", means, mean_t), ("idle fraction", idles, idle_t),
                           ("wake-ups/s", wakes, wake_rate_t * 1e6)):
        m, se = float(np.mean(xs)), float(np.std(xs, ddof=1)) / math.sqrt(len(xs))
        assert abs(m - want) <= 5 * se + 1e-9 * abs(want), (name, m, want, se)


def test_vemu_theory_covers_a_sleeping_single_core():
    exp = load_experiment(spec(20_000))
    p = theory.predict(exp)
    assert p is not None and "setup" in p.model
    mean_t, *_ = _setup_theory(0.02)
    assert p.flows[0].mean_us == pytest.approx(mean_t, rel=1e-12)


def test_theory_says_why_it_does_not_cover_several_sleeping_cores():
    assert "no closed form for c > 1" in theory.why_not(load_experiment(spec(20_000, cores=2)))
    doc = spec(20_000)
    doc["workload"]["flows"][0]["arrival"] = "periodic"
    assert "Poisson" in theory.why_not(load_experiment(doc))


def test_the_core_idle_last_is_woken_first():
    # two cores, a packet every 250 us taking 1 us. Last idle first, one core takes them all
    # and sleeps ~249 us: C3 (residency 100 us), 40 us. Alternating cores would each sleep
    # ~500 us and wake from C6 (133 us).
    d = run(spec(4000, "periodic", cores=2, duration=0.2))
    assert d["flows"]["pkts"]["latency_us"]["mean"] == pytest.approx(40.0 + SERVICE_US, rel=1e-9)


def test_a_busy_core_is_handed_on_and_never_sleeps():
    # a closed loop with no think time keeps the one core busy: after the first request no
    # service ever begins by waking it
    doc = spec(1, duration=0.01)
    doc["workload"]["flows"][0] = {"name": "pkts", "arrival": "closed", "clients": 4, "steps": [{"path": "rx"}]}
    d = run(doc)
    assert d["resources"]["vcpu"]["wakeups"] == 0
    assert d["host_cycles"]["wake"] == 0.0 and d["host_cycles"]["tenant"] == pytest.approx(1.0)


def test_polling_and_off_host_cores_do_not_sleep():
    doc = spec(20_000, duration=0.05)
    doc["architecture"]["reserve"] = {"cores": 1}
    doc["host"]["cores"] = 2
    doc["architecture"]["resources"] = {"pmd": {"kind": "cpu", "cores": 1, "poll": True},
                                        "card": {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}}
    doc["architecture"]["paths"]["rx"]["stages"] += [{"name": "poll", "on": "pmd", "cycles": 500},
                                                      {"name": "card", "on": "card", "cycles": 500}]
    d = run(doc)
    assert "wakeups" in d["resources"]["vcpu"]
    assert "wakeups" not in d["resources"]["pmd"] and "wakeups" not in d["resources"]["card"]


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(1e3, 5e5), exits=st.lists(st.integers(0, 150_000_000).map(lambda ps: ps / 1e6),
                                                 min_size=1, max_size=4),  # us, on the engine's ps grid
       gaps=st.lists(st.floats(0, 300), min_size=4, max_size=4), cores=st.integers(1, 3),
       arrival=st.sampled_from(["poisson", "periodic"]), seed=st.integers(1, 1000),
       halt=st.sampled_from([0.0, 5.0, 50.0, 300.0]))
def test_wake_time_is_wakeups_times_their_exit_latencies(rate, exits, gaps, cores, arrival, seed, halt):
    # whatever the table, the halt-polling and the load: every request is accounted for, host
    # cycles sum to 1, and the wake time lies between the wake-ups times the shortest and the
    # longest exit latency
    res = np.cumsum(gaps[: len(exits)]).tolist()
    states = [(f"C{i}", e, r) for i, (e, r) in enumerate(zip(exits, res))]
    d = run(spec(rate, arrival, states=states, cores=cores, duration=0.01, seed=seed, halt_poll_us=halt))
    if not halt:
        assert d["host_cycles"].get("poll", 0.0) == 0.0
    assert math.isclose(sum(d["host_cycles"].values()), 1.0, rel_tol=1e-9)
    f = d["flows"]["pkts"]
    assert f["dropped"] == 0
    wakeups = d["resources"]["vcpu"]["wakeups"]
    assert wakeups <= d["resources"]["vcpu"]["served"]
    wake_us = d["host_cycles"]["wake"] * cores * d["duration_s"] * 1e6
    # a wake-up straddling the window's edges counts in one window only: one exit each side
    slack = 2 * max(exits) + 1e-6
    assert min(exits) * wakeups - slack <= wake_us <= max(exits) * wakeups + slack


def _model(resources, states, n_categories=1):
    """A raw engine model whose single stage runs on resource 0."""
    keep = []
    res = ffi.new("vemu_resource_spec[]", len(resources))
    for i, (units, first, n, wake) in enumerate(resources):
        res[i].units, res[i].capacity, res[i].idle_first, res[i].n_idle, res[i].wake_category = units, -1, first, n, wake
    ids = ffi.new("vemu_idle_state[]", max(1, len(states)))
    for i, (e, r) in enumerate(states):
        ids[i].exit, ids[i].residency = e, r
    qc = ffi.new("vemu_qclass_spec[]", 1)
    qc[0].batch = 1
    stg = ffi.new("vemu_stage_spec[]", 1)
    stg[0].work.mean = 1e6
    cl = ffi.new("vemu_class_spec[]", 1)
    cl[0].n_stages, cl[0].weight = 1, 1.0
    fl = ffi.new("vemu_flow_spec[]", 1)
    fl[0].interarrival.kind, fl[0].interarrival.mean = lib.VEMU_DIST_EXP, 1e7
    m = ffi.new("vemu_model *")
    m.n_resources, m.n_qclasses, m.n_stages, m.n_classes, m.n_flows = len(resources), 1, 1, 1, 1
    m.n_categories, m.pool_size = n_categories, 64
    m.resources, m.qclasses, m.stages, m.classes, m.flows = res, qc, stg, cl, fl
    m.n_idle_states, m.idle_states = len(states), (ids if states else ffi.NULL)
    keep += [res, ids, qc, stg, cl, fl]
    return m, keep


@pytest.mark.parametrize("resources,states,words", [
    ([(1, 1, 1, 0)], [(1, 1)], "out of range"),          # idle_first past the table
    ([(1, 0, 2, 0)], [(1, 1)], "out of range"),          # n_idle past the table
    ([(1, 0, 1, 3)], [(1, 1)], "wake category"),
    ([(1, 0, 65, 0)], [(1, 1)] * 65, "at most 64"),
    ([(1, 0, 1, 0)], [], "out of range"),                # states promised, none given
])
def test_the_engine_rechecks_idle_states(resources, states, words):
    m, keep = _model(resources, states)
    out = ffi.new("vemu_sim **")
    err = ffi.new("char[]", 256)
    assert lib.vemu_sim_create(m, 1, out, err, 256) == lib.VEMU_EINVAL
    assert words in ffi.string(err).decode()
    assert out[0] == ffi.NULL


def test_the_engine_refuses_idle_states_given_as_null():
    m, keep = _model([(1, 0, 0, 0)], [])
    m.n_idle_states = 1
    m.idle_states = ffi.NULL
    out = ffi.new("vemu_sim **")
    err = ffi.new("char[]", 256)
    assert lib.vemu_sim_create(m, 1, out, err, 256) == lib.VEMU_EINVAL
    assert "NULL" in ffi.string(err).decode()


def test_engine_spec_rows_carry_idle_states():
    from emulator._core import Spec
    stage = (0, 0, ("fixed", 1e6, 0.0), 0.0, ("fixed", 0.0, 0.0), False, ("fixed", 0.0, 0.0))
    flow = (False, ("fixed", 1e8, 0.0), 0, ("fixed", 0.0, 0.0), 0, 1)  # one request every 100 us
    s = Spec([(1, -1, ((2_000_000, 2_000_000), (40_000_000, 50_000_000)), 1)], [(0, 0, 1)], [stage], [(0, 1, 1.0)],
             [flow], 2, 8)
    with Engine(s, seed=1) as e:
        # ten requests 100 us apart, the last at 1 ms: the first wakes from the shallowest state
        # (no history), the others from the deep one (each idle ~59-100 us, residency 50 us)
        e.run(1_050_000_000)
        st_ = e.stats()
    assert int(st_["resource_wakeups"][0]) == 10
    assert st_["resource_busy_area"][0][1] == pytest.approx(2e6 + 9 * 40e6)
    with pytest.raises(NativeError):
        Engine(Spec([(1, -1, ((5, 9), (5, 1)), 1)], [(0, 0, 1)], [stage], [(0, 1, 1.0)], [flow], 2, 8), seed=1)


def test_the_teaching_example_stays_covered_by_theory():
    from conftest import REPO
    exp = load_experiment(REPO / "examples" / "idle-states.toml")
    pred, why = theory.analyse(exp)
    assert pred is not None, why
    mean_t, *_ = _setup_theory(0.02, service_us=1.0)
    assert pred.flows[0].mean_us == pytest.approx(mean_t + 2.0, rel=1e-12)  # + the 2 us wire


def test_polling_vs_interrupts_figure_claims_hold():
    # results/polling-vs-interrupts.png on its full design with 8 replications (each point is
    # 20,000 Poisson packets; the whole design runs in about a second).
    # Theory: within 5 standard errors of the replications' mean (t with 7 degrees of
    # freedom exceeds 5 with probability 0.16% per point) plus 1% for treating the core's
    # arrivals as Poisson although the wire ahead of it (at most 7% loaded) spaces them.
    from emulator.experiments.figures import WAKE_RATES, wakeups
    from emulator.stats import t_quantile

    rows = wakeups(workers=2, replications=8)
    t = t_quantile(0.975, 7)
    by = {(r["path"], r["packets_per_s"]): r for r in rows}
    for r in rows:
        se = r["mean_us_ci"] / t
        assert abs(r["mean_us"] - r["theory_mean_us"]) <= 5 * se + 0.01 * r["theory_mean_us"], r
    xdp = [by[("xdp_irq", x)] for x in WAKE_RATES]
    dpdk = [by[("dpdk_poll", x)] for x in WAKE_RATES]
    # polling: the DPDK core is never free, whatever the rate
    assert all(r["work_share"] + r["poll_share"] == pytest.approx(1.0, abs=1e-6) for r in dpdk)
    assert all(r["wake_share"] == 0 for r in dpdk)
    # interrupts: slower than polling at every rate, the gap closing as the core sleeps less
    assert all(a["mean_us"] > 10 * b["mean_us"] for a, b in zip(xdp, dpdk))
    assert [r["mean_us"] for r in xdp] == sorted((r["mean_us"] for r in xdp), reverse=True)
    assert [r["woken_fraction"] for r in xdp] == sorted((r["woken_fraction"] for r in xdp), reverse=True)
    assert xdp[0]["mean_us"] > 80 and xdp[-1]["mean_us"] < 1.2
    # halt-polling 200 us: between the two, and once packets come more often than every
    # ~200 us it answers nearly as fast as polling, at nearly polling's price in core time
    halt = [by[("xdp_haltpoll", x)] for x in WAKE_RATES]
    assert all(b["mean_us"] < h["mean_us"] < a["mean_us"] for a, h, b in zip(xdp, halt, dpdk))
    fast = [h for h in halt if h["packets_per_s"] >= 1e5]
    assert all(h["mean_us"] < 0.1 and h["wake_share"] < 1e-3 for h in fast)
    assert all(h["work_share"] + h["wake_share"] + h["poll_share"] > 0.99 for h in fast)
    assert halt[0]["poll_share"] < 0.3  # at 1,000 packets/s it mostly sleeps


@given(lam=st.floats(1e-6, 10), res=st.lists(st.floats(0, 1e3), min_size=1, max_size=6))
def test_idle_state_probabilities_are_a_distribution(lam, res):
    res = sorted(res)
    p = theory.idle_state_probabilities(lam, res)
    assert len(p) == len(res) and all(x >= -1e-15 for x in p)
    assert sum(p) == pytest.approx(1.0, abs=1e-12)


def test_setup_wait_limits():
    # no setup: Pollaczek-Khinchine; a vanishing arrival rate: an isolated arrival waits the
    # whole setup and nothing else
    assert theory.setup_wait(0.3, 1.0, 2.0, 0.0, 0.0) == pytest.approx(theory.mg1_wait(0.3, 1.0, 2.0))
    assert theory.setup_wait(1e-9, 1.0, 1.0, 7.0, 49.0) == pytest.approx(7.0, rel=1e-6)
    with pytest.raises(Exception):
        theory.setup_wait(0.1, 1.0, 1.0, 5.0, 1.0)  # E[D^2] < E[D]^2
    with pytest.raises(Exception):
        theory.idle_state_probabilities(0.1, [5.0, 1.0])  # not shallowest first



# ----------------------------------------------------------------------------- halt-polling

@pytest.mark.parametrize("period_us,poll_us,exit_us", [
    (150, 200, 0.0),   # the poll outlasts every idle period: never asleep, no wake-up
    (150, 60, 40.0),   # polls 60 us, then sleeps in C3 (its idle periods, ~109 us, reach 100)
    (1000, 200, 133.0),  # polls 200 us, then C6
])
def test_periodic_packets_with_halt_polling(period_us, poll_us, exit_us):
    d = run(spec(1e6 / period_us, "periodic", duration=0.3, halt_poll_us=poll_us))
    lat = d["flows"]["pkts"]["latency_us"]
    assert lat["mean"] == pytest.approx(exit_us + SERVICE_US, rel=1e-9)
    edge = 2 * period_us * 1e-6 / d["duration_s"]
    idle_us = period_us - exit_us - SERVICE_US
    assert d["host_cycles"]["poll"] == pytest.approx(min(poll_us, idle_us) / period_us, rel=edge)
    assert d["host_cycles"]["wake"] == pytest.approx(exit_us / period_us, rel=edge, abs=1e-12)
    vcpu = d["resources"]["vcpu"]
    assert vcpu["wakeups"] == (vcpu["served"] if exit_us else 0)
    # polling serves no one: it is not in the utilization (which counts work and waking, as
    # a polling resource's idle polls are not; a 100%-polling core read 100% busy and was
    # named the bottleneck), but a share of its own, the host's poll share on one core
    assert vcpu["utilization"] == pytest.approx((exit_us + SERVICE_US) / period_us, rel=edge)
    assert vcpu["polling"] == pytest.approx(d["host_cycles"]["poll"], rel=1e-12)


# Poisson arrivals with a 20 us or 200 us poll: the M/G/1-with-setup forms with
# E[D] = e^(-lambda H) E[exit] (a wake-up only when the idle period outlasts the poll) and
# the poll's share E[min(I, H)] / E[cycle]. Tolerance as above: 5 standard errors over 8
# replications.
@pytest.mark.parametrize("rate,poll_us", [(20_000, 20.0), (60_000, 20.0), (5_000, 200.0)])
def test_poisson_with_halt_polling_matches_theory(rate, poll_us):
    lam = rate / 1e6
    d1, d2 = theory.setup_moments(lam, [(e, r) for _, e, r in BDW], poll_us)
    mean_t = theory.setup_wait(lam, SERVICE_US, SERVICE_US**2, d1, d2) + SERVICE_US
    _asleep, wake_t, poll_t = theory.setup_cycle(lam, SERVICE_US, d1, poll_us)
    means, wakes, polls = [], [], []
    for seed in range(1, 9):
        d = run(spec(rate, duration=0.5, seed=seed, halt_poll_us=poll_us))
        means.append(d["flows"]["pkts"]["latency_us"]["mean"])
        wakes.append(d["resources"]["vcpu"]["wakeups"] / d["duration_s"] / 1e6)
        polls.append(d["host_cycles"]["poll"])
    for name, xs, want in (("mean latency", means, mean_t), ("wake-ups/us", wakes, wake_t), ("poll share", polls, poll_t)):
        m, se = float(np.mean(xs)), float(np.std(xs, ddof=1)) / math.sqrt(len(xs))
        assert abs(m - want) <= 5 * se + 1e-9 * abs(want), (name, m, want, se)
    exp = load_experiment(spec(rate, halt_poll_us=poll_us))
    assert theory.predict(exp).flows[0].mean_us == pytest.approx(mean_t, rel=1e-12)


def test_halt_polling_is_for_the_tenants_vcpus_only():
    doc = spec(20_000, duration=0.05, halt_poll_us=50)
    doc["host"]["cores"] = 2
    doc["architecture"]["reserve"] = {"cores": 1}
    doc["architecture"]["resources"] = {"dom0": {"kind": "cpu", "cores": 1}}
    doc["architecture"]["paths"]["rx"]["stages"].append({"name": "backend", "on": "dom0", "cycles": 500,
                                                         "account": "backend"})
    res = Simulation(load_experiment(doc)).run()
    rows = {r.name: row for r, row in zip(res.compiled.resources, res.compiled.spec.resources)}
    assert len(rows["vcpu"]) == 6 and len(rows["dom0"]) == 4  # dom0 sleeps but does not halt-poll


def test_the_engine_refuses_polling_without_idle_states():
    from emulator._core import Spec
    stage = (0, 0, ("fixed", 1e6, 0.0), 0.0, ("fixed", 0.0, 0.0), False, ("fixed", 0.0, 0.0))
    flow = (False, ("fixed", 1e8, 0.0), 0, ("fixed", 0.0, 0.0), 0, 1)
    m, keep = _model([(1, 0, 0, 0)], [])
    m.resources[0].poll = 5
    out = ffi.new("vemu_sim **")
    err = ffi.new("char[]", 256)
    assert lib.vemu_sim_create(m, 1, out, err, 256) == lib.VEMU_EINVAL
    assert "no idle states" in ffi.string(err).decode()
    for bad in ((1, -1, ((5, 1),), 0, 5, 9), (1, -1, ((5, 1),), 0, -5, 0)):  # poll category, negative poll
        with pytest.raises(NativeError):
            Engine(Spec([bad], [(0, 0, 1)], [stage], [(0, 1, 1.0)], [flow], 2, 8), seed=1)


# Regressions found in review: a unit asleep since creation wakes even for a request at t = 0,
# and a throttle's gap counts from the start of the service proper, after the wake-up.
_F = ("fixed", 0.0, 0.0)


def test_a_request_at_time_zero_wakes_the_core():
    from emulator._core import Spec
    s = Spec([(1, -1, ((5000, 0),), 1)], [(0, 0, 1)], [(0, 0, ("fixed", 1000.0, 0.0), 0.0, _F, False, _F)],
             [(0, 1, 1.0)], [(True, _F, 1, _F, 0, 1)], 2, 4, trace_requests=2, trace_capacity=4)
    with Engine(s, seed=1) as e:  # one client, no think time: the first request issues at 0
        e.run(8000)
        st_ = e.stats()
        tr, _ = e.trace()
    assert tr["enter"][0] == 0 and tr["start"][0] == 5000  # waited out the exit latency
    assert int(st_["resource_wakeups"][0]) == 1  # the next one was handed straight on
    assert st_["resource_busy_area"][0][1] == 5000


def test_a_throttle_spaces_service_starts_even_after_wake_ups():
    from emulator._core import Spec
    gap = 3000
    s = Spec([(2, -1, ((5000, 0),), 1, 20000, 2)], [(0, 0, 1, gap)],
             [(0, 0, ("fixed", 1000.0, 0.0), 0.0, _F, False, _F)], [(0, 1, 1.0)],
             [(False, ("exp", 4000.0, 0.0), 1, _F, 0, 1)], 3, 1000, trace_requests=10**5, trace_capacity=10**5)
    with Engine(s, seed=3) as e:
        e.run(10**8)
        tr, _ = e.trace()
        wakeups = int(e.stats()["resource_wakeups"][0])
    starts = np.sort(tr["start"][tr["dropped"] == 0])
    assert len(starts) > 1000 and wakeups > 0
    assert np.diff(starts).min() >= gap


def test_white_box_invariants_hold_on_random_models(tmp_path):
    # native/invariants.c checks the engine's own state after every event of random small
    # models: units, the idle stack, busy counts per category, pending poll ends, the heap
    import shutil
    import subprocess
    from conftest import REPO
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    # in two shapes: the default, and a wider one (more units, qclasses, priority levels,
    # throttles and preempting qclasses) where preemption's corner cases are common
    for shape in ([], ["-DUMAX=8", "-DQX=5", "-DPR=5", "-DGP=2", "-DPP=2"]):
        exe = tmp_path / "invariants"
        subprocess.run(["gcc", "-std=c11", "-O1", *shape, f"-I{REPO / 'native'}", str(REPO / "native" / "invariants.c"),
                        "-lm", "-o", str(exe)], check=True)
        out = subprocess.run([str(exe), "400"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (shape, out.stderr)
        m = re.fullmatch(r"ok 400 \((\d+) preemptions, (\d+) heap sweeps\)", out.stdout.strip())
        assert m and int(m[1]) > 0, out.stdout  # the random models preempt (and the checks cover it)


def test_the_trace_says_how_much_of_a_wait_was_the_core_waking():
    # a packet every 1000 us: the first wakes the fresh core from C1 (no history), every later
    # one from C6, and that is all of its wait; the CLI's trace says so
    res = Simulation(load_experiment(spec(1000, "periodic", duration=0.01)), trace_requests=5).run(warmup_s=0.0)
    recs = res.trace
    assert list(recs["wake"]) == [2_000_000] + [133_000_000] * (len(recs) - 1)
    assert all(r["start"] - r["enter"] == r["wake"] for r in recs)
    from emulator.cli import format_trace
    assert "133.000 of the wait: the core waking" in format_trace(res)


def test_only_halt_polling_is_taken_out_of_the_utilization():
    # work a stage charges to `poll` on a sleeping core is work: it counted as halt-polling
    # (utilization 0.2027 -> 0.1828) on a host that never halt-polls
    doc = spec(2e5, cycles=1000.0, duration=0.05)
    plain = run(doc)["resources"]["vcpu"]
    doc["architecture"]["paths"]["rx"]["stages"][0]["account"] = "poll"
    polled = run(doc)["resources"]["vcpu"]
    assert polled["utilization"] == plain["utilization"] and "polling" not in polled
    # where the vCPUs halt-poll, `poll` is their idle polls': a stage may not charge it there
    doc = spec(2e5, halt_poll_us=50.0)
    doc["architecture"]["paths"]["rx"]["stages"][0]["account"] = "poll"
    with pytest.raises(ModelError, match=r"architecture.paths.rx.stages\[0\].account: the vCPUs halt-poll"):
        load_experiment(doc)


def test_a_tenants_vcpu_utilization_leaves_out_its_halt_polling():
    # tenants' vcpu_utilization counted the polls its vCPUs' resource utilization leaves out
    doc = spec(2e5, halt_poll_us=50.0, duration=0.05)
    doc["experiment"]["tenants"] = [{"name": n, "vcpus": 1, "workload": doc["workload"]} for n in ("a", "b")]
    doc["host"]["cores"] = 2
    del doc["workload"]
    d = run(doc)
    for name in ("a", "b"):
        r = d["resources"][f"vcpu@{name}"]
        assert r["polling"] > 0.05
        assert d["tenants"][name]["vcpu_utilization"] == pytest.approx(r["utilization"], rel=1e-12)


def test_wakeups_by_state_sum_to_the_wakeups_and_match_the_governors_theory() -> None:
    """Each wake-up is counted under the state it left. The governor's guess is the previous
    idle period, Exp(λ) under Poisson arrivals, so state k is chosen with probability
    e^(-λ r_k) - e^(-λ r_{k+1}) (theory.idle_state_probabilities); over n wake-ups each
    share is binomial: within 4 standard deviations, sqrt(p (1 - p) / n)."""
    from conftest import REPO

    from emulator.theory import idle_state_probabilities

    exp = load_experiment(str(REPO / "examples" / "idle-states.toml"), sets=["workload.flows.0.rate_per_s=1000"],
                          duration_s=10.0)
    r = Simulation(exp).run().to_dict()["resources"]["vcpu"]
    by = r["wakeups_by_state"]
    assert list(by) == [st.name for st in exp.host.idle_states] and sum(by.values()) == r["wakeups"]
    n = r["wakeups"]
    want = idle_state_probabilities(1000 / 1e6, [st.residency_us for st in exp.host.idle_states])
    for (name, count), p in zip(by.items(), want):
        assert abs(count / n - p) < 4 * math.sqrt(p * (1 - p) / n), (name, count / n, p)


def test_each_sleeping_resource_reads_its_own_states() -> None:
    # the engine's flat array holds every sleeping resource's states in turn (vcpu's, then
    # dom0's): each resource's counts by state sum to its own wake-ups
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_fingerprint import EVERYTHING

    res = Simulation(load_experiment(EVERYTHING)).run().to_dict()["resources"]
    sleeping = {n: r for n, r in res.items() if "wakeups" in r}
    assert len(sleeping) >= 2
    for name, r in sleeping.items():
        assert sum(r["wakeups_by_state"].values()) == r["wakeups"], name
    assert all(r["wakeups"] > 0 for r in sleeping.values())
