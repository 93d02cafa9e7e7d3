"""The figure set of a paper or a lecture, each drawn from a CSV written here.

- **Hockey sticks**: throughput and p99 latency against offered load, per architecture.
  The load is a closed loop of many clients with exponential think times (so arrivals
  are close to Poisson below saturation and the queue stays bounded above it); the
  offered rate is clients / mean think time.
- **Latency CDFs** at one fixed offered load (half of bare metal's capacity).
- **Usable fraction against the cost of a VM exit**: every exit-type cost of the host
  (exit round trip, its indirect cost, the userspace exit, the interrupt exit) scaled
  together from the 2006-era to today's, with the sourced generations marked.
- **Noisy neighbour**: a lightly loaded victim's p99 latency as a neighbour on the same
  host sends more and more small packets. What the two share is what the architecture
  says: dom0 under Xen, the NIC and the card's cores under Nitro.
- **Interrupt moderation**: what throttling a device-assigned NIC's receive interrupt
  (ITR) buys back in CPU per request under exiting interrupts (``sriov``), and what it
  costs in latency, beside exitless interrupts (``sriov-posted``, ELI's answer) and bare
  metal, on one guest core at a fixed offered load.
- **Where a request's time goes**: at the latency CDFs' load, each architecture's mean
  request latency split by stage: service by the category its cycles are charged to,
  waiting for a vCPU, waiting for a back end (dom0, the card, an I/O thread), the wire and
  devices, and pure delays; the parts are summed from the per-stage table, and what they
  leave of the measured mean is reported (``unaccounted_us``).
- **dom0's size**: the usable fraction as the reserve that dom0 runs on grows from 1 to 32
  of xeon-2017's 72 threads (the vCPUs sold shrink with it), under xen-pv (netback and
  blkback in dom0) and xen-aws-2017 (networking by SR-IOV, only EBS through dom0), with
  nitro and bare metal for reference. Beside each curve, the bound of operational analysis
  (Lazowska et al., *Quantitative System Performance*, 1984, ch. 5): throughput is at most
  min(units_k / D_k) over the resources k, D_k being the busy time a request costs on k,
  measured in the bundled run (8 cores), so away from 8 it is an estimate (the demands shift
  with load: a dom0 with slack batches less); the balanced split, where dom0 and the vCPUs
  bind together, is c* = T D_dom0 / (D_dom0 + D_vcpu) of the T threads.
- **Polling or interrupts**: the XDP paper's testbed (validation's inline E5-1650 v4 with
  intel_idle's C-states) across packet rates: an interrupt-driven XDP core that sleeps
  between packets, the same core polling 200 us before it sleeps (KVM's halt-polling
  ceiling) and a DPDK core that polls, latency with the closed forms (M/D/1 with setup
  times, M/D/1) and what each costs in core time.

Every point is replicated (independent seeds; the replication index's seed is shared
across points, i.e. common random numbers) and carries a t-based 95% confidence interval.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..model import is_vcpu, load, load_experiment
from ..provenance import model_hashes, write_csv
from ..provenance import provenance as _provenance
from ..result import Pool, categories, tail_from_json
from ..runner import Cache, Job, run_jobs
from ..stats import mean_ci, replication_seeds, sectioned, thin_tail

HOST = "xeon-2017"
WORKLOAD = "cloud-mix"
SEED = 1
HOCKEY_ARCHS = ("bare-metal", "nitro", "sriov", "kvm-virtio", "xen-pv", "emulated")
EXIT_ARCHS = ("nitro", "sriov-posted", "sriov", "xen-aws-2017", "kvm-virtio", "xen-pv", "emulated")
CLIENTS = 4096
LOADS = (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3)
LOADS_QUICK = (0.2, 0.6, 0.9, 1.2)
CDF_LOAD = 0.5

# the host's exit-type costs (its [params]) scaled together; the round trip is the x axis
EXIT_KEYS = ("exit_cycles", "exit_indirect_cycles", "userspace_exit_cycles", "irq_exit_cycles")


def exit_params() -> dict[str, float]:
    """HOST's exit-type costs as its model file gives them."""
    params = load("host", HOST).params
    return {k: params[k] for k in EXIT_KEYS}


EXIT_SWEEP = (500, 800, 1064, 1544, 2000, 3000, 4000, 6000, 9000, 13000)
EXIT_SWEEP_QUICK = (800, 1544, 4000, 13000)
# where hardware generations sit (round trip, cycles); sources in models/sources.toml
GENERATIONS = (
    ("2024 (cpuid, kvm list)", 1064, "christopherson2024: 1018-1110"),
    ("2020 Skylake-SP", 1544, "li2020: 1529-1559"),
    ("2011 Nehalem", 2000, "landau2011: ~2000 direct"),
    ("2006 first VT-x", 4000, "assumption: twice Nehalem's, as Penryn cut transition times 25-75% (vmblog2007) "
                              "and Adams and Agesen 2006 found first-generation exits too costly to win"),
    ("nested (L2) exit", 13000, "bonzini2019: cpuid ~13k"),
)


def bare_capacity(*, quick: bool = False, workers: int | None = None, progress: bool = False,
                  cache: Cache | None = None) -> float:
    """Bare metal's saturated throughput on HOST + WORKLOAD (requests/s): the headline's own
    run (a cache hit when the headline ran first). A figure's load x offers x times it."""
    from .headline import WINDOW, WINDOW_QUICK
    dur, warm = WINDOW_QUICK if quick else WINDOW
    [r] = run_jobs([Job(HOST, "bare-metal", WORKLOAD, (), dur, warm, SEED, tag="bare-metal")], workers=1,
                   progress=progress, desc="bare-metal capacity", cache=cache)
    return float(r["throughput_per_s"])


