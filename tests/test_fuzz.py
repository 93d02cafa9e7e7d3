"""Fuzzing the model loader and the engine with hypothesis.

Three layers, three oracles:

* **valid experiments** (inline host, architecture and workload drawn from the whole model
  format) load, compile and run; every request created is completed, dropped or still in
  flight, and host cycles by category sum to 1;
* **near-valid experiments** (a valid one with one mutation: a wrong type, a missing
  required key, a value out of range, NaN or infinity, an unknown key, an unknown
  reference) raise :class:`ModelError` and nothing else; a mutation that happens to leave
  the model valid must still load and run;
* **raw engine specs** (indices out of range, NaN, infinities, negative and huge numbers
  in every field the C structs hold) give :class:`NativeError` or a clean run, never a
  crash, and every run is bounded by ``max_events``.

The coverage-guided counterpart is ``fuzz/fuzz_engine.py`` (atheris); the slow test at the
end runs it for a bounded time.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from emulator._core import LIMITS, EmulatorError, Engine, ModelError, NativeError, Spec
from emulator.model import compile_experiment, load_experiment
from emulator.simulation import Simulation

from conftest import to_toml

REPO = Path(__file__).resolve().parents[1]


def _examples(per_100: int) -> int:
    """Examples for a test: ``per_100`` under the dev profile's 100, scaled to the loaded
    profile (ci runs 30%); ``VEMU_FUZZ_EXAMPLES`` overrides for a long local run."""
    if os.environ.get("VEMU_FUZZ_EXAMPLES"):
        return int(os.environ["VEMU_FUZZ_EXAMPLES"])
    return max(10, per_100 * settings.default.max_examples // 100)


DURATION_S = 0.002
WARMUP_S = 0.0005

# ----------------------------------------------------------------------------- strategies

NAME = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
CATEGORY = st.sampled_from(["tenant", "exit", "hypervisor", "emulation", "backend", "copy", "poll", "my-cat"])


@st.composite
def dist(draw: Any, lo: float, hi: float) -> Any:
    """A number or a distribution table with mean in [lo, hi]."""
    mean = draw(st.floats(lo, hi))
    kind = draw(st.sampled_from(["number", "fixed", "exp", "lognormal", "uniform"]))
    if kind == "number":
        return draw(st.one_of(st.just(mean), st.integers(int(math.ceil(lo)), int(hi))))
    d: dict[str, Any] = {"dist": kind, "mean": mean}
    if kind == "lognormal":
        d["cv"] = draw(st.floats(0, 3))
    elif kind == "uniform":
        d["cv"] = draw(st.floats(0, 0.57))
    return d


@st.composite
def experiments(draw: Any) -> dict[str, Any]:
    """A valid inline experiment, small enough to run in milliseconds."""
    cores = draw(st.integers(1, 8))
    ghz = draw(st.floats(0.5, 4.0))
    host: dict[str, Any] = {"name": "h", "summary": "fuzz", "cores": cores, "ghz": ghz, "memory_gib": 16,
                            "params": {"hp": draw(st.floats(0, 5000))}, "devices": {}}
    if draw(st.booleans()):  # C-states: exit latencies, residencies growing from the shallowest
        res = 0.0
        host["idle_states"] = []
        for k in range(draw(st.integers(1, 4))):
            res += draw(st.floats(0, 200))
            host["idle_states"].append({"name": f"C{k}", "exit_us": draw(st.floats(0, 150)), "residency_us": res})
        if draw(st.booleans()):
            host["halt_poll_us"] = draw(st.floats(0, 300))
    resources = ["vcpu"]
    if draw(st.booleans()):
        nic: dict[str, Any] = {"kind": "link", "gbps": draw(st.floats(1, 100))}
        if draw(st.booleans()):
            nic["lanes"] = draw(st.integers(1, 4))
        if draw(st.booleans()):
            nic["overhead_bytes"] = draw(st.floats(0, 100))
        if draw(st.booleans()):
            nic["capacity"] = draw(st.integers(0, 64))
        host["devices"]["nic"] = nic
        resources.append("nic")
    if draw(st.booleans()):
        host["devices"]["ssd"] = {"kind": "server", "servers": draw(st.integers(1, 8)),
                                  "service_us": draw(dist(0, 50))}
        resources.append("ssd")
    reserve = draw(st.integers(0, cores - 1))
    arch: dict[str, Any] = {"name": "a", "summary": "fuzz", "params": {"ap": draw(st.floats(0, 5000))},
                            "reserve": {"cores": reserve, "memory_gib": 1}, "resources": {}, "paths": {}}
    cpus = ["vcpu"]
    if reserve > 0 and draw(st.booleans()):
        dom0: dict[str, Any] = {"kind": "cpu", "cores": draw(st.integers(1, reserve))}
        if draw(st.booleans()):
            dom0["poll"] = True
        if draw(st.booleans()):
            dom0["capacity"] = draw(st.integers(0, 64))
        arch["resources"]["dom0"] = dom0
        cpus.append("dom0")
    if draw(st.booleans()):
        arch["resources"]["card"] = {"kind": "cpu", "cores": draw(st.integers(1, 4)),
                                     "ghz": draw(st.floats(0.5, 3)), "on_host": False}
        cpus.append("card")
    resources += cpus[1:]

    def stage() -> dict[str, Any]:
        on = draw(st.sampled_from(resources + ["(delay)"]))
        if on == "(delay)":
            return {"name": "d", "delay_us": draw(dist(0, 20))}
        s: dict[str, Any] = {"on": on}
        if on in cpus:
            s["cycles"] = draw(st.one_of(dist(0, 20000), st.sampled_from(["hp", "ap"])))
            if draw(st.booleans()):
                s["per_byte"] = draw(st.floats(0, 2))
            if draw(st.integers(0, 3)) == 0:
                s["per_page"] = draw(st.floats(0, 5000))
                s["page_bytes"] = draw(st.sampled_from([1, 512, 4096]))
                s["unpaged_bytes"] = draw(st.sampled_from([0, 128, 5000]))
            s["account"] = draw(CATEGORY)
            if on == "vcpu" and s["account"] == "poll" and host.get("halt_poll_us", 0) > 0:
                s["account"] = "tenant"  # halt-polling vCPUs' poll is their idle polls' (refused for a stage)
        if on != "nic" and draw(st.booleans()):  # a link sends each request on its own (no batch)
            s["batch"] = draw(st.integers(1, 8))
        if draw(st.booleans()):
            s["priority"] = draw(st.integers(-3, 3))
            if draw(st.booleans()):
                s["preempt"] = draw(st.booleans())
        if draw(st.booleans()):
            s["delay_us"] = draw(dist(0, 5))
        return s

    for i in range(draw(st.integers(1, 3))):
        arch["paths"][f"p{i}"] = {"stages": [stage() for _ in range(draw(st.integers(1, 3)))]}
    paths = list(arch["paths"])

    def steps() -> list[dict[str, Any]]:
        out = []
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.integers(0, 3)) == 0:
                s = stage()
                for k in ("per_byte", "per_page", "page_bytes", "unpaged_bytes"):
                    s.pop(k, None)
                out.append(s)
            else:
                p: dict[str, Any] = {"path": draw(st.sampled_from(paths))}
                if draw(st.booleans()):
                    p["bytes"] = draw(dist(0, 9000))
                if draw(st.booleans()):
                    p["count"] = draw(st.integers(1, 3))
                out.append(p)
        return out

    def flow(name: str, background: bool) -> dict[str, Any]:
        f: dict[str, Any] = {"name": name}
        if not background and draw(st.booleans()):
            f["arrival"] = "closed"
            f["clients"] = draw(st.integers(1, 16))
            f["think_us"] = draw(dist(20, 200))  # > 0: a closed loop of zero-time stages never advances the clock
        else:
            f["arrival"] = draw(st.sampled_from(["poisson", "periodic"]))
            f["rate_per_s"] = draw(st.floats(100, 50000))
            if background and draw(st.booleans()):
                f["per_vcpu"] = True
        if draw(st.booleans()):
            f["steps"] = steps()
        else:
            f["mix"] = [{"name": f"c{j}", "weight": draw(st.floats(0.01, 10)), "steps": steps()}
                        for j in range(draw(st.integers(1, 3)))]
        return f

    flows = [flow(f"f{i}", False) for i in range(draw(st.integers(1, 2)))]
    if draw(st.booleans()):
        arch["background"] = [flow("bg", True)]
    workload = {"name": "w", "summary": "fuzz", "flows": flows}
    return {"experiment": {"duration_s": DURATION_S, "warmup_s": WARMUP_S, "seed": draw(st.integers(0, 2**63 - 1))},
            "host": host, "architecture": arch, "workload": workload}


# ----------------------------------------------------------------------------- valid

def _check_run(doc: dict[str, Any]) -> None:
    exp = load_experiment(doc)
    sim = Simulation(exp)
    res = sim.run(duration_s=DURATION_S, warmup_s=WARMUP_S)
    d = res.to_dict()
    total = sum(d["host_cycles"].values())
    assert math.isclose(total, 1.0, rel_tol=1e-9, abs_tol=1e-9), d["host_cycles"]
    assert all(v >= -1e-12 for v in d["host_cycles"].values()), d["host_cycles"]
    # conservation, read from the engine itself: within a window, requests in flight at its
    # start plus those created equal those completed, dropped or still in flight at its end
    spec = sim.compiled.spec
    warm, end = round(WARMUP_S * 1e12), round((WARMUP_S + DURATION_S) * 1e12)
    with Engine(spec, seed=exp.seed) as eng:
        assert eng.run(warm, 10**7)
        before = eng.in_flight
        eng.reset_stats()
        assert eng.run(end, 10**7)
        s = eng.stats()
    created, done, dropped, now = (int(s[k].sum()) for k in ("flow_created", "flow_completed", "flow_dropped",
                                                             "flow_in_flight"))
    assert before + created == done + dropped + now


@given(experiments())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=_examples(300))
def test_valid_experiments_run_and_conserve(doc: dict[str, Any]) -> None:
    note(to_toml(doc))
    _check_run(doc)


@given(experiments())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=10)
def test_valid_experiment_files_load_as_dicts_do(tmp_path_factory: Any, doc: dict[str, Any]) -> None:
    p = tmp_path_factory.mktemp("fuzz") / "e.toml"
    p.write_text(to_toml(doc))
    assert compile_experiment(load_experiment(p)).spec == compile_experiment(load_experiment(doc)).spec


# ----------------------------------------------------------------------------- near-valid

def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Key paths of every scalar leaf (not list or table)."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, path + (k,))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, path + (i,))]
    return [path]


def _tables(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Key paths of every table (a dict not standing for a map of user names)."""
    out = []
    if isinstance(node, dict):
        named_map = path and path[-1] in ("params", "devices", "resources", "paths")
        if not named_map:
            out.append(path)
        for k, v in node.items():
            out += _tables(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _tables(v, path + (i,))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


# keys whose absence is always an error, by the last key of their table's path
REQUIRED = {
    ("host",): ("name", "cores", "ghz", "memory_gib"),
    ("architecture",): ("name", "paths"),
    ("workload",): ("name", "flows"),
}
FLOW_REQUIRED = ("name", "arrival")
RESOURCE_REQUIRED = {"cpu": ("kind", "cores"), "link": ("kind", "gbps"), "server": ("kind", "servers", "service_us")}


def _required_paths(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = [t + (k,) for t, keys in REQUIRED.items() for k in keys]
    for t in ("workload", "architecture"):
        for i, f in enumerate(doc[t].get("flows" if t == "workload" else "background", [])):
            base = (t, "flows" if t == "workload" else "background", i)
            out += [base + (k,) for k in FLOW_REQUIRED]
            out.append(base + (("clients",) if f["arrival"] == "closed" else ("rate_per_s",)))
            out.append(base + (("steps",) if "steps" in f else ("mix",)))
    for owner, key in (("host", "devices"), ("architecture", "resources")):
        for name, r in doc[owner].get(key, {}).items():
            out += [(owner, key, name, k) for k in RESOURCE_REQUIRED[r["kind"]]]
            if r["kind"] == "cpu" and r.get("on_host") is False:
                out.append((owner, key, name, "ghz"))
    return out


MUST_FAIL = ["nan", "inf", "-inf", "huge", "list", "missing", "unknown_key", "unknown_resource",
             "unknown_path", "unknown_param", "zero_steps"]
MAY_PASS = ["string", "number", "bool", "table", "negative", "zero"]


@st.composite
def near_valid(draw: Any) -> tuple[dict[str, Any], str, tuple[Any, ...]]:
    doc = draw(experiments())
    kind = draw(st.sampled_from(MUST_FAIL + MAY_PASS))
    leaves = _leaves(doc)
    if kind in ("nan", "inf", "-inf", "huge", "list", "string", "number", "bool", "table", "negative", "zero"):
        path = draw(st.sampled_from(leaves))
        value = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "huge": 1e300, "list": [1, "x"],
                 "string": "?!", "number": 7, "bool": True, "table": {"x": 1}, "negative": -1, "zero": 0}[kind]
        _set(doc, path, value)
    elif kind == "missing":
        path = draw(st.sampled_from(_required_paths(doc)))
        del _get(doc, path[:-1])[path[-1]]
    elif kind == "unknown_key":
        tables = _tables(doc)
        path = draw(st.sampled_from(tables)) + (draw(st.sampled_from(["nmae", "cycels", "on_hots", "zzz", "rate"])),)
        assume(path[-1] not in _get(doc, path[:-1]))
        _set(doc, path, 1)
    elif kind in ("unknown_resource", "unknown_path", "unknown_param"):
        key = {"unknown_resource": "on", "unknown_path": "path", "unknown_param": "cycles"}[kind]
        cands = [p for p in leaves if p[-1] == key and (kind != "unknown_param" or isinstance(_get(doc, p), str))]
        assume(cands)
        path = draw(st.sampled_from(cands))
        _set(doc, path, "nosuch")
    else:  # zero_steps: an empty list where at least one item is required
        cands = [p[:-1] for p in _leaves(doc) if len(p) > 2 and p[-2] in ("stages", "steps")]
        cands += [("workload", "flows")]
        path = draw(st.sampled_from(sorted(set(cands), key=str)))
        _set(doc, path, [])
    return doc, kind, path


@given(near_valid())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
          max_examples=_examples(1000))
