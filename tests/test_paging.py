"""Nested paging (`nested_paging`): the guest's own work takes 1 / (1 - share) as long on
its vCPUs and the share of that time is charged to `paging`. Properties: the split is
exact, the tenant cycles of a fixed amount of work do not change, only the guest's own
stages stretch, and bad values are clear errors."""

import copy
import dataclasses
import math

import pytest
from hypothesis import given, settings, strategies as st

from emulator._core import Engine, NativeError
from emulator.model import ModelError, compile_experiment, load_experiment
from emulator.simulation import Simulation, run


def _spec(share, *, rate=20_000.0, account="tenant", extra=None):
    """Two vCPUs at 1 GHz; each request does 1,000 cycles of its own work (exponential) and
    500 of an exit, open arrivals at `rate` per second (light load)."""
    arch = {"name": "a", "params": {"share": share}, "nested_paging": "share",
            "paths": {p: {"stages": [
                {"name": f"{p} work", "on": "vcpu", "cycles": {"dist": "exp", "mean": 1000}, "account": account},
                {"name": f"{p} exit", "on": "vcpu", "cycles": 500, "account": "exit"}]}
                for p in ("net_rx", "net_tx", "blk_read", "blk_write")}}
    if extra:
        arch.update(extra)
    return {"experiment": {"duration_s": 0.5, "warmup_s": 0.0},
            "host": {"name": "h", "cores": 2, "ghz": 1.0, "memory_gib": 1},
            "architecture": arch,
            "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": rate,
                                                 "steps": [{"path": "net_rx"}]}]}}


@settings(max_examples=15, deadline=None)
@given(share=st.floats(0.001, 0.5), seed=st.integers(1, 10_000))
def test_paging_is_exactly_the_share_of_the_guests_own_time(share, seed):
    # the engine reports, of the tenant time the vCPUs were busy, `share` as paging: the
    # ratio is the share to the rounding of two doubles, whatever the run
    d = run(_spec(share), seed=seed, duration_s=0.05).to_dict()["host_cycles"]
    assert d["paging"] / (d["tenant"] + d["paging"]) == pytest.approx(share, rel=1e-9)


def test_the_guests_own_work_keeps_its_tenant_cycles_and_stretches_by_the_share():
    # Same seed, light load (utilisation ~1.5%, nothing saturates): every request's own work
    # is the same draw, stretched by 1 / (1 - share) (to the picosecond each service is
    # rounded to), so its tenant cycles match bare work's within that rounding (~1e-9 of
    # 1 us services) and paging adds share / (1 - share) of them; the exit is untouched.
    share = 0.2
    a = run(_spec(0.0), seed=3).to_dict()
    b = run(_spec(share), seed=3).to_dict()
    assert a["flows"]["f"]["completed"] == b["flows"]["f"]["completed"]
    ha, hb = a["host_cycles"], b["host_cycles"]
    assert "paging" not in ha
    assert hb["tenant"] == pytest.approx(ha["tenant"], rel=1e-6)
    assert hb["paging"] == pytest.approx(ha["tenant"] * share / (1 - share), rel=1e-6)
    assert hb["exit"] == pytest.approx(ha["exit"], rel=1e-6)
    sa = {r["stage"]: r["mean_service_us"] for r in run(_spec(0.0), seed=3).stages()}
    sb = {r["stage"]: r["mean_service_us"] for r in run(_spec(share), seed=3).stages()}
    assert sb["net_rx work"] == pytest.approx(sa["net_rx work"] / (1 - share), rel=1e-6)
    assert sb["net_rx exit"] == sa["net_rx exit"]


def test_only_tenant_work_on_vcpus_stretches():
    # work charged to another category (a guest-side exit handler, say) runs in the host's
    # mode: its walks are one-dimensional, so it neither stretches nor pays paging
    d = run(_spec(0.3, account="backend"), seed=2, duration_s=0.05).to_dict()["host_cycles"]
    assert d.get("paging", 0.0) == 0.0


def test_a_share_of_zero_changes_nothing_bit_for_bit():
    a = run(_spec(0.0), seed=5, duration_s=0.05).to_dict()
    spec = _spec(0.0)
    del spec["architecture"]["nested_paging"]
    b = run(spec, seed=5, duration_s=0.05).to_dict()
    for k in ("host_cycles", "flows", "resources"):
        assert a[k] == b[k]


def test_bundled_hardware_virtualised_architectures_pay_paging_and_bare_metal_and_pv_do_not():
    paged = {"emulated", "kvm-virtio", "nitro", "sriov", "sriov-posted", "xen-aws-2013", "xen-aws-2017"}
    for arch in sorted(paged | {"bare-metal", "xen-pv"}):
        shares = compile_experiment(load_experiment(host="xeon-2017", architecture=arch, workload="cloud-mix")).spec.shares
        assert bool(shares) == (arch in paged), arch


@pytest.mark.parametrize("where, value, words", [("key", 0.6, "out of range: a number in [0, 0.5]"),
                                                  ("key", "1x", "neither a number nor a param name"),
                                                  ("param", 0.7, "0.7 is not a share in [0, 0.5]"),
                                                  ("key", "nope", "unknown param 'nope'")])
def test_a_bad_share_is_a_clear_error(where, value, words):
    spec = _spec(0.1)
    if where == "key":
        spec["architecture"]["nested_paging"] = value
    else:
        spec["architecture"]["params"]["share"] = value
    with pytest.raises(ModelError) as e:
        Simulation(load_experiment(copy.deepcopy(spec)))
    assert words in str(e.value)
    assert "architecture.nested_paging" in str(e.value)


def test_the_engine_rechecks_a_share():
    # the C core refuses what the compiler never gives it: a share outside [0, 1), or one
    # between a category and itself or one that does not exist
    good = Simulation(load_experiment(_spec(0.1))).compiled.spec
    ri, cf, ct, _ = good.shares[0]
    for row, what in (((ri, cf, ct, 1.0), "share"), ((ri, cf, ct, math.nan), "share"), ((ri, cf, ct, -0.1), "share"),
                      ((ri, cf, cf, 0.1), "distinct"), ((ri, cf, good.n_categories, 0.1), "distinct")):
        with pytest.raises(NativeError, match=what):
            Engine(dataclasses.replace(good, shares=[row]), seed=1)
    with Engine(good, seed=1):
        pass