def _think(load: float, capacity: float) -> str:
    mean_us = CLIENTS / (load * capacity) * 1e6
    return f'workload.flows.0.think_us={{ dist = "exp", mean = {mean_us:.6g} }}'


def _offered(load: float, capacity: float) -> tuple[str, str]:
    """The overrides that offer ``load`` x ``capacity`` (bare metal's): CLIENTS clients,
    each thinking an exponential time between requests."""
    return f"workload.flows.0.clients={CLIENTS}", _think(load, capacity)


def _window(quick: bool) -> tuple[float, float]:
    return (0.01, 0.004) if quick else (0.03, 0.01)


def _seeds(quick: bool, replications: int | None) -> list[int]:
    """Each point's replication seeds: ``replications`` of them, by default 3 (2 when quick)."""
    return replication_seeds(SEED, replications or (2 if quick else 3))


def _ci_rows(results: list[dict[str, Any]], key_of: Any, measures: dict[str, Any],
             tails: dict[str, tuple[Any, ...]] | None = None) -> list[dict[str, Any]]:
    """One row per point: each measure's mean and t-interval half-width over the point's
    replications, every one of which must give it a finite value (bar a percentile flagged
    thin). ``tails`` names the percentile measures, each with the function giving a run's
    completions of the flow it is read from, its quantile and, optionally, the function
    giving a run's latency histogram of that flow (:meth:`Result.tails`). ``NAME_thin_tail``
    is 1 when some replication had too few requests beyond it (its bar is not to be
    trusted). With the histograms, the percentile is that of the replications' requests
    together and its interval is by sectioning (:func:`stats.sectioned`, as ``vemu run -n``,
    sweep and compare give it: the runs' own percentiles are each biased low and skewed, so a
    t interval over them is too narrow near saturation), written as ``NAME_lo`` and
    ``NAME_hi`` (``NAME_ci`` is the wider side), and ``NAME_biased`` is 1 when the mean of the
    runs' own percentiles lies outside it (each run too short for that tail)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(key_of(r), []).append(r)
    rows = []
    for key, rs in groups.items():
        row: dict[str, Any] = {"key": key, "replications": len(rs)}
        for name, (completed, q, *_) in (tails or {}).items():
            row[f"{name}_thin_tail"] = int(any(thin_tail(completed(r), q) for r in rs))
        for name, f in measures.items():
            ci = mean_ci([f(r) for r in rs])
            # mean_ci skips non-finite values: only a percentile already flagged as resting on
            # too few requests (a run with none gives NaN) may have them; anything else would
            # claim replications the point does not have
            if ci.n != len(rs) and not row.get(f"{name}_thin_tail"):
                raise RuntimeError(f"figure point {key}: {name} is not a finite number in {len(rs) - ci.n} of its "
                                   f"{len(rs)} replications (a window too short for it?)")
            row[name] = ci.mean
            row[f"{name}_ci"] = ci.half_width
            _, q, *tail_of = (tails or {}).get(name, (None, None))
            if tail_of:
                pool = Pool()
                for i, r in enumerate(rs):
                    pool.add({name: tail_of[0](r)}, part=i)
                iv, biased = sectioned(pool, name, q, ci)
                row.update({name: iv.mean, f"{name}_ci": iv.half_width, f"{name}_lo": iv.lo, f"{name}_hi": iv.hi,
                            f"{name}_biased": int(biased) if len(rs) > 1 else math.nan})
        rows.append(row)
    return rows


def _tail(flow: str) -> Any:
    """A run's latency histogram of ``flow`` (a job run with ``tails``)."""
    return lambda r: tail_from_json(r["latency_tails"][flow])


def hockey(*, quick: bool = False, workers: int | None = None, progress: bool = False,
           cache: Cache | None = None, replications: int | None = None,
           capacity: float | None = None) -> list[dict[str, Any]]:
    cap = capacity or bare_capacity(quick=quick, workers=workers, progress=progress, cache=cache)
    dur, warm = _window(quick)
    seeds = _seeds(quick, replications)
    loads = LOADS_QUICK if quick else LOADS
    # at the CDFs' load the runs also keep their stage tables: the latency breakdown's runs,
    # which then come from the cache
    jobs = [Job(HOST, a, WORKLOAD, _offered(x, cap), dur, warm, s, tag=(a, x, i),
                stages=x == CDF_LOAD, tails=True) for a in HOCKEY_ARCHS for x in loads for i, s in enumerate(seeds)]
    res = run_jobs(jobs, workers=workers, progress=progress, desc="hockey sticks", cache=cache)
    rows = _ci_rows(res, lambda r: (r["tag"][0], r["tag"][1]), {
        "throughput_per_s": lambda r: r["throughput_per_s"],
        "p99_us": lambda r: r["flows"]["mix"]["latency_us"]["p99"],
        "mean_us": lambda r: r["flows"]["mix"]["latency_us"]["mean"],
        "usable_fraction": lambda r: r["usable_fraction"],
    }, tails={"p99_us": (lambda r: r["flows"]["mix"]["completed"], 0.99, _tail("mix"))})
    for row in rows:
        a, x = row.pop("key")
        row.update(architecture=a, load=x, offered_per_s=x * cap)
    return rows


def cdfs(*, quick: bool = False, workers: int | None = None, progress: bool = False,
         cache: Cache | None = None, capacity: float | None = None) -> list[dict[str, Any]]:
    cap = capacity or bare_capacity(quick=quick, workers=workers, progress=progress, cache=cache)
    dur, warm = _window(quick)
    jobs = [Job(HOST, a, WORKLOAD, _offered(CDF_LOAD, cap), dur * 2, warm, SEED,
                tag=a) for a in HOCKEY_ARCHS]
    res = run_jobs(jobs, workers=workers, progress=progress, desc="latency CDFs", cache=cache)
    return [{"architecture": r["tag"], "quantile": q, "latency_us": v,
             "thin_tail": int(thin_tail(r["flows"]["mix"]["completed"], q))}
            for r in res for q, v in r["flows"]["mix"]["latency_cdf_us"]]