def test_near_valid_experiments_raise_model_error_only(case: tuple[dict[str, Any], str, tuple[Any, ...]]) -> None:
    doc, kind, path = case
    note(f"mutation {kind} at {'.'.join(map(str, path))}")
    try:
        exp = load_experiment(doc)
    except ModelError as e:
        msg = str(e)
        assert "\n" not in msg and msg.strip(), msg
        assert e.key or e.file, msg  # it names where
        return
    assert kind in MAY_PASS, f"mutation {kind} at {path} was accepted"
    # still valid: it must run, or fail only as the engine reports (pool exhausted by a
    # heavier load, a closed loop that stops the clock)
    try:
        Simulation(exp).run(duration_s=DURATION_S, warmup_s=WARMUP_S)
    except EmulatorError as e:
        # a closed loop that stops the clock is the model's own fault, named as such
        assert not isinstance(e, ModelError) or "loop in zero time" in str(e), str(e)


# ----------------------------------------------------------------------------- raw engine

U32 = 2**32 - 1
I32 = 2**31 - 1
# the keys of draws: a few small values (so two stages or flows often share one, which the
# engine must refuse) or any 64-bit value
TAG = st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1))
TAGS = st.tuples(TAG, TAG)
EDGE_FLOATS = st.one_of(
    st.floats(0, 1e6), st.sampled_from([0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e18, 1.0000001e18, 1e300,
                                        5e-324, 4294967295.0, 4294967296.0]),
)
KIND = st.sampled_from(["fixed", "exp", "lognormal", "uniform"])


