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
    # Two are reported by checks() but not asserted: "xen-pv in [0.60, 0.80]" and
    # "emulated < xen-pv". The bundled costs give xen-pv ~0.58 on cloud-mix, its 8-core
    # dom0 saturated by upstream netback's grant maps (martins2015), below emulated's ~0.76,
    # whose device model runs on the tenant's own cores (the README explains why, and where
    # on the I/O curve and across the clock reading of martins2015 0.70 lies); asserting
    # either would invite tuning the models to the folklore.
    c = checks(list(quick.values()))
    asserted = [k for k in c if not k.startswith("xen-pv in") and k != "emulated < xen-pv"]
    assert all(c[k] for k in asserted), {k: c[k] for k in asserted if not c[k]}


def test_xen_pv_loses_more_than_its_reserve(quick):
    # the reserve alone (8 of 72 threads) would leave 0.889; per-I/O work (traps into Xen,
    # dom0 back ends, copies, a saturated dom0) must cost clearly more than that
    u = quick["xen-pv"]["usable_fraction"]
    assert 0.3 <= u <= 64 / 72 - 0.05, u
    hc = quick["xen-pv"]["host_cycles"]
    assert hc["hypervisor"] > 0.01 and hc["backend"] > 0.05
    assert "exit" not in hc  # a PV guest makes no VM exits


def test_reserve_matches_what_aws_sold(quick):
    # aws-instances: i3.16xlarge sold 64 of i3.metal's 72 threads (88.9%), 488 of 512 GiB
    r = quick["xen-pv"]["reserve"]
    assert math.isclose(r["vcpu_share"], 64 / 72)
    assert quick["nitro"]["reserve"]["vcpu_share"] == 1.0


# Under common random numbers (one seed) the difference between two exit costs is
# nearly free of sampling noise where the vCPUs are the bottleneck: 0.001. Under xen-pv
# dom0 is the bottleneck and exits only fill otherwise idle vCPU time, so the runs
# decouple more: the paired difference between exit costs of 500 and 13500 measured
# +0.0020, -0.0015 and +0.0003 over seeds 1-3 (10 ms windows; the seed-to-seed standard
# deviation of the level is 0.006); 0.005 is about three of those differences' spread.
@pytest.mark.parametrize("arch", ["sriov", "xen-pv", "kvm-virtio", "emulated"])
def test_raising_an_exit_cost_never_raises_the_usable_fraction(arch):
    us = [run(host="xeon-2017", architecture=arch, workload="cloud-mix", sets=[f"exit_cycles={e}"],
              duration_s=0.01, warmup_s=0.003).usable_fraction for e in (500, 1550, 4500, 13500)]
    tol = 0.005 if arch == "xen-pv" else 1e-3
    for lo, hi in zip(us, us[1:]):
        assert hi <= lo + tol, us
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


def test_dom0_size_figure_claims_hold():
    # results/dom0-size.png on its quick grid (2, 8, 12, 24 reserved threads; one replication).
    # Operational analysis (Lazowska et al. 1984, ch. 5): a closed system's throughput is at
    # most min_k units_k / D_k. With demands D_k measured at the bundled 8 cores:
    # - below the balanced split dom0 binds: throughput is the bound to 1% (the demands per
    #   request are those of the measurement, dom0 being saturated at both) and grows in
    #   proportion to dom0's cores;
    # - above it the vCPUs bind, and the emulation sits up to 10% under the bound (never
    #   over it by more than 1%): with dom0 no longer saturated its notifications batch
    #   fewer packets, and the event deliveries, taken at once (they preempt), take no more
    #   than one notification covers, so each request raises more interrupt exits on the
    #   vCPUs than at 8 cores (3% under at 12 cores, 7% at 24);
    # - the best grid point is the one nearest the balanced split, and nothing beats nitro.
    from emulator.experiments.figures import dom0_bundled, dom0_size

    rows = dom0_size(quick=True, workers=1, replications=1)
    bundled = dom0_bundled()
    pv = {r["dom0_cores"]: r for r in rows if r["architecture"] == "xen-pv"}
    aws = {r["dom0_cores"]: r for r in rows if r["architecture"] == "xen-aws-2017"}
    nitro = next(r for r in rows if r["architecture"] == "nitro")
    cstar = pv[bundled]["balanced_cores"]
    assert 8 < cstar < 12
    for c, r in pv.items():
        x, bound = r["throughput_per_s"], r["bound_throughput_per_s"]
        assert x <= 1.01 * bound, c
        if c < cstar:
            assert r["bound_by"] == "dom0" and r["dom0_utilization"] >= 0.98
            assert x == pytest.approx(bound, rel=0.01), c
            assert x / c == pytest.approx(pv[bundled]["throughput_per_s"] / bundled, rel=0.01), c
        else:
            assert r["bound_by"] == "vcpu" and r["vcpu_utilization"] >= 0.98 and r["dom0_utilization"] < 0.98
            assert x >= 0.90 * bound, c
    best = max(pv, key=lambda c: pv[c]["usable_fraction"])
    assert best == min(pv, key=lambda c: abs(c - cstar))
    # xen-aws-2017's dom0 serves only EBS, which cloud-mix does not use: its reserve only idles,
    # so every reserved thread costs the same share and the bound holds to 0.5%
    assert all(aws[a]["usable_fraction"] > aws[b]["usable_fraction"] for a, b in zip(sorted(aws), sorted(aws)[1:]))
    assert all(r["usable_fraction"] == pytest.approx(r["bound_usable_fraction"], rel=0.005) for r in aws.values())
    assert all(nitro["usable_fraction"] > r["usable_fraction"] for r in [*pv.values(), *aws.values()])
    # a dom0 with no work balances nowhere; requests that cost nothing have no bound
    assert all(r["balanced_cores"] == "" for r in aws.values())
    from emulator.experiments.figures import dom0_bound

    assert dom0_bound({"x": 0.0}, {"x": 1}) == (math.inf, "")