def exit_costs(*, quick: bool = False, workers: int | None = None, progress: bool = False,
               cache: Cache | None = None, replications: int | None = None) -> list[dict[str, Any]]:
    dur, warm = _window(quick)
    seeds = _seeds(quick, replications)
    jobs = []
    bundled = exit_params()
    for e in (EXIT_SWEEP_QUICK if quick else EXIT_SWEEP):
        scale = e / bundled["exit_cycles"]
        sets = tuple(f"{k}={round(v * scale)}" for k, v in bundled.items())
        for a in EXIT_ARCHS:
            for i, s in enumerate(seeds):
                jobs.append(Job(HOST, a, WORKLOAD, sets, dur, warm, s, tag=(a, e, i)))
    res = run_jobs(jobs, workers=workers, progress=progress, desc="exit costs", cache=cache)
    rows = _ci_rows(res, lambda r: (r["tag"][0], r["tag"][1]), {
        "usable_fraction": lambda r: r["usable_fraction"],
        "exit_share": lambda r: r["host_cycles"].get("exit", 0.0),
    })
    for row in rows:
        a, e = row.pop("key")
        row.update(architecture=a, exit_cycles=e)
    return rows


NOISY_ARCHS = ("nitro", "sriov-posted", "sriov", "kvm-virtio", "xen-pv")
NEIGHBOUR_RATES = (0.1e6, 0.5e6, 1.0e6, 1.5e6, 2.0e6, 2.5e6, 3.0e6)  # echoes/s offered (2 packets each)
NEIGHBOUR_RATES_QUICK = (0.1e6, 1.5e6, 3.0e6)
NEIGHBOUR_CLIENTS = 1024


def noisy_spec(architecture: str) -> dict[str, Any]:
    """A victim (kv-cache on 8 vCPUs, lightly loaded) beside a noisy neighbour (small-packet
    echo on 32 vCPUs) on one xeon-2017 host; what they share is the architecture's."""
    return {"experiment": {"host": HOST, "architecture": architecture, "tenants": [
        {"name": "victim", "workload": "kv-cache", "vcpus": 8},
        {"name": "neighbour", "workload": "packet-echo", "vcpus": 32},
    ]}}


def noisy_neighbour(*, quick: bool = False, workers: int | None = None, progress: bool = False,
                    cache: Cache | None = None, replications: int | None = None) -> list[dict[str, Any]]:
    dur, warm = _window(quick)
    seeds = _seeds(quick, replications)
    victim = ("tenants.victim.workload.flows.0.clients=32",
              'tenants.victim.workload.flows.0.think_us={ dist = "exp", mean = 200 }')
    jobs = []
    for a in NOISY_ARCHS:
        for rate in (NEIGHBOUR_RATES_QUICK if quick else NEIGHBOUR_RATES):
            think = NEIGHBOUR_CLIENTS / rate * 1e6
            sets = victim + (f"tenants.neighbour.workload.flows.0.clients={NEIGHBOUR_CLIENTS}",
                             f'tenants.neighbour.workload.flows.0.think_us={{ dist = "exp", mean = {think:.6g} }}',
                             "tenants.neighbour.workload.params.work_cycles=5000")
            for i, sd in enumerate(seeds):
                jobs.append(Job(None, None, None, sets, dur, warm, sd, tag=(a, rate, i), spec=noisy_spec(a),
                                tails=True))
    res = run_jobs(jobs, workers=workers, progress=progress, desc="noisy neighbour", cache=cache)

    def victim_name(r: dict[str, Any]) -> str:
        return next(k for k, v in r["flows"].items() if k.startswith("victim/") and not v["background"])

    def victim_flow(r: dict[str, Any]) -> dict[str, Any]:
        return r["flows"][victim_name(r)]

    def neighbour_flow(r: dict[str, Any]) -> dict[str, Any]:
        return next(v for k, v in r["flows"].items() if k.startswith("neighbour/") and not v["background"])

    rows = _ci_rows(res, lambda r: (r["tag"][0], r["tag"][1]), {
        "victim_p99_us": lambda r: victim_flow(r)["latency_us"]["p99"],
        "victim_mean_us": lambda r: victim_flow(r)["latency_us"]["mean"],
        "victim_throughput_per_s": lambda r: victim_flow(r)["throughput_per_s"],
        "neighbour_packets_per_s": lambda r: 2 * neighbour_flow(r)["throughput_per_s"],
    }, tails={"victim_p99_us": (lambda r: victim_flow(r)["completed"], 0.99,
                                lambda r: _tail(victim_name(r))(r))})
    for row in rows:
        a, rate = row.pop("key")
        row.update(architecture=a, neighbour_offered_packets_per_s=2 * rate)
    return rows


# Interrupt moderation: one 2.3 GHz guest core (as ELI's per-core figures), kv-cache at a fixed
# offered rate of ~2/3 of sriov's one-core capacity (121k gets/s, results/validation.md); many
# clients with long exponential think times, so arrivals are close to Poisson and the offered
# rate does not fall as latency grows.
MOD_CLIENTS = 1024
MOD_RATE = 8e4  # gets/s offered
MOD_THROTTLES = (0.0, 5.0, 10.0, 25.0, 50.0, 125.0, 250.0)  # us; 50, 125, 250 = 20,000, 8,000, 4,000/s: the Intel VF drivers' rates (linux-igbvf, linux-ixgbevf)
MOD_THROTTLES_QUICK = (0.0, 25.0, 125.0)
MOD_REFERENCES = ("sriov-posted", "bare-metal")