@st.composite
def raw_dist(draw: Any) -> tuple[str, float, float]:
    return (draw(KIND), draw(EDGE_FLOATS), draw(st.one_of(st.floats(0, 2), EDGE_FLOATS)))


def _idx(n: int) -> Any:
    """An index that is usually in range of n items, sometimes just out, sometimes wild."""
    return st.one_of(st.integers(0, max(0, n - 1)), st.just(n), st.sampled_from([U32, U32 - 1, 2**31]))


@st.composite
def raw_specs(draw: Any) -> Spec:
    nr = draw(st.integers(0, 3))
    ncat = draw(st.one_of(st.integers(1, 4), st.sampled_from([0, LIMITS["categories"], LIMITS["categories"] + 1])))
    # idle states: (exit ps, target residency ps), in order or not, within the limit or past it
    ps = st.one_of(st.integers(0, 10**9), st.sampled_from([-1, -(2**63), LIMITS["gap_ps"], LIMITS["gap_ps"] + 1,
                                                           2**63 - 1]))
    idle = st.one_of(st.just(()), st.tuples(st.lists(st.tuples(ps, ps), max_size=3).map(tuple), _idx(ncat)),
                     st.tuples(st.lists(st.tuples(ps, ps), max_size=3).map(tuple), _idx(ncat), ps, _idx(ncat)))
    resources = [(draw(st.one_of(st.integers(1, 4), st.sampled_from([0, LIMITS["units"], LIMITS["units"] + 1, U32]))),
                  draw(st.one_of(st.integers(-1, 8), st.sampled_from([-(2**63), 2**63 - 1])))) + draw(idle)
                 for _ in range(nr)]
    nq = draw(st.integers(0, 4))
    qclasses = [(draw(_idx(nr)), draw(st.one_of(st.integers(-2, 2), st.sampled_from([-(2**31), I32]))),
                 draw(st.one_of(st.integers(1, 4), st.sampled_from([0, LIMITS["batch"], LIMITS["batch"] + 1, U32]))),
                 draw(st.one_of(st.just(0), st.integers(1, 10**9),
                                st.sampled_from([-1, -(2**63), LIMITS["gap_ps"], LIMITS["gap_ps"] + 1, 2**63 - 1]))),
                 draw(st.one_of(st.integers(0, 1), st.sampled_from([2, U32]))))  # preempt: 0, 1, or invalid
                for _ in range(nq)]
    ns = draw(st.integers(0, 5))
    stages = []
    for _ in range(ns):
        q = draw(st.one_of(st.integers(-1, nq - 1) if nq else st.just(-1), st.just(nq), st.just(-2),
                           st.just(-(2**31))))
        stages.append((q, draw(_idx(ncat)), draw(raw_dist()), draw(st.one_of(st.floats(0, 10), EDGE_FLOATS)),
                       draw(raw_dist()), draw(st.booleans()), draw(raw_dist()))
                      + draw(st.one_of(st.just(()), st.tuples(st.just(0), st.none(), TAGS))))  # its draws' keys
    nc = draw(st.integers(0, 4))
    classes = [(draw(_idx(ns)), draw(st.one_of(st.integers(1, max(1, ns)), st.just(0), st.just(U32))),
                draw(st.one_of(st.floats(0.1, 10), EDGE_FLOATS))) for _ in range(nc)]
    nf = draw(st.integers(0, 3))
    flows = []
    for _ in range(nf):
        closed = draw(st.booleans())
        clients = draw(st.one_of(st.integers(1, 8), st.sampled_from([0, U32])))
        inter = draw(st.one_of(st.tuples(KIND, st.floats(1e5, 1e9), st.just(0.0)), raw_dist()))
        think = draw(st.one_of(st.tuples(KIND, st.floats(1e5, 1e9), st.just(0.0)), raw_dist()))
        flows.append((closed, inter, clients, think, draw(_idx(nc)),
                      draw(st.one_of(st.integers(1, max(1, nc)), st.just(0), st.just(U32))))
                     + draw(st.one_of(st.just(()), st.tuples(TAG))))
    pool = draw(st.one_of(st.integers(1, 64), st.sampled_from([0, LIMITS["pool"] + 1, U32])))
    trace_req = draw(st.one_of(st.integers(0, 8), st.just(U32)))
    trace_cap = draw(st.one_of(st.integers(0, 64), st.sampled_from([LIMITS["trace"] + 1, U32])))
    return Spec(resources, qclasses, stages, classes, flows, ncat, pool, trace_req, trace_cap)


