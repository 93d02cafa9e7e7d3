"""Preemptive-resume priority (`preempt = true` on a stage).

An arrival of a preempting stage that finds every unit busy takes the unit of the
lowest-priority service in progress below its own; that service is suspended and later
resumes for the time it had left. The closed forms are checked against the engine in
test_theory_oracle.py (M/G/1 with 2 and 3 levels); these tests check properties that hold
exactly, run by run, whatever the parameters:

- the top class does not see the classes below it at all: its latencies are the same bits
  with or without them (on any number of units);
- preemption moves work, it does not make or lose any: on one unit the busy time is the
  same as without preemption (each flow's services start in its FIFO order, so every
  request draws the same service time under either discipline);
- a preempted request's service is its own work: end - start - preempted is its service
  time, and the time suspended counts as wait;
- an interrupt's own stages run at once, but the work it brings at a lower priority queues
  in its turn: the interrupted code resumes first;
- sweeping the stale ends of preempted services out of a full event queue changes nothing;
- a bad `preempt` is refused with a one-line error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.cli import main
from emulator.model import ModelError, load_experiment
from emulator.simulation import Simulation
from conftest import to_toml

PS_PER_US = 1_000_000


def _doc(flows: list[dict[str, Any]], paths: dict[str, list[dict[str, Any]]], *, cores: int = 1,
         duration_s: float = 0.05, seed: int = 3) -> dict[str, Any]:
    return {
        "host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
        "architecture": {"name": "a", "resources": {"s": {"kind": "cpu", "cores": cores, "ghz": 1.0, "on_host": False}},
                         "paths": {k: {"stages": v} for k, v in paths.items()}},
        "workload": {"name": "w", "flows": flows},
        "experiment": {"duration_s": duration_s, "warmup_s": 0.005, "seed": seed},
    }


def _flow_stats(res: Any, i: int) -> tuple[Any, ...]:
    s = res.stats
    return (int(s["flow_completed"][i]), float(s["flow_latency_sum"][i]), int(s["flow_latency_max"][i]),
            s["flow_hist"][i].tobytes())


DISTS = st.sampled_from([{"dist": "exp", "mean": 1000}, {"dist": "lognormal", "mean": 800, "cv": 1.5},
                         {"dist": "uniform", "mean": 1200, "cv": 0.5}])


@settings(max_examples=25, deadline=None)
@given(cores=st.integers(1, 4), hi_load=st.floats(0.05, 0.6), lo_load=st.floats(0.1, 0.9), hi=DISTS, lo=DISTS,
       closed_lo=st.booleans(), seed=st.integers(0, 2**32))
def test_the_top_class_never_sees_the_classes_below(cores, hi_load, lo_load, hi, lo, closed_lo, seed):
    # the top class's sample path is that of a system without the lower classes: an arrival
    # takes a free unit, or preempts one serving a lower class, exactly when it would have
    # found the unit free without them (its flow's random streams are its own)
    paths = {"hi": [{"on": "s", "cycles": hi, "priority": 2, "preempt": True}],
             "mid": [{"on": "s", "cycles": lo, "priority": 1, "preempt": True}],
             "lo": [{"on": "s", "cycles": lo}]}
    hi_flow = {"name": "hi", "arrival": "poisson", "rate_per_s": hi_load * cores * 1e6 / hi["mean"] * 1000,
               "steps": [{"path": "hi"}]}
    lows = [{"name": "mid", "arrival": "poisson", "rate_per_s": lo_load * cores * 0.5e6 / lo["mean"] * 1000,
             "steps": [{"path": "mid"}]},
            ({"name": "lo", "arrival": "closed", "clients": 3 * cores, "steps": [{"path": "lo"}]} if closed_lo else
             {"name": "lo", "arrival": "poisson", "rate_per_s": lo_load * cores * 0.4e6 / lo["mean"] * 1000,
              "steps": [{"path": "lo"}]})]
    alone = Simulation(load_experiment(_doc([hi_flow], paths, cores=cores, duration_s=0.01, seed=seed))).run()
    both = Simulation(load_experiment(_doc([hi_flow] + lows, paths, cores=cores, duration_s=0.01, seed=seed))).run()
    assert _flow_stats(alone, 0) == _flow_stats(both, 0)
    assert int(both.stats["flow_completed"][0]) > 0


def test_preemption_moves_work_but_makes_none():
    # one unit, three classes: the busy time (and so the utilisation and every category's
    # share) is the same with and without preemption, because the unfinished work is
    paths = lambda pre: {  # noqa: E731
        "a": [{"on": "s", "cycles": {"dist": "exp", "mean": 700}, "priority": 2, "preempt": pre}],
        "b": [{"on": "s", "cycles": {"dist": "lognormal", "mean": 1500, "cv": 1.0}, "priority": 1, "preempt": pre,
               "account": "exit"}],
        "c": [{"on": "s", "cycles": {"dist": "uniform", "mean": 3000, "cv": 0.5}, "account": "backend"}]}
    flows = [{"name": n, "arrival": "poisson", "rate_per_s": r, "steps": [{"path": n}]}
             for n, r in (("a", 300e3), ("b", 200e3), ("c", 80e3))]
    runs = [Simulation(load_experiment(_doc(flows, paths(pre)))).run() for pre in (False, True)]
    i = [r.name for r in runs[0].compiled.resources].index("s")
    busy = [r.stats["resource_busy_area"][i] for r in runs]
    assert busy[0].sum() == pytest.approx(busy[1].sum(), rel=1e-12)
    assert runs[1].stats["resource_preemptions"][i] > 1000 and runs[0].stats["resource_preemptions"][i] == 0
    # the top class gains and the bottom class pays
    lat = [[float(r.stats["flow_latency_sum"][i] / r.stats["flow_completed"][i]) for i in range(3)] for r in runs]
    assert lat[1][0] < lat[0][0] and lat[1][2] > lat[0][2]


def test_a_preempted_service_is_its_own_work_and_its_suspension_is_wait():
    # fixed services: every record's end - start - preempted is the stage's work exactly
    paths = {"irq": [{"on": "s", "cycles": 300, "priority": 1, "preempt": True}],
             "job": [{"on": "s", "cycles": 5000}]}
    flows = [{"name": "irq", "arrival": "poisson", "rate_per_s": 400e3, "steps": [{"path": "irq"}]},
             {"name": "job", "arrival": "closed", "clients": 2, "steps": [{"path": "job"}]}]
    res = Simulation(load_experiment(_doc(flows, paths, duration_s=0.01)), trace_requests=20_000).run(warmup_s=0.0)
    tr = res.trace
    work = np.where(tr["flow"] == 0, 300_000, 5_000_000)
    assert np.array_equal(tr["end"] - tr["start"] - tr["preempted"], work)
    jobs = tr[tr["flow"] == 1]
    assert (jobs["preempted"] > 0).mean() > 0.5  # most jobs are interrupted at 400k irq/s
    assert (tr[tr["flow"] == 0]["preempted"] == 0).all()  # nothing outranks the interrupt
    for g in res.stages():  # the stage statistics agree: service is the work, suspension is wait
        assert g["mean_service_us"] == pytest.approx(0.3 if g["flow"] == "irq" else 5.0, rel=1e-12)
    job = next(g for g in res.stages() if g["flow"] == "job")
    assert job["mean_wait_us"] > 1.0  # the interrupts it waits out, queued or suspended
    # the stage statistics' suspended time is the trace's, request by request (every request
    # of this window is traced: the two sums cover the same services)
    assert res.trace_lost == 0
    for fi, name in ((0, "irq"), (1, "job")):
        g = next(g for g in res.stages() if g["flow"] == name)
        recs = tr[(tr["flow"] == fi) & (tr["dropped"] == 0)]
        assert len(recs) == g["completed"]
        assert g["mean_preempted_us"] == pytest.approx(recs["preempted"].mean() / 1e6, rel=1e-12, abs=1e-12)
    assert 0 < job["mean_preempted_us"] < job["mean_wait_us"]


def test_the_work_an_interrupt_brings_waits_its_turn():
    # one unit: jobs (5 us) from a closed loop of 3, and interrupts (0.3 us, priority 1,
    # preempting) each bringing 1 us of receive work at the jobs' priority. The interrupt's
    # own stage runs at once; its receive work queues behind the jobs already waiting, so a
    # job is suspended for whole interrupts only (a multiple of 0.3 us), never for the
    # receive work, and the receive work waits about as long as a job does
    paths = {"irq": [{"on": "s", "cycles": 300, "priority": 1, "preempt": True, "account": "exit"},
                     {"on": "s", "cycles": 1000}],
             "job": [{"on": "s", "cycles": 5000}]}
    flows = [{"name": "irq", "arrival": "poisson", "rate_per_s": 50e3, "steps": [{"path": "irq"}]},
             {"name": "job", "arrival": "closed", "clients": 3, "steps": [{"path": "job"}]}]
    res = Simulation(load_experiment(_doc(flows, paths, duration_s=0.02)), trace_requests=5000).run(warmup_s=0.0)
    tr = res.trace
    jobs = tr[(tr["flow"] == 1) & (tr["preempted"] > 0)]
    assert len(jobs) > 100 and (jobs["preempted"] % 300_000 == 0).all()
    irq_wait = [g["mean_wait_us"] for g in res.stages() if g["flow"] == "irq"]
    job_wait = next(g["mean_wait_us"] for g in res.stages() if g["flow"] == "job")
    # the interrupt waits only behind another interrupt (~0.3 us, at 1.5% load); its
    # receive work queues with the jobs
    assert irq_wait[0] < 0.01 and irq_wait[1] > 0.5 * job_wait


def test_a_throttled_interrupt_preempts_when_its_gap_opens():
    # interrupt throttling (ITR 5 us) on a preempting interrupt, one unit busy with 50 us
    # jobs: services still begin at least 5 us apart, and each batch starts the moment its
    # gap opens, never waiting for a job (its wait is at most the gap, plus at most
    # another interrupt's 0.2 us service when that gap opens while it runs)
    paths = {"irq": [{"on": "s", "cycles": 200, "priority": 1, "preempt": True, "throttle_us": 5, "batch": 64}],
             "job": [{"on": "s", "cycles": 50_000}]}
    flows = [{"name": "irq", "arrival": "poisson", "rate_per_s": 400e3, "steps": [{"path": "irq"}]},
             {"name": "job", "arrival": "closed", "clients": 2, "steps": [{"path": "job"}]}]
    res = Simulation(load_experiment(_doc(flows, paths, duration_s=0.01)), trace_requests=4000).run(warmup_s=0.0)
    tr = res.trace
    irq = tr[tr["flow"] == 0]
    starts = np.unique(irq["start"])
    assert len(starts) > 100 and np.diff(starts).min() >= 5_000_000
    assert (irq["start"] - irq["enter"]).max() <= 5_000_000 + 200_000
    i = [r.name for r in res.compiled.resources].index("s")
    assert res.stats["resource_preemptions"][i] > 100


def test_sweeping_stale_ends_from_a_full_event_queue_changes_nothing():
    # a long job preempted ~20 times per service leaves ~20 stale ends in the event queue;
    # a pool of 6 sizes the queue at 18 events for at most 12 live ones, so it fills up and is
    # swept again and again. The statistics match a pool of 100000 (never swept) bit for
    # bit, and so does the count of events processed (a stale end, swept or popped, is none)
    paths = {"irq": [{"on": "s", "cycles": 100, "priority": 1, "preempt": True}],
             "job": [{"on": "s", "cycles": 100_000}]}
    flows = [{"name": "irq", "arrival": "poisson", "rate_per_s": 200e3, "steps": [{"path": "irq"}]},
             {"name": "job", "arrival": "closed", "clients": 1, "steps": [{"path": "job"}]}]
    exp = load_experiment(_doc(flows, paths, duration_s=0.05))
    small, big = (Simulation(exp, pool_size=n).run() for n in (6, 100_000))
    for k in small.stats:
        assert np.array_equal(small.stats[k], big.stats[k]), k
    assert small.events == big.events


@pytest.mark.parametrize("stage,msg", [
    ({"on": "s", "cycles": 100, "preempt": "yes"}, "preempt"),
    ({"delay_us": 1, "preempt": True}, "preempt"),
])
def test_bad_preempt_is_one_clear_line(tmp_path, capsys, stage, msg):
    doc = _doc([{"name": "f", "arrival": "poisson", "rate_per_s": 1000, "steps": [{"path": "p"}]}], {"p": [stage]})
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(doc))
    with pytest.raises(ModelError):
        Simulation(load_experiment(doc)).run()
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and msg in err and "preempt" in err


@pytest.mark.parametrize("sets,model,irq_us,job_us", [
    ((), "preemptive-resume", 2.5, 68.333),
    (("architecture.paths.irq.stages.0.preempt=false",), "Cobham", 15.0, 63.333),
    (("architecture.paths.irq.stages.0.priority=0",), "P-K", 36.667, 54.667),
])
def test_the_example_gives_each_discipline_its_closed_form(capsys, sets, model, irq_us, job_us):
    # examples/interrupt-priority.toml (README): interrupts at 20% of a core, jobs at 50%.
    # The closed forms are Kleinrock's, Cobham's and P-K's; the 2 s runs' batch-means 95%
    # half-widths (seeds 1 and 2, the larger) are 0.7% / 3.8% (preemptive: interrupts / jobs),
    # 2.1% / 4.1% (non-preemptive) and 4.8% / 3.8% (FIFO): tolerance 10%, about four
    # standard errors, while the disciplines differ by far more than that
    import json

    from conftest import REPO

    args = ["theory", str(REPO / "examples" / "interrupt-priority.toml"), "--json"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert model in out["theory"]["model"]
    flows = {f["name"]: f for f in out["theory"]["flows"]}
    assert flows["irqs"]["mean_us"] == pytest.approx(irq_us, rel=1e-3)
    assert flows["jobs"]["mean_us"] == pytest.approx(job_us, rel=1e-3)
    sim = out["result"]["flows"]
    assert sim["irqs"]["latency_us"]["mean"] == pytest.approx(irq_us, rel=0.10)
    assert sim["jobs"]["latency_us"]["mean"] == pytest.approx(job_us, rel=0.10)


def test_a_unit_taken_back_for_a_suspended_service_goes_to_a_higher_queued_request() -> None:
    """Two cores with an idle state. M (priority 1) runs on core A from 11 us; L (0) wakes
    core B at 12 us; H (2, preempting) suspends M at 12.5; W (3, not preempting) queues at
    12.7, both cores busy. When L's wake-up ends at 13 us, suspended M outranks L and takes
    core B back, and the freed core must go to W, the highest request waiting: it started
    W only when H ended at 17.5 us (a wait of 4.8 us), having resumed M past it."""
    stage = lambda name, prio, cycles, **kw: {"stages": [{"name": name, "on": "vcpu", "cycles": cycles,
                                                          "priority": prio, **kw}]}
    flow = lambda name, think: {"name": name, "arrival": "closed", "clients": 1, "think_us": think,
                                "steps": [{"path": name}]}
    doc = {"experiment": {"duration_s": 2e-5, "warmup_s": 0, "seed": 1},
           "host": {"name": "h", "cores": 2, "ghz": 1.0, "memory_gib": 1,
                    "idle_states": [{"name": "C1", "exit_us": 1, "residency_us": 0}]},
           "architecture": {"name": "a", "paths": {"low": stage("L", 0, 5000), "mid": stage("M", 1, 20000),
                                                   "irq": stage("H", 2, 5000, preempt=True),
                                                   "top": stage("W", 3, 1000)}},
           "workload": {"name": "w", "flows": [flow("mid", 10), flow("low", 12), flow("irq", 12.5),
                                               flow("top", 12.7)]}}
    res = Simulation(load_experiment(doc), trace_requests=8).run()
    top = res.compiled.flows.index("top")
    w = next(r for r in res.trace if int(r["flow"]) == top)
    assert (int(r := w["enter"]), int(w["start"])) == (12_700_000, 13_000_000), r