def moderation(*, quick: bool = False, workers: int | None = None, progress: bool = False,
               cache: Cache | None = None, replications: int | None = None) -> list[dict[str, Any]]:
    from .validation import sriov_itr_sets

    dur, warm = _window(quick)
    seeds = _seeds(quick, replications)
    base = ("host.cores=1", f"workload.flows.0.clients={MOD_CLIENTS}",
            f'workload.flows.0.think_us={{ dist = "exp", mean = {MOD_CLIENTS / MOD_RATE * 1e6:.6g} }}')
    jobs = []
    for i, sd in enumerate(seeds):
        for g in (MOD_THROTTLES_QUICK if quick else MOD_THROTTLES):
            sets = base + sriov_itr_sets(1e6 / g if g > 0 else None)
            jobs.append(Job(HOST, "sriov", "kv-cache", sets, dur, warm, sd, tag=("sriov", g, i), tails=True))
        for a in MOD_REFERENCES:
            jobs.append(Job(HOST, a, "kv-cache", base, dur, warm, sd, tag=(a, 0.0, i), tails=True))
    res = run_jobs(jobs, workers=workers, progress=progress, desc="interrupt moderation", cache=cache)
    ghz = load("host", HOST).ghz

    def per_req(r: dict[str, Any], cats: tuple[str, ...] | None) -> float:
        hc = r["host_cycles"]
        share = 1.0 - hc.get("idle", 0.0) - hc.get("reserved_idle", 0.0) if cats is None else sum(hc.get(c, 0.0) for c in cats)
        return share * ghz * 1e9 / r["throughput_per_s"]  # one host core

    rows = _ci_rows(res, lambda r: (r["tag"][0], r["tag"][1]), {
        "cycles_per_request": lambda r: per_req(r, None),
        "exit_cycles_per_request": lambda r: per_req(r, ("exit",)),
        "mean_us": lambda r: r["flows"]["gets"]["latency_us"]["mean"],
        "p99_us": lambda r: r["flows"]["gets"]["latency_us"]["p99"],
        "throughput_per_s": lambda r: r["throughput_per_s"],
    }, tails={"p99_us": (lambda r: r["flows"]["gets"]["completed"], 0.99, _tail("gets"))})
    for row in rows:
        a, g = row.pop("key")
        row.update(architecture=a, throttle_us=g, interrupts_per_s_cap=(1e6 / g if g > 0 else 0.0))
    return rows


# Polling or interrupts: Poisson packet streams through one XDP core (interrupts, C-states)
# and one DPDK core (polling), each point long enough for ~WAKE_PACKETS packets.
WAKE_RATES = (1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7)  # packets/s
WAKE_RATES_QUICK = (1e3, 1e5, 1e7)
WAKE_PACKETS = 20_000
WAKE_PATHS = {"xdp_irq": "XDP, interrupts (core sleeps)", "xdp_haltpoll": "XDP, core polls 200 us before it sleeps",
              "dpdk_poll": "DPDK, polling"}
HALT_POLL_US = 200.0  # linux-haltpoll: KVM's halt-polling ceiling


def _wake_spec(path: str, rate: float) -> dict[str, Any]:
    from .validation import xdp_experiment

    spec = xdp_experiment("dpdk" if path == "dpdk_poll" else "xdp", {"arrival": "poisson", "rate_per_s": rate})
    if path == "xdp_haltpoll":
        spec["host"]["halt_poll_us"] = HALT_POLL_US
    return spec


def wake_theory(path: str, rate: float) -> float:
    """The closed-form mean latency (us) of a packet on `path` of the XDP testbed at `rate`
    packets/s: the wire (M/D/1: a 64 B frame's 84 B on 100 Gb/s), then the core: M/D/1 with
    setup times for the XDP core (its wake-ups from intel_idle's states) or M/D/1 for the
    polling DPDK core. The core is treated as seeing Poisson arrivals: the wire ahead of it,
    at most ~7% loaded here, barely spaces them."""
    from .. import theory

    exp = load_experiment(_wake_spec(path, rate))
    lam = rate / 1e6  # per us
    wire = (64 + exp.host.devices[0].overhead_bytes) * 8 / (exp.host.devices[0].gbps * 1e3)  # us
    cycles = exp.architecture.params["dpdk_cycles" if path == "dpdk_poll" else "xdp_cycles"]
    svc = cycles / (exp.host.ghz * 1e3)  # us
    t = wire + theory.mg1_wait(lam, wire, wire * wire) + svc
    if path == "dpdk_poll":
        return t + theory.mg1_wait(lam, svc, svc * svc)
    d1, d2 = theory.setup_moments(lam, [(st.exit_us, st.residency_us) for st in exp.host.idle_states],
                                  exp.host.halt_poll_us)
    return t + theory.setup_wait(lam, svc, svc * svc, d1, d2)