def _drive(spec: Spec, seed: int, until: int) -> None:
    """Create, run in bounded chunks, read everything back, close."""
    try:
        eng = Engine(spec, seed=seed)
    except NativeError as e:
        assert e.status < 0 and str(e)
        return
    with eng:
        for _ in range(4):
            try:
                eng.run(until, 20_000)
            except NativeError as e:
                assert e.status < 0 and str(e)
                with pytest.raises(NativeError):  # a failed sim stays failed
                    eng.run(until, 1)
                break
        st_ = eng.stats()
        created = int(st_["flow_created"].sum())
        assert created == int(st_["flow_completed"].sum() + st_["flow_dropped"].sum() + st_["flow_in_flight"].sum())
        eng.trace()


@given(raw_specs(), st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 10**6, 10**9, 10**12, 2**62, 2**63 - 1]))
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=_examples(1000))
def test_raw_specs_give_native_error_or_a_clean_run(spec: Spec, seed: int, until: int) -> None:
    _drive(spec, seed, until)


def test_raw_values_the_c_types_cannot_hold_are_refused_before_c() -> None:
    """cffi itself refuses a negative count or an index past 2**32 (OverflowError): such
    a value never reaches the engine. Documented here so the behaviour is not a surprise."""
    base = Spec([(1, -1)], [(0, 0, 1)], [(0, 0, ("fixed", 1.0, 0.0), 0.0, ("fixed", 0.0, 0.0), False,
                                         ("fixed", 0.0, 0.0))], [(0, 1, 1.0)],
                [(False, ("exp", 1e6, 0.0), 0, ("fixed", 0.0, 0.0), 0, 1)], 1, 8)
    _drive(base, 1, 10**9)
    for bad in (Spec([(-1, -1)], *_rest(base)), Spec([(2**32, -1)], *_rest(base))):
        with pytest.raises(OverflowError):
            Engine(bad, seed=1)


