"""Multi-tenant hosts: tenants own their vCPUs and share what the architecture shares."""

import math

import pytest

from emulator._core import ModelError
from emulator.experiments.figures import noisy_spec
from emulator.model import load_experiment
from emulator.simulation import Simulation, run


def two_tenants(arch, neighbour_think_us, **kw):
    sets = ["tenants.victim.workload.flows.0.clients=32",
            'tenants.victim.workload.flows.0.think_us={ dist = "exp", mean = 200 }',
            "tenants.neighbour.workload.flows.0.clients=1024",
            f'tenants.neighbour.workload.flows.0.think_us={{ dist = "exp", mean = {neighbour_think_us} }}',
            "tenants.neighbour.workload.params.work_cycles=5000"]
    return run(noisy_spec(arch), sets=sets, duration_s=0.008, warmup_s=0.002, **kw)


def victim(r):
    return next(v for k, v in r.to_dict()["flows"].items() if k.startswith("victim/") and not v["background"])


def test_one_tenant_owning_every_vcpu_is_the_single_tenant_host():
    single = run(host="xeon-2017", architecture="xen-pv", workload="web", duration_s=0.003, warmup_s=0.001)
    multi = run({"experiment": {"host": "xeon-2017", "architecture": "xen-pv",
                                "tenants": [{"name": "t", "workload": "web", "vcpus": 64}]}},
                duration_s=0.003, warmup_s=0.001)
    assert multi.usable_fraction == single.usable_fraction
    assert multi.host_cycles() == single.host_cycles()
    assert multi.to_dict()["flows"]["t/requests"]["latency_us"] == single.to_dict()["flows"]["requests"]["latency_us"]


def test_host_cycles_sum_to_one_with_unsold_cores():
    r = two_tenants("xen-pv", 1000)
    hc = r.host_cycles()
    assert math.isclose(sum(hc.values()), 1.0, abs_tol=1e-9)
    # 72 threads: 8 reserved, 40 sold, 24 unsold and idle
    assert hc["idle"] >= 24 / 72 - 1e-9
    d = r.to_dict()
    assert d["tenants"]["victim"]["vcpus"] == 8 and d["tenants"]["neighbour"]["vcpus"] == 32
    assert set(d["resources"]) >= {"vcpu@victim", "vcpu@neighbour", "dom0"}


# Victim latencies at two neighbour loads under one seed (common random numbers). The
# neighbour at 1024 clients / 400 us think offers ~2.6M echoes/s, beyond what 8 dom0 cores
# serve (~2.15M echoes/s): Xen's shared dom0 saturates and the victim waits behind it
# (measured: 14.8 us -> 75 us), while nothing the victim uses under Nitro or device
# assignment is saturated (its mean moves by < 2%: the NIC is shared but far from busy).
@pytest.mark.parametrize("arch,isolated", [("xen-pv", False), ("nitro", True), ("sriov-posted", True)])
def test_a_noisy_neighbour_hurts_only_through_what_is_shared(arch, isolated):
    quiet = victim(two_tenants(arch, 10_000))["latency_us"]["mean"]
    noisy = victim(two_tenants(arch, 400))["latency_us"]["mean"]
    if isolated:
        assert noisy <= quiet * 1.02, (quiet, noisy)
    else:
        assert noisy > 3 * quiet, (quiet, noisy)


def test_tenants_cannot_buy_more_than_the_host_sells():
    spec = noisy_spec("xen-pv")
    spec["experiment"]["tenants"][1]["vcpus"] = 60
    with pytest.raises(ModelError, match="experiment.tenants.*64 to sell"):
        load_experiment(spec)


@pytest.mark.parametrize("mutate,key", [
    (lambda t: t.append({"name": "victim", "workload": "web", "vcpus": 1}), "name"),
    (lambda t: t[0].update(vcpus=0), "vcpus"),
    (lambda t: t[0].pop("workload"), "workload"),
    (lambda t: t[0].update(workload="nope"), "nope"),
    (lambda t: t.clear(), "tenants"),
])
def test_bad_tenants_are_named(mutate, key):
    spec = noisy_spec("nitro")
    mutate(spec["experiment"]["tenants"])
    with pytest.raises(ModelError, match=key):
        load_experiment(spec)


def test_tenants_and_a_workload_do_not_mix():
    spec = noisy_spec("nitro")
    spec["experiment"]["workload"] = "web"
    with pytest.raises(ModelError, match="tenants"):
        load_experiment(spec)


def test_tenant_workload_params_are_the_tenants_own():
    exp = load_experiment({"experiment": {"host": "xeon-2017", "architecture": "nitro", "tenants": [
        {"name": "a", "workload": "packet-echo", "vcpus": 4}, {"name": "b", "workload": "packet-echo", "vcpus": 4}]}},
        sets=["tenants.a.workload.params.work_cycles=1000", "tenants.b.workload.params.work_cycles=100000"],
        duration_s=0.002, warmup_s=0.0005)
    d = Simulation(exp).run().to_dict()
    assert d["flows"]["a/echo"]["throughput_per_s"] > 5 * d["flows"]["b/echo"]["throughput_per_s"]