def wakeups(*, quick: bool = False, workers: int | None = None, progress: bool = False,
            cache: Cache | None = None, replications: int | None = None) -> list[dict[str, Any]]:
    seeds = _seeds(quick, replications)
    packets = WAKE_PACKETS // (10 if quick else 1)
    jobs = []
    for i, sd in enumerate(seeds):
        for rate in (WAKE_RATES_QUICK if quick else WAKE_RATES):
            for path in WAKE_PATHS:
                spec = _wake_spec(path, rate)
                dur = packets / rate
                jobs.append(Job(None, None, None, (), dur, dur / 10, sd, tag=(path, rate, i), spec=spec, tails=True))
    res = run_jobs(jobs, workers=workers, progress=progress, desc="polling or interrupts", cache=cache)

    def core(r: dict[str, Any]) -> dict[str, Any]:
        return r["resources"]["pmd" if r["tag"][0] == "dpdk_poll" else "vcpu"]

    def share(r: dict[str, Any], cat: str) -> float:
        # the path's own core, out of the testbed's two: in an XDP run the DPDK core has no
        # packets and polls all along (half the host's `poll`; the rest is the XDP core's
        # halt-polling); in a DPDK run the XDP core has nothing to do, so no `wake`
        h = r["host_cycles"].get(cat, 0.0)
        if r["tag"][0] == "dpdk_poll":
            return 0.0 if cat == "wake" else 2 * h
        assert r["resources"]["pmd"]["utilization"] == 0.0
        return 2 * (h - 0.5) if cat == "poll" else 2 * h

    rows = _ci_rows(res, lambda r: (r["tag"][0], r["tag"][1]), {
        "mean_us": lambda r: r["flows"]["pkts"]["latency_us"]["mean"],
        "p99_us": lambda r: r["flows"]["pkts"]["latency_us"]["p99"],
        "work_share": lambda r: share(r, "tenant"),
        "wake_share": lambda r: share(r, "wake"),
        "poll_share": lambda r: share(r, "poll"),
        "woken_fraction": lambda r: core(r).get("wakeups", 0) / max(1, core(r)["served"]),
    }, tails={"p99_us": (lambda r: r["flows"]["pkts"]["completed"], 0.99, _tail("pkts"))})
    for row in rows:
        path, rate = row.pop("key")
        row.update(path=path, packets_per_s=rate, theory_mean_us=wake_theory(path, rate))
    return sorted(rows, key=lambda r: (r["path"], r["packets_per_s"]))


# Where a request's time goes: the latency CDFs' load, the hockey sticks' architectures
BREAKDOWN_WAITS = ("wait_vcpu", "wait_backend", "wait_preempted")


def breakdown(r: dict[str, Any], flow: str = "mix") -> dict[str, float]:
    """A run's mean latency of ``flow`` in parts (µs), from its per-stage table: per stage,
    wait + service + delay, weighted by its request class's share of the flow's
    completions (each request of a class passes each of its stages once; a request
    dropped on the way, or a forked path's detached work, is not in any). On a cpu
    resource the service goes to the stage's account (``svc_CATEGORY``), the time its
    service spent suspended by preemption to ``wait_preempted`` and the rest of the wait to
    ``wait_vcpu`` (a wake-up from an idle state included) or ``wait_backend``; on a link
    or device both go to ``wire_device``; delays to ``delay``. ``unaccounted_us`` is the
    measured mean less the parts: what requests in flight at the window's edges make of
    the difference (the tests hold it under 0.5%). A flow with no completions has none."""
    f = r["flows"][flow]
    done, classes = f["completed"], f["classes"]
    parts: dict[str, float] = {"wait_vcpu": 0.0, "wait_backend": 0.0, "wait_preempted": 0.0, "wire_device": 0.0,
                               "delay": 0.0}
    if not done:
        return {k: math.nan for k in parts} | {"unaccounted_us": math.nan}
    kinds = {k: v["kind"] for k, v in r["resources"].items()}
    for s in r["stages"]:
        if s["flow"] != flow or not classes.get(s["class"]) or not s["completed"]:
            continue
        w = classes[s["class"]] / done
        parts["delay"] += s["delay_us"] * w
        if s["resource"] is None:
            continue
        if kinds[s["resource"]] == "cpu":
            held = s.get("mean_preempted_us", 0.0)
            parts["wait_preempted"] += held * w
            parts["wait_vcpu" if is_vcpu(s["resource"]) else "wait_backend"] += (s["mean_wait_us"] - held) * w
            key = f"svc_{s['account']}"
            parts[key] = parts.get(key, 0.0) + s["mean_service_us"] * w
        else:
            parts["wire_device"] += (s["mean_wait_us"] + s["mean_service_us"]) * w
    parts["unaccounted_us"] = f["latency_us"]["mean"] - sum(parts.values())
    return parts


def _half_load_runs(desc: str, *, quick: bool, workers: int | None, progress: bool, cache: Cache | None,
                    replications: int | None, capacity: float | None) -> list[dict[str, Any]]:
    """The runs the latency breakdown and the class latencies read: every HOCKEY_ARCHS
    architecture at CDF_LOAD of bare metal's capacity, with the per-stage table (one set of
    jobs: the second figure's are cache hits)."""
    cap = capacity or bare_capacity(quick=quick, workers=workers, progress=progress, cache=cache)
    dur, warm = _window(quick)
    seeds = _seeds(quick, replications)
    jobs = [Job(HOST, a, WORKLOAD, _offered(CDF_LOAD, cap), dur, warm, s,
                tag=(a, i), stages=True, tails=True) for a in HOCKEY_ARCHS for i, s in enumerate(seeds)]
    return run_jobs(jobs, workers=workers, progress=progress, desc=desc, cache=cache)


def latency_breakdown(*, quick: bool = False, workers: int | None = None, progress: bool = False,
                      cache: Cache | None = None, replications: int | None = None,
                      capacity: float | None = None) -> list[dict[str, Any]]:
    res = _half_load_runs("latency breakdown", quick=quick, workers=workers, progress=progress, cache=cache,
                          replications=replications, capacity=capacity)
    runs = [{"tag": r["tag"], "mean_us": r["flows"]["mix"]["latency_us"]["mean"], **breakdown(r)} for r in res]
    waits = [k for k in BREAKDOWN_WAITS if any(p[k] > 0 for p in runs)]
    services = [f"svc_{c}" for c in categories([k[4:] for k in p if k.startswith("svc_")] for p in runs)]
    keys = ["mean_us", *waits, *services, "wire_device", "delay", "unaccounted_us"]
    rows = _ci_rows(runs, lambda p: p["tag"][0], {k: (lambda p, k=k: p.get(k, 0.0)) for k in keys})
    for row in rows:
        row["architecture"] = row.pop("key")
    return rows