def _rest(s: Spec) -> tuple[Any, ...]:
    return (s.qclasses, s.stages, s.classes, s.flows, s.n_categories, s.pool_size)


def test_engine_limits_are_refused_without_allocating() -> None:
    """Counts past the engine's limits fail validation before anything is allocated (a
    pool of 2**32-1 requests would be hundreds of GB)."""
    ok = Spec([(1, -1)], [(0, 0, 1)], [(0, 0, ("fixed", 1.0, 0.0), 0.0, ("fixed", 0.0, 0.0), False,
                                       ("fixed", 0.0, 0.0))], [(0, 1, 1.0)],
              [(True, ("fixed", 0.0, 0.0), 1, ("fixed", 1e6, 0.0), 0, 1)], 1, 8)
    for change in ({"pool_size": 0}, {"pool_size": LIMITS["pool"] + 1}, {"pool_size": U32},
                   {"trace_capacity": LIMITS["trace"] + 1}, {"n_categories": LIMITS["categories"] + 1},
                   {"resources": [(LIMITS["units"] + 1, -1)]}, {"qclasses": [(0, 0, LIMITS["batch"] + 1)]},
                   {"qclasses": [(0, 0, 1, -1)]}, {"qclasses": [(0, 0, 1, LIMITS["gap_ps"] + 1)]},
                   {"resources": [(1, -1, ((5, 2), (9, 1)), 0)]},  # residencies out of order
                   {"resources": [(1, -1, ((5, 2),), 1)]},  # wake category out of range
                   {"resources": [(1, -1, ((LIMITS["gap_ps"] + 1, 2),), 0)]},
                   {"resources": [(1, -1, ((5, -1),), 0)]},
                   {"resources": [(1, -1, ((1, 1),) * (LIMITS["idle_states"] + 1), 0)]},
                   {"resources": [(1, -1, ((5, 2),), 0, LIMITS["gap_ps"] + 1, 0)]},
                   # polling with no idle states to sleep in: once dropped silently by _core
                   {"resources": [(1, -1, (), 0, 5000, 0)]}):
        with pytest.raises(NativeError) as e:
            Engine(dataclasses.replace(ok, **change), seed=1)
        assert e.value.status < 0


# ----------------------------------------------------------------------------- atheris

@pytest.mark.slow
def test_atheris_engine_fuzzer_bounded_run(tmp_path: Path) -> None:
    """Runs the coverage-guided fuzzer (fuzz/fuzz_engine.py) for ~20 s: no crash, no hang."""
    pytest.importorskip("atheris")
    proc = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / "fuzz_engine.py"), "-max_total_time=20", "-timeout=10",
         "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    assert "stat::number_of_executed_units" in tail, tail
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*")), tail
