"""A fingerprint of the engine's behaviour.

Two reference runs (inline models that exercise every engine feature: every
distribution, batches, throttles, batches moving on together, idle states and halt-polling, priorities (with and
without preemption), capacity drops,
forks,
closed loops with think time, pure delays, run-to-completion chains, request mixes) are hashed bit for bit. Any change to
what the engine computes changes the hash. If a change is deliberate (a new sampler, a
fixed bug), update FINGERPRINTS in the same commit and say why; if not, this caught it.
Same seed, same bits: this also holds across chunk sizes and repeated runs.
"""

import hashlib

import numpy as np
import pytest

from emulator.simulation import Simulation
from emulator.model import load_experiment

TANDEM = {
    "host": {"name": "bench", "cores": 1, "ghz": 1.0, "memory_gib": 1},
    "architecture": {
        "name": "tandem",
        "resources": {f"s{i}": {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False} for i in (1, 2, 3)},
        "paths": {"tandem": {"stages": [
            {"name": "one", "on": "s1", "cycles": {"dist": "exp", "mean": 500000}},
            {"name": "two", "on": "s2", "cycles": {"dist": "exp", "mean": 700000}},
            {"name": "three", "on": "s3", "cycles": {"dist": "exp", "mean": 900000}},
        ]}},
    },
    "workload": {"name": "tandem", "flows": [{"name": "jobs", "arrival": "poisson", "rate_per_s": 800,
                                              "steps": [{"path": "tandem"}]}]},
    "experiment": {"duration_s": 50.0, "warmup_s": 5.0, "seed": 7},
}

EVERYTHING = {
    "host": {"name": "h", "cores": 8, "ghz": 2.0, "memory_gib": 64, "params": {"exit": 1500},
             "idle_states": [{"name": "C1", "exit_us": 1, "residency_us": 2},
                             {"name": "C6", "exit_us": 30, "residency_us": 100}], "halt_poll_us": 5,
             "devices": {"nic": {"kind": "link", "gbps": 10, "lanes": 2, "overhead_bytes": 20, "capacity": 64},
                         "ssd": {"kind": "server", "servers": 4,
                                 "service_us": {"dist": "lognormal", "mean": 80, "cv": 0.5}, "capacity": 16}}},
    "architecture": {
        "name": "a", "reserve": {"cores": 2, "memory_gib": 8},
        "resources": {"dom0": {"kind": "cpu", "cores": 2, "capacity": 200},
                      "card": {"kind": "cpu", "cores": 2, "ghz": 1.0, "on_host": False, "poll": True}},
        "paths": {
            "net": {"stages": [
                {"name": "stack", "on": "vcpu", "cycles": {"dist": "uniform", "mean": 4000, "cv": 0.3}, "per_byte": 0.5},
                {"name": "kick", "on": "vcpu", "cycles": "exit", "account": "exit", "batch": 4, "throttle_us": 2},
                {"name": "back", "on": "dom0", "cycles": {"dist": "exp", "mean": 3000}, "account": "backend", "batch": 8},
                {"name": "map", "on": "dom0", "per_page": 900, "unpaged_bytes": 128, "page_bytes": 512,
                 "account": "hypervisor"},
                {"name": "copy", "on": "dom0", "per_byte": 1.0, "account": "copy", "fork": "done"},
                {"name": "wire", "on": "nic", "delay_us": {"dist": "exp", "mean": 2}},
            ]},
            "done": {"stages": [
                {"name": "completion irq", "on": "vcpu", "cycles": 700, "account": "exit", "batch": 4, "priority": 1,
                 "preempt": True},
            ]},
            "blk": {"stages": [
                {"name": "submit", "on": "vcpu", "cycles": 5000},
                {"name": "card", "on": "card", "cycles": 2000, "priority": 1, "preempt": True},
                {"name": "ssd", "on": "ssd"},
                {"name": "lag", "delay_us": 3},
            ]},
        },
        "background": [{"name": "timer", "arrival": "periodic", "rate_per_s": 1000, "per_vcpu": True,
                        "steps": [{"on": "vcpu", "cycles": "exit", "account": "exit", "priority": 2, "preempt": True}]}],
    },
    "workload": {"name": "w", "flows": [
        {"name": "mix", "arrival": "closed", "clients": 64, "think_us": {"dist": "exp", "mean": 50},
         "mix": [{"name": "net", "weight": 3, "steps": [{"path": "net", "bytes": {"dist": "exp", "mean": 900}},
                                                         {"on": "vcpu", "cycles": {"dist": "lognormal", "mean": 20000, "cv": 1.5}}]},
                 {"name": "blk", "weight": 1, "steps": [{"path": "blk", "bytes": 4096, "count": 2}]}]},
        {"name": "open", "arrival": "poisson", "rate_per_s": 20000,
         "steps": [{"path": "net", "bytes": 256}, {"on": "card", "cycles": 500}]},
    ]},
    "experiment": {"duration_s": 0.05, "warmup_s": 0.01, "seed": 11},
}

