"""The headline's claims, measured on the bundled models (quick runs).

These are properties of the mechanisms, not of a fudge: bare metal bounds every
architecture, host cycles are all accounted for, raising a cost never buys cycles back,
and the orderings the literature leads one to expect hold. If a model change breaks one,
the README's explanation must change with it.
"""

import math

import pytest

from emulator.experiments.headline import ARCHITECTURES, Job, checks, headline, run_jobs
from emulator.simulation import run


@pytest.fixture(scope="module")
def quick():
    return {r["architecture"]: r for r in headline(quick=True)}


def test_host_cycles_sum_to_one(quick):
    for a, r in quick.items():
        assert math.isclose(sum(r["host_cycles"].values()), 1.0, abs_tol=1e-9), a
        assert all(v >= 0 for v in r["host_cycles"].values()), a


def test_usable_fraction_at_most_one_and_bare_metal_bounds_all(quick):
    bare = quick["bare-metal"]["usable_fraction"]
    for a, r in quick.items():
        assert 0 <= r["usable_fraction"] <= 1.0
        assert r["usable_fraction"] <= bare + 1e-9, a
        # relative throughput: nobody beats bare metal on its own host and workload
        assert r["throughput_per_s"] <= quick["bare-metal"]["throughput_per_s"] * 1.002, a


def test_the_expected_shape(quick):
    # The orderings and bounds the literature leads one to expect, on the honest models.
    # "xen-pv in [0.60, 0.80]" is reported by checks() but not asserted: the bundled costs
    # give ~0.81 on cloud-mix (the README explains why, and where on the I/O curve 0.70
    # lies); asserting the folklore band would invite tuning the models to it.
    c = checks(list(quick.values()))
    asserted = [k for k in c if not k.startswith("xen-pv in")]
    assert all(c[k] for k in asserted), {k: c[k] for k in asserted if not c[k]}


def test_xen_pv_loses_more_than_its_reserve(quick):
    # the reserve alone (8 of 72 threads) would leave 0.889; per-I/O work (exits, dom0
    # back ends, copies, a saturated dom0) must cost clearly more than that
    u = quick["xen-pv"]["usable_fraction"]
    assert 0.60 <= u <= 64 / 72 - 0.05, u
    hc = quick["xen-pv"]["host_cycles"]
    assert hc["exit"] > 0.01 and hc["backend"] > 0.05


def test_reserve_matches_what_aws_sold(quick):
    # aws-instances: i3.16xlarge sold 64 of i3.metal's 72 threads (88.9%), 488 of 512 GiB
    r = quick["xen-pv"]["reserve"]
    assert math.isclose(r["vcpu_share"], 64 / 72)
    assert quick["nitro"]["reserve"]["vcpu_share"] == 1.0


# Under common random numbers (one seed) the difference between two exit costs is
# nearly free of sampling noise; 0.001 is a tenth of the seed-to-seed standard deviation
# of xen-pv's usable fraction in a 10 ms window (measured: 0.010), the noisiest case,
# where dom0 is the bottleneck and exits only fill otherwise idle vCPU time.
@pytest.mark.parametrize("arch", ["sriov", "xen-pv", "kvm-virtio", "emulated"])
def test_raising_an_exit_cost_never_raises_the_usable_fraction(arch):
    us = [run(host="xeon-2017", architecture=arch, workload="cloud-mix", sets=[f"exit_cycles={e}"],
              duration_s=0.01, warmup_s=0.003).usable_fraction for e in (500, 1550, 4500, 13500)]
    for lo, hi in zip(us, us[1:]):
        assert hi <= lo + 1e-3, us
    assert us[-1] < us[0] or arch == "xen-pv", us  # it does cost something where vCPUs are the bottleneck


def test_parallel_and_serial_runs_are_identical():
    jobs = [Job("xeon-2017", a, "cloud-mix", (), 0.004, 0.001, 3, tag=a) for a in ("xen-pv", "nitro", "sriov")]
    serial = run_jobs(jobs, workers=1)
    parallel = run_jobs(jobs, workers=2)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]  # noqa: E731
    assert strip(serial) == strip(parallel)


def test_every_architecture_runs_every_workload():
    from emulator.model import bundled
    for w in bundled("workload"):
        for a in ARCHITECTURES:
            r = run(host="xeon-2017", architecture=a, workload=w, duration_s=0.002, warmup_s=0.0005)
            assert 0 <= r.usable_fraction <= 1