def test_latency_breakdown_adds_up_and_says_where_the_time_goes():
    # results/latency-breakdown.png on its quick design (one replication): the parts, summed
    # from the per-stage table, give back the measured mean (the stage and flow sums are
    # over the same window; what differs is requests in flight at its edges: < 0.5%); bare
    # metal spends only the tenant's work and the wire; every architecture does the same
    # tenant work per request (2%: the mix's draws differ only by timing); only xen-pv waits
    # for a back end at this load (dom0 at ~91%), and emulation pays the most in exits.
    from emulator.experiments.figures import latency_breakdown

    rows = {r["architecture"]: r for r in latency_breakdown(quick=True, workers=1, replications=1)}
    parts = [k for k in rows["bare-metal"] if k.startswith(("wait_", "svc_")) and not k.endswith("_ci")]
    parts += ["wire_device", "delay"]
    for a, r in rows.items():
        assert abs(r["unaccounted_us"]) < 0.005 * r["mean_us"], a
        assert sum(r[k] for k in parts) == pytest.approx(r["mean_us"], rel=0.005), a
        assert r["svc_tenant"] == pytest.approx(rows["bare-metal"]["svc_tenant"], rel=0.02), a
    bare = rows["bare-metal"]
    assert all(bare[k] == 0 for k in parts if k not in ("svc_tenant", "wire_device"))
    assert [a for a, r in rows.items() if r["wait_backend"] > 1.0] == ["xen-pv"]
    assert max(rows, key=lambda a: rows[a]["svc_exit"]) == "emulated"
    assert rows["nitro"]["svc_card"] > 0 and rows["nitro"]["delay"] > 0 and rows["nitro"]["svc_exit"] == 0


def test_breakdown_weights_by_completions_and_knows_tenant_vcpus():
    # A request dropped on the way passed the stages before the drop but is in no class's
    # completions: weighting by the class, the parts still add up (dom0 with no queue slots
    # drops ~10% of xen-pv's requests here). A tenant's vCPUs are vcpu@TENANT: waiting for
    # them is waiting for a vCPU. A window with no completions has no breakdown.
    from emulator.experiments.figures import _think, breakdown, noisy_spec
    from emulator.runner import Job, run_job

    r = run_job(Job("xeon-2017", "xen-pv", "cloud-mix", ("workload.flows.0.clients=4096", _think(0.3, 2.09e6),
                                                          "architecture.resources.dom0.capacity=0"),
                    0.01, 0.004, 1, stages=True))
    assert r["flows"]["mix"]["dropped"] > 0.05 * r["flows"]["mix"]["completed"]
    assert abs(breakdown(r)["unaccounted_us"]) < 0.005 * r["flows"]["mix"]["latency_us"]["mean"]
    r = run_job(Job(None, None, None, (), 0.005, 0.001, 1, spec=noisy_spec("kvm-virtio"), stages=True))
    victim = next(k for k, v in r["flows"].items() if k.startswith("victim/") and not v["background"])
    p = breakdown(r, victim)
    assert p["wait_backend"] == 0.0 and p["wait_vcpu"] > 0
    r = run_job(Job("xeon-2017", "xen-pv", "cloud-mix", (), 5e-6, 0.0, 1, stages=True))
    assert r["flows"]["mix"]["completed"] == 0 and all(math.isnan(v) for v in breakdown(r).values())


def test_request_path_figure_is_the_trace_and_nothing_waits():
    # results/request-path.*: one get on an idle host per architecture, from the engine's
    # trace. One client: no stage waits, each stage starts where the one before it ended,
    # and the figures are those README and docs/teaching.md quote (xen-pv 15.16 us, nitro
    # 11.68, 17 and 7 stages on the get's path; xen-pv forks 3 stages after the wire)
    from emulator.experiments.figures import PATH_ARCHS, request_paths

    rows = request_paths()
    assert list(dict.fromkeys(r["architecture"] for r in rows)) == list(PATH_ARCHS)
    for a in PATH_ARCHS:
        get = [r for r in rows if r["architecture"] == a and r["request"] == "get"]
        assert all(r["wait_us"] == 0 for r in get)
        for prev, cur in zip(get, get[1:]):
            assert cur["enter_us"] == pytest.approx(prev["enter_us"] + prev["service_us"] + prev["delay_us"], abs=1e-6)
    total = {a: max(r["enter_us"] + r["service_us"] + r["delay_us"] for r in rows
                    if r["architecture"] == a and r["request"] == "get") for a in PATH_ARCHS}
    assert total["xen-pv"] == pytest.approx(13.763, abs=0.001) and total["nitro"] == pytest.approx(11.68, abs=0.01)
    assert sum(r["architecture"] == "xen-pv" and r["request"] == "get" for r in rows) == 17
    assert sum(r["architecture"] == "nitro" for r in rows) == 7
    assert [r["stage"] for r in rows if r["architecture"] == "xen-pv" and r["request"] == "forked"][0] == \
        "netback Tx response notify (hypercall)"
    assert not [r for r in rows if r["account"] == "exit" and r["architecture"] in ("bare-metal", "nitro", "sriov-posted")]
