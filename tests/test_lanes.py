"""A stage's `queues` (the engine's lanes): one throttle and one batch queue per queue.

A multi-queue NIC gives each queue its own interrupt vector and its own throttle (ITR per
vector). `queues = L` on a stage spreads its requests over L queues, each request in the
one its lane picks (a number drawn from its key, so common to two models; a detached
request keeps its parent's). Under Poisson arrivals at rate lambda each queue is fed by a
thinned Poisson stream of rate lambda / L, so with a unit free whenever a gap ends each
queue is the renewal process of tests/test_throttle.py:

    per queue: mean cycle m = G + exp(-lambda G / L) / (lambda / L),
    all queues: interrupt rate L / m, mean wait (G / m) G / 2.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import experiment

from emulator._core import Engine, ModelError, NativeError, Spec
from emulator.model import load_experiment
from emulator.simulation import Simulation, run
from emulator.theory import analyse, throttle_cycle


def _spec(queues: Any, *, gap_us: float = 10.0, batch: int = 64, rate: float = 2e5, cores: int = 4,
          duration_s: float = 0.5) -> dict[str, Any]:
    """Poisson packets through a throttled interrupt (300 ns) and its EOI (500 ns), carried
    on as one, on `cores` 1 GHz vCPUs; `queues` on both stages (None: the key left out)."""
    irq = {"name": "irq", "on": "vcpu", "cycles": 300, "account": "exit", "batch": batch, "throttle_us": gap_us}
    eoi = {"name": "eoi", "on": "vcpu", "cycles": 500, "account": "exit", "batch": batch}
    if queues is not None:
        irq["queues"] = eoi["queues"] = queues
    spec = experiment({}, {"rx": [{"name": "wire", "delay_us": 2}, irq, eoi]},
                      [{"name": "pkts", "arrival": "poisson", "rate_per_s": rate, "steps": [{"path": "rx"}]}],
                      duration_s=duration_s, warmup_s=0.05)
    spec["host"]["cores"] = cores
    return spec


def _cycle(lam: float, gap: float, lanes: int) -> float:
    return throttle_cycle(lam / lanes, gap)


@pytest.mark.parametrize("queues,lanes", [(2, 2), ("units", 4)])
def test_each_queue_is_throttled_on_its_own(queues: Any, lanes: int) -> None:
    # Interrupt count over T: a sum of L independent renewal counts, each of variance
    # T var / m^3 (renewal CLT, var the cycle's variance); 5 standard deviations plus 2 per
    # queue for the window's edges. The mean wait over ~10^5 cycles has a relative s.e.
    # under 0.5%; tolerance 3%.
    lam, gap, T = 2e5, 10e-6, 0.5
    res = run(_spec(queues, duration_s=T), seed=3)
    m = _cycle(lam, gap, lanes)
    p = math.exp(-lam / lanes * gap)
    var = (2 * p - p * p) / (lam / lanes) ** 2
    sd = math.sqrt(lanes * T * var / m**3)
    st = {s["stage"]: s for s in res.stages()}
    assert abs(st["irq"]["services"] - lanes * T / m) <= 5 * sd + 2 * lanes, (st["irq"]["services"], lanes * T / m)
    assert st["eoi"]["services"] == pytest.approx(st["irq"]["services"], abs=lanes)  # carried on as one
    assert st["irq"]["mean_wait_us"] == pytest.approx(gap / m * gap / 2 * 1e6, rel=0.03)


def test_more_queues_mean_more_interrupts_and_less_wait() -> None:
    # Same seed (common random numbers): each added queue splits the traffic thinner, so
    # fewer packets share an interrupt. The rates differ by >= 17% between these steps,
    # far beyond their ~0.5% noise.
    rows = []
    for q in (1, 2, 4):
        st = {s["stage"]: s for s in run(_spec(q, duration_s=0.2), seed=5).stages()}
        rows.append((st["irq"]["services"], st["irq"]["mean_wait_us"]))
    assert rows[0][0] < rows[1][0] < rows[2][0]
    assert rows[0][1] > rows[1][1] > rows[2][1]


def test_no_queue_runs_its_services_closer_than_the_gap() -> None:
    # A bound, not a mean: each queue begins its services at least G apart, so over T its
    # interrupts number at most T / G + 1 (the warm-up's last one may fall in the window).
    lanes, gap, T = 4, 10e-6, 0.1
    res = run(_spec("units", rate=2e6, batch=4096, duration_s=T), seed=2)
    st = {s["stage"]: s for s in res.stages()}
    assert st["irq"]["services"] <= lanes * (T / gap + 1)
    assert st["irq"]["services"] >= 0.95 * lanes * T / gap  # 50 packets a gap per queue: every gap used


def test_queues_change_nothing_on_a_stage_that_neither_batches_nor_throttles() -> None:
    # Such a stage shares its resource's one queue, served in arrival order: `queues` has
    # nothing to split, and the run is the same bit for bit.
    base = _spec(None, gap_us=0, batch=1, duration_s=0.05)
    spread = _spec(8, gap_us=0, batch=1, duration_s=0.05)
    a, b = Simulation(load_experiment(base)), Simulation(load_experiment(spread))
    assert a.compiled.spec.qclasses == b.compiled.spec.qclasses
    da, db = a.run().to_dict(), b.run().to_dict()
    for d in (da, db):
        d.pop("wall_s")
        d.pop("spec_digest")
    assert da == db


def test_one_queue_is_the_stage_without_queues() -> None:
    a = run(_spec(None, duration_s=0.05), seed=4).to_dict()
    b = run(_spec(1, duration_s=0.05), seed=4).to_dict()
    for d in (a, b):
        d.pop("wall_s")
        d.pop("spec_digest")
    assert a == b


def test_theory_predicts_a_stage_with_queues() -> None:
    # The per-queue renewal closed forms beside a 1 s run (~150k interrupt cycles, 200k
    # packets): relative s.e. of the mean wait ~0.3%, percentiles add the histogram's
    # <= 0.4% bucket error; tolerances 2%.
    exp = load_experiment(_spec("units", duration_s=1.0))
    pred, why = analyse(exp)
    assert pred is not None, why
    lam, gap, lanes = 2e5, 10e-6, 4
    m = _cycle(lam, gap, lanes)
    assert pred.stations[0].mean_wait_us == pytest.approx(gap * gap / (2 * m) * 1e6)
    assert "4 queues" in pred.model
    res = Simulation(exp).run()
    f = res.to_dict()["flows"]["pkts"]["latency_us"]
    fp = pred.flows[0]
    assert fp.throughput_per_s == pytest.approx(lam)
    assert f["mean"] == pytest.approx(fp.mean_us, rel=0.02)
    assert f["p99"] == pytest.approx(fp.p99_us, rel=0.02)
    st = next(s for s in res.stages() if s["stage"] == "irq")
    assert st["services"] / res.duration_s == pytest.approx(lanes / m, rel=0.02)
    assert res.to_dict()["resources"]["vcpu"]["utilization"] == pytest.approx(pred.stations[0].utilization, rel=0.02)


def test_theory_says_why_more_queues_than_units_are_not_covered() -> None:
    from emulator.theory import why_not

    assert "units" in (why_not(load_experiment(_spec(8))) or "")


@pytest.mark.parametrize("value,words", [
    ("cores", "whole number of queues or \"units\""),
    (0, "out of range"),
    (2.5, "must be an integer"),
])
def test_bad_queues_are_refused_with_the_key(value: Any, words: str) -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(_spec(value))
    assert "queues" in str(e.value) and words in str(e.value)


def test_queues_on_a_pure_delay_are_refused() -> None:
    spec = _spec(None)
    spec["architecture"]["paths"]["rx"]["stages"][0]["queues"] = 2
    with pytest.raises(ModelError, match="only a stage with `on`"):
        load_experiment(spec)


def _engine_spec(lanes: int, second: tuple[int, ...]) -> Spec:
    nodelay = ("fixed", 0.0, 0.0)
    stage = (0, 0, ("fixed", 1e5, 0.0), 0.0, nodelay, False, nodelay, 0, None, (0, 0), lanes)
    return Spec(resources=[(2, -1), (1, -1)], qclasses=[(0, 0, 4, 1000), second], stages=[stage],
                classes=[(0, 1, 1.0)], flows=[(False, ("exp", 1e6, 1.0), 0, nodelay, 0, 1)],
                n_categories=1, pool_size=100)


@pytest.mark.parametrize("lanes,second,words", [
    (2, (1, 0, 4, 1000), "lanes must agree"),   # lane 1 on another resource
    (2, (0, 0, 4, 2000), "lanes must agree"),   # another gap
    (3, (0, 0, 4, 1000), "need qclasses up to"),
])
def test_the_engine_rechecks_a_stage_s_lanes(lanes: int, second: tuple[int, ...], words: str) -> None:
    with pytest.raises((NativeError, ModelError), match=words):
        with Engine(_engine_spec(lanes, second), seed=1):
            pass


def test_the_engine_serves_lanes_that_agree() -> None:
    with Engine(_engine_spec(2, (0, 0, 4, 1000)), seed=1) as eng:
        eng.run(10**10)
        assert int(eng.stats()["stage_completed"][0]) > 5000


@pytest.mark.parametrize("arch,param", [("sriov", "vf_irq_throttle_us"), ("kvm-virtio", "host_nic_irq_throttle_us")])
def test_a_bundled_nic_throttle_spaces_each_vcpu_queue_and_frees_cycles(arch: str, param: str) -> None:
    # The bundled receive interrupt has one queue per vCPU: at 125 us each of the 72
    # queues interrupts at most T / G + 1 times (a bound), and the cycles its exits no
    # longer take go to the tenant (same seed: common random numbers; the gain measured
    # on 20 ms is > 3 points, its noise ~0.3).
    T = 0.02
    out = {}
    for gap in (0.0, 125.0):
        exp = load_experiment(host="xeon-2017", architecture=arch, workload="cloud-mix", sets=[f"{param}={gap}"],
                              duration_s=T, warmup_s=0.005)
        res = Simulation(exp).run()
        irq = [s for s in res.stages() if s["step"] == "net_rx" and s["stage"].startswith(("device interrupt",
                                                                                             "host NIC interrupt"))]
        assert len(irq) == 5  # one per class of cloud-mix, all in the same queues
        out[gap] = (res.to_dict()["usable_fraction"], sum(s["services"] for s in irq), sum(s["completed"] for s in irq))
    (u0, n0, c0), (u1, n1, c1) = out[0.0], out[125.0]
    assert abs(n0 - c0) <= 72  # unthrottled: one interrupt per packet (bar services across the window's edges)
    assert n1 <= 72 * (T / 125e-6 + 1) < c1
    assert u1 > u0 + 0.01


def _no_preemption(batch: int) -> dict[str, Any]:
    """One 1 GHz core, no preemption: packets take an interrupt (priority 1, 0.5 us, batch
    `batch`) and then protocol work (priority 0, 2 us); jobs (priority 0, 5 us) share the core.
    Load 0.85."""
    spec = experiment({}, {
        "rx": [{"name": "irq", "on": "vcpu", "cycles": 500, "account": "exit", "priority": 1, "batch": batch},
               {"name": "stack", "on": "vcpu", "cycles": 2000}],
        "job": [{"name": "work", "on": "vcpu", "cycles": 5000}]},
        [{"name": "pkts", "arrival": "poisson", "rate_per_s": 1e5, "steps": [{"path": "rx"}]},
         {"name": "jobs", "arrival": "poisson", "rate_per_s": 1.2e5, "steps": [{"path": "job"}]}],
        duration_s=0.5, warmup_s=0.05)
    return spec


@pytest.mark.parametrize("batch", [1, 8])
def test_the_work_an_interrupt_brings_joins_the_queue_without_preemption_too(batch: int) -> None:
    # Once the interrupt's own stage is done, its packet's protocol work (priority 0) queues
    # behind the jobs already waiting at that priority, whether the interrupt served one
    # packet or a batch (before, a lone packet ran on at once and only a batch's queued).
    # Jobs and protocol work then share one FIFO: their mean waits agree to within 10% (the
    # 0.5 s run has ~10^5 of each, relative s.e. of each mean wait ~2%; the stack work
    # arrives just after an interrupt, not as Poisson, which moves its mean wait by a few %).
    res = run(_no_preemption(batch), seed=6)
    st = {s["stage"]: s for s in res.stages()}
    assert st["stack"]["mean_wait_us"] > 1.0
    assert st["stack"]["mean_wait_us"] == pytest.approx(st["work"]["mean_wait_us"], rel=0.1)


@pytest.mark.parametrize("qa,qb", [(1, 2), (1, 4), (2, 4), (4, 2)])
def test_a_batch_splits_by_lane_when_the_next_stage_has_other_queues(qa: int, qb: int) -> None:
    # An interrupt's batch goes on to a batching stage with another number of queues: its
    # members that land in one queue there arrive together and start as one service (a
    # review found each member served alone, up to 64 services for one interrupt). A batch
    # from one of qa queues reaches at most qb / gcd(qa, qb) queues of the next stage, so
    # that stage begins at most that many services per interrupt; where qb divides qa
    # every member goes on to the same queue and the batch carries on whole.
    spec = _spec(qa, rate=4e5, duration_s=0.1)
    spec["architecture"]["paths"]["rx"]["stages"][2]["queues"] = qb
    st = {s["stage"]: s for s in run(spec, seed=3).stages()}
    per = qb // math.gcd(qa, qb)
    assert st["eoi"]["services"] <= per * st["irq"]["services"] + qb  # (+ services across the window's edges)
    if per == 1:
        assert st["eoi"]["services"] == st["irq"]["services"]
    else:
        assert st["eoi"]["services"] > st["irq"]["services"]  # they do split
        # still batches, not single packets: ~1.5 a service here (an interrupt's ~2-4 packets
        # spread over 2-4 queues), where serving each alone would give 1.0
        assert st["eoi"]["completed"] / st["eoi"]["services"] > 1.25