def class_latency(*, quick: bool = False, workers: int | None = None, progress: bool = False,
                  cache: Cache | None = None, replications: int | None = None,
                  capacity: float | None = None) -> list[dict[str, Any]]:
    """Each request class's latency under each architecture, in the latency breakdown's runs
    (the same jobs: cache hits after it): mean and p99 with their intervals over the
    replications, and the mean against bare metal's for the same class."""
    res = _half_load_runs("class latency", quick=quick, workers=workers, progress=progress, cache=cache,
                          replications=replications, capacity=capacity)
    runs = [{"key": (r["tag"][0], cname), "mean_us": lat["mean"], "p99_us": lat["p99"],
             "completed": r["flows"]["mix"]["classes"][cname], "tail": _tail(f"mix/{cname}")(r)}
            for r in res for cname, lat in r["flows"]["mix"]["class_latency_us"].items()]
    rows = _ci_rows(runs, lambda p: p["key"], {"mean_us": lambda p: p["mean_us"], "p99_us": lambda p: p["p99_us"]},
                    tails={"p99_us": (lambda p: p["completed"], 0.99, lambda p: p["tail"])})
    bare = {row["key"][1]: row["mean_us"] for row in rows if row["key"][0] == "bare-metal"}
    out = []
    for row in rows:
        a, cname = row.pop("key")
        out.append({"architecture": a, "class": cname, **row, "mean_vs_bare_metal": row["mean_us"] / bare[cname]})
    return out


# dom0's size: the reserve (and dom0, which gets all of it) from 1 to 32 of xeon-2017's threads
DOM0_ARCHS = ("xen-pv", "xen-aws-2017")
DOM0_REFERENCES = ("nitro", "bare-metal")
DOM0_CORES = (1, 2, 4, 6, 8, 10, 11, 12, 13, 14, 16, 20, 24, 32)
DOM0_CORES_QUICK = (2, 8, 12, 24)


def dom0_bundled() -> int:
    """The reserve (dom0's cores) that DOM0_ARCHS bundle (8: aws-instances, i3's 64 of 72
    threads sold); the figure's bound is measured there, so they must agree."""
    cores = {a: load("architecture", a).reserve_cores for a in DOM0_ARCHS}
    if len(set(cores.values())) != 1:
        raise RuntimeError(f"the dom0-size figure needs one bundled reserve, got {cores}")
    return int(next(iter(cores.values())))


def _dom0_sets(cores: int) -> tuple[str, ...]:
    return (f"architecture.reserve.cores={cores}", f"architecture.resources.dom0.cores={cores}")


def _demands(r: dict[str, Any]) -> dict[str, float]:
    """Busy time per completed request on each resource (its demand D_k, in unit-seconds:
    utilization x units / throughput), from one run's result dict."""
    x = r["throughput_per_s"]
    if not x > 0:
        raise RuntimeError(f"run {r.get('tag')}: no request completed, so no demand per request can be measured")
    return {k: v["utilization"] * v["units"] / x for k, v in r["resources"].items()}


def dom0_bound(demands: dict[str, float], units: dict[str, int]) -> tuple[float, str]:
    """The asymptotic bound on throughput of a closed system, min_k units_k / D_k, and the
    resource that sets it: no resource can be busier than all its units."""
    caps = {k: units[k] / d for k, d in demands.items() if d > 0}
    if not caps:  # requests that cost no resource anything: nothing bounds them
        return math.inf, ""
    k = min(caps, key=caps.__getitem__)
    return caps[k], k


def dom0_size(*, quick: bool = False, workers: int | None = None, progress: bool = False,
              cache: Cache | None = None, replications: int | None = None) -> list[dict[str, Any]]:
    dur, warm = _window(quick)
    seeds = _seeds(quick, replications)
    grid = DOM0_CORES_QUICK if quick else DOM0_CORES
    threads = load("host", HOST).cores
    bundled = dom0_bundled()

    def scaled(c: int) -> tuple[float, float]:
        # below the bundled size dom0 binds and the throughput falls as c / 8, so the closed
        # loop's cycle (clients / throughput: ~7 ms at one core) grows as 8 / c: the window
        # and its warm-up grow with it and cover as many cycles as at 8 (with a fixed window
        # one core read 0.7% under the bound, the loop still ringing from its synchronised start)
        k = max(1.0, bundled / c)
        return dur * k, warm * k

    jobs = [Job(HOST, a, WORKLOAD, _dom0_sets(c), *scaled(c), s, tag=(a, c, i))
            for a in DOM0_ARCHS for c in sorted({*grid, bundled}) for i, s in enumerate(seeds)]
    jobs += [Job(HOST, a, WORKLOAD, (), dur, warm, s, tag=(a, 0, i))
             for a in DOM0_REFERENCES for i, s in enumerate(seeds)]
    res = run_jobs(jobs, workers=workers, progress=progress, desc="dom0 size", cache=cache)
    # each architecture's demands, measured where it is bundled (means over the replications)
    demand, units, tenant = {}, {}, {}
    for a in DOM0_ARCHS:
        runs = [r for r in res if r["tag"][:2] == (a, bundled)]
        ds = [_demands(r) for r in runs]
        demand[a] = {k: sum(d[k] for d in ds) / len(ds) for k in ds[0]}
        units[a] = {k: v["units"] for k, v in runs[0]["resources"].items()}
        # the host share of tenant work per request/s: usable fraction = throughput x this
        tenant[a] = sum(r["host_cycles"]["tenant"] / r["throughput_per_s"] for r in runs) / len(runs)
    rows = _ci_rows([r for r in res if r["tag"][1] in grid or r["tag"][0] in DOM0_REFERENCES],
                    lambda r: (r["tag"][0], r["tag"][1]), {
        "usable_fraction": lambda r: r["usable_fraction"],
        "throughput_per_s": lambda r: r["throughput_per_s"],
        "dom0_utilization": lambda r: r["resources"]["dom0"]["utilization"] if "dom0" in r["resources"] else 0.0,
        "vcpu_utilization": lambda r: r["resources"]["vcpu"]["utilization"],
        "reserved_idle": lambda r: r["host_cycles"].get("reserved_idle", 0.0),
    })
    for row in rows:
        a, c = row.pop("key")
        row.update(architecture=a, dom0_cores=c if a in DOM0_ARCHS else "", sold_threads=threads - c)
        if a in DOM0_ARCHS:
            u = units[a] | {"dom0": c, "vcpu": threads - c}
            x, k = dom0_bound(demand[a], u)
            dd, dv = demand[a]["dom0"], demand[a]["vcpu"]
            row.update(bound_throughput_per_s=x, bound_usable_fraction=x * tenant[a], bound_by=k,
                       # no split balances a dom0 that does no work: it never binds
                       balanced_cores=threads * dd / (dd + dv) if dd > 0 else "")
        else:
            row.update(bound_throughput_per_s="", bound_usable_fraction="", bound_by="", balanced_cores="")
    return rows