FINGERPRINTS = {
    # + resource_wakeups (a new statistic) and the trace's wake field, all zeros here; without
    # them still b254d6404eb65e03
    # + the trace's parent field (all VEMU_NO_PARENT here); without it still 877da43ecd39d755
    # + resource_preemptions (a new statistic) and the trace's preempted field, all zeros here;
    # without them still de6d3fb11e748675
    # + stage_preempted_sum (a new statistic, zeros here); without it still 3925fe3dfd7edccc
    # request-keyed draws (SplitMix64 streams started at the request's key and the stage's
    # tag, for common random numbers across changes of timing): every draw changes; the
    # xoshiro256** per-flow streams before them gave bbcd8a944c0b8615
    # then flows keyed by their names (tags) rather than their places: 7bacc9846f1bd600 before
    # + class_latency_sum, class_latency_max (new statistics); without them still 6a4bdfd09e16c311
    # + idle_state_wakeups (a new statistic, one zero here); without it still ecf2ec3962e60155
    "tandem": "c028a0de3a66b5fa",
    # the host got idle states (vcpu and dom0 sleep; the vCPUs halt-poll 5 us first); without
    # them and the new statistic the engine still gives 2e4cadee011863ef
    # a throttle's gap now counts from after a wake-up; + trace wake field (d49cd7f00b8e863a without it);
    # then the net path's copy forks a completion interrupt (without the fork, and without the
    # trace's parent field, still a3b35784944d1a14); then dom0 grant-maps the net path's
    # bytes per 512 B page beyond 128 (without that stage still 25fd75c36c41faf4)
    # then the completion interrupt, the timer and the card's stage preempt (18,287 services
    # suspended on vcpu, 24 on the card); without that, resource_preemptions and the trace's
    # preempted field still 3f53319ac0d1ef1d
    # + stage_preempted_sum (a new statistic); without it still 8b9fa2cf11e07628
    # request-keyed draws, as for tandem; before them 934b989e71d1d4c7
    # the events count no longer counts the stale ends of preempted services (the same
    # count whatever the pool); with them 3b9749437332da93
    # then flows keyed by their names and a step's repetitions apart from its place: 65ac5151ac64368d before
    # then each member of a batch ends at its own stage (its delay, its tag, its sums; they were
    # the batch's first member's) and a stage's wait and service sums are taken when a request
    # leaves it, with its count: 2007b92d37af088c before
    # + class_latency_sum, class_latency_max and class_hist (new statistics: the mix's classes
    # get histograms); without them still e98ff41c8a443de9
    # + idle_state_wakeups (a new statistic: vcpu's and dom0's wake-ups by state, which sum to
    # resource_wakeups); without it still 0b9cc37308446f33
    "everything": "6c6aaa545f3d5903",
}


def fingerprint(spec, chunk_events=1 << 22):
    exp = load_experiment(spec)
    res = Simulation(exp, trace_requests=20).run(chunk_events=chunk_events)
    h = hashlib.sha256()
    for name in sorted(res.stats):
        h.update(name.encode())
        h.update(np.ascontiguousarray(res.stats[name]).tobytes())
    h.update(res.trace.tobytes())
    h.update(str(res.events).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name,spec", [("tandem", TANDEM), ("everything", EVERYTHING)])
def test_fingerprint(name, spec):
    got = fingerprint(spec)
    assert got == FINGERPRINTS[name], (
        f"the engine's behaviour changed ({name}: {got}); if deliberate, update FINGERPRINTS and say why")


@pytest.mark.parametrize("chunk", [1, 97, 10_000])
def test_chunk_size_changes_no_bit(chunk):
    assert fingerprint(EVERYTHING, chunk_events=chunk) == fingerprint(EVERYTHING)