PATH_ARCHS = ("bare-metal", "nitro", "sriov-posted", "sriov", "kvm-virtio", "xen-aws-2017", "xen-pv", "emulated")
PATH_WORKLOAD = "kv-cache"


def request_paths() -> list[dict[str, Any]]:
    """One key-value get on an idle host (one client) under each architecture, stage by
    stage, with the work it forks: what `vemu run --trace 1` prints, as rows. Times are
    microseconds from the get's first stage. Deterministic: no request waits for another."""
    from ..model import load_experiment
    from ..simulation import Simulation
    from .._core import NO_PARENT

    rows: list[dict[str, Any]] = []
    for a in PATH_ARCHS:
        exp = load_experiment(host=HOST, architecture=a, workload=PATH_WORKLOAD,
                              sets=("workload.flows.0.clients=1",), duration_s=0.0002, warmup_s=0.0, seed=SEED)
        res = Simulation(exp, trace_requests=8).run()
        info, cpu = res.compiled.stages, {r.name for r in res.compiled.resources if r.kind == "cpu"}
        recs = [r for r in res.trace if int(r["request"]) == 0 or int(r["parent"]) == 0]
        if res.compiled.flows[int(recs[0]["flow"])] != "gets":  # request 0 is the get (flow 0 issues first)
            raise RuntimeError(f"{a}: the first traced request is not a get")
        t0 = int(next(r["enter"] for r in recs if int(r["request"]) == 0))
        for r in recs:
            g = info[int(r["stage"])]
            enter, start, end, leave = ((int(r[k]) - t0) / 1e6 for k in ("enter", "start", "end", "leave"))
            held = int(r["preempted"]) / 1e6  # suspended by preemption: wait, not service
            rows.append({"architecture": a, "request": "forked" if int(r["parent"]) != NO_PARENT else "get",
                         "stage": g.name, "resource": g.resource or "", "account": g.category if g.resource in cpu else "",
                         "enter_us": enter, "wait_us": start - enter + held, "service_us": end - start - held,
                         "delay_us": leave - end})
    return rows


def _draw(figure: tuple[str, Path, Path, tuple[Any, ...], dict[str, Any]]) -> None:
    from .. import plot

    name, csv, png, args, kwargs = figure
    getattr(plot, name)(csv, png, *args, **kwargs)


def draw(figures: list[tuple[str, Path, Path, tuple[Any, ...], dict[str, Any]]], *, workers: int | None = None) -> None:
    """Draws each figure (a plot function's name in emulator.plot, its CSV, its PNG, more
    arguments) from its CSV, on a pool of processes as the runs are: drawing (PNG and SVG)
    is most of what the figure set costs after its runs, and each figure is independent."""
    from ..runner import pool_run

    pool_run(_draw, figures, workers, lambda i, _: None)


def _write(out: Path, name: str, rows: list[dict[str, Any]], first: list[str], prov: dict[str, Any]) -> Path:
    rest = [k for k in rows[0] if k not in first]
    flags = [k for k in rest if k.endswith(("_thin_tail", "_biased"))]  # the flags last
    header = first + [k for k in rest if k not in flags] + flags
    path = out / f"{name}.csv"
    write_csv(path, header, [[r[k] for k in header] for r in rows], prov)
    return path


def reproduce(out: Path | str, *, quick: bool = False, workers: int | None = None, progress: bool = False,
              cache: Cache | None = None) -> dict[str, Any]:
    out = Path(out)
    figures: list[tuple[str, Path, Path, tuple[Any, ...], dict[str, Any]]] = []  # drawn once all are computed
    dur, warm = _window(quick)
    models = [("host", HOST), ("workload", WORKLOAD)] + [("architecture", a) for a in set(HOCKEY_ARCHS + EXIT_ARCHS)]
    noisy_models = ([("host", HOST), ("workload", "kv-cache"), ("workload", "packet-echo")]
                    + [("architecture", a) for a in NOISY_ARCHS])
    mod_models = [("host", HOST), ("workload", "kv-cache")] + [("architecture", a) for a in ("sriov", *MOD_REFERENCES)]
    dom0_models = [("host", HOST), ("workload", WORKLOAD)] + [("architecture", a) for a in DOM0_ARCHS + DOM0_REFERENCES]
    path_models = [("host", HOST), ("workload", PATH_WORKLOAD)] + [("architecture", a) for a in PATH_ARCHS]
    # every file's hash before the runs: each CSV's provenance is checked against it as it is written
    before = model_hashes(models + noisy_models + mod_models + dom0_models + path_models)

    def provenance(options: dict[str, Any], models: list[tuple[str, str]]) -> dict[str, Any]:
        return _provenance(options, models, since=before)

    base = {"quick": quick, "seed": SEED, "host": HOST, "workload": WORKLOAD, "duration_s": dur, "warmup_s": warm}
    cap = bare_capacity(quick=quick, workers=workers, progress=progress, cache=cache)
    # load x offers x bare metal's measured capacity (the headline's run)
    loaded = {"bare_metal_capacity_per_s": round(cap, 1)}
    h = hockey(quick=quick, workers=workers, progress=progress, cache=cache, capacity=cap)
    p = _write(out, "hockey", h, ["architecture", "load", "offered_per_s"],
               provenance(base | loaded | {"clients": CLIENTS, "think": "exponential, mean clients/offered"}, models))
    figures.append(("hockey", p, out / "hockey.png", (), {}))
    c = cdfs(quick=quick, workers=workers, progress=progress, cache=cache, capacity=cap)
    p = _write(out, "latency-cdf", c, ["architecture", "quantile", "latency_us"],
               provenance(base | loaded | {"load": CDF_LOAD, "duration_s": dur * 2}, models))
    figures.append(("latency_cdf", p, out / "latency-cdf.png", (), {}))
    e = exit_costs(quick=quick, workers=workers, progress=progress, cache=cache)
    p = _write(out, "exit-cost", e, ["architecture", "exit_cycles"],
               provenance(base | {"scaled_params": exit_params(),
                                  "generations": {g: [c, src] for g, c, src in GENERATIONS}}, models))
    figures.append(("exit_cost", p, out / "exit-cost.png", (GENERATIONS,), {}))
    n = noisy_neighbour(quick=quick, workers=workers, progress=progress, cache=cache)
    p = _write(out, "noisy-neighbour", n, ["architecture", "neighbour_offered_packets_per_s"],
               provenance({k: v for k, v in base.items() if k != "workload"}
                          | {"victim": "kv-cache on 8 vCPUs, 32 clients, think exp 200 us",
                             "neighbour": f"packet-echo on 32 vCPUs, {NEIGHBOUR_CLIENTS} clients, work 5000 cycles"},
                          noisy_models))
    figures.append(("noisy_neighbour", p, out / "noisy-neighbour.png", (), {}))
    m = moderation(quick=quick, workers=workers, progress=progress, cache=cache)
    p = _write(out, "interrupt-moderation", m, ["architecture", "throttle_us", "interrupts_per_s_cap"],
               provenance(base | {"workload": "kv-cache", "cores": 1, "clients": MOD_CLIENTS, "offered_per_s": MOD_RATE,
                                  "throttle": "sriov vf_irq_throttle_us (its net_rx interrupt's stages batch 64, the NAPI budget)"},
                          mod_models))
    figures.append(("interrupt_moderation", p, out / "interrupt-moderation.png", (), {}))
    b = latency_breakdown(quick=quick, workers=workers, progress=progress, cache=cache, capacity=cap)
    p = _write(out, "latency-breakdown", b, ["architecture"],
               provenance(base | loaded | {"load": CDF_LOAD, "clients": CLIENTS, "flow": "mix"}, models))
    figures.append(("latency_breakdown", p, out / "latency-breakdown.png", (), {}))
    k = class_latency(quick=quick, workers=workers, progress=progress, cache=cache, capacity=cap)
    p = _write(out, "class-latency", k, ["architecture", "class"],
               provenance(base | loaded | {"load": CDF_LOAD, "clients": CLIENTS, "flow": "mix"}, models))
    figures.append(("class_latency", p, out / "class-latency.png", (), {}))
    d = dom0_size(quick=quick, workers=workers, progress=progress, cache=cache)
    bundled = dom0_bundled()
    p = _write(out, "dom0-size", d, ["architecture", "dom0_cores", "sold_threads"],
               provenance(base | {"varied": "architecture.reserve.cores = architecture.resources.dom0.cores",
                                  "window_scaling": f"duration_s and warmup_s x {bundled} / dom0 cores below {bundled}",
                                  "bound": f"operational analysis from each architecture's demands at {bundled} cores"},
                          dom0_models))
    figures.append(("dom0_size", p, out / "dom0-size.png", (), {"bundled": bundled}))
    w = wakeups(quick=quick, workers=workers, progress=progress, cache=cache)
    p = _write(out, "polling-vs-interrupts", w, ["path", "packets_per_s"],
               provenance({"quick": quick, "seed": SEED, "testbed": "validation.xdp_experiment (e5-1650v4, intel-idle-bdw "
                           "C-states to C6)", "arrivals": "poisson", "packets_per_point": WAKE_PACKETS // (10 if quick else 1),
                           "warmup": "a tenth of the window"}, []))
    figures.append(("polling_vs_interrupts", p, out / "polling-vs-interrupts.png", (), {}))
    r = request_paths()
    p = _write(out, "request-path", r, ["architecture", "request", "stage"],
               provenance({"seed": SEED, "host": HOST, "workload": PATH_WORKLOAD, "clients": 1,
                           "traced": "the first get and the work it forks (vemu run --trace)"},
                          path_models))
    figures.append(("request_path", p, out / "request-path.png", (), {}))
    draw(figures, workers=workers)
    return {"path_stages": len(r), "hockey_points": len(h), "exit_points": len(e), "noisy_points": len(n), "moderation_points": len(m),
            "wakeup_points": len(w), "dom0_points": len(d), "breakdown_points": len(b), "class_points": len(k)}
