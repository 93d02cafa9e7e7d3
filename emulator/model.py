"""Models: hosts, architectures and workloads, loaded from TOML and validated whole.

A host is hardware (cores, clock, devices and the costs of hardware mechanisms such as a
VM exit). An architecture says where each kind of I/O goes: named *paths* of *stages*, each
stage a piece of work on a *resource* charged to an accounting *category* — the guest's own
network stack on its vCPU (``tenant``), a VM exit (``exit``), netback in dom0
(``backend``), a grant copy (``copy``). A workload says what the tenant asks for: *flows* of
requests, each a list of *steps* that walk the architecture's paths or do work inline.

Everything is checked before the engine sees it. Errors are :class:`ModelError` naming the
file, the key path and what is allowed; unknown keys are errors, with the closest valid
name. The format reference is ``models/README.md``.

:func:`compile_experiment` turns a validated experiment into the engine's flat arrays
(:class:`emulator._core.Spec`) plus the names needed to read the results back.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import numbers
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

from ._core import LIMITS, NONE_DIST, Dist, ModelError, Spec

BUNDLED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MODELS_DIR = Path(os.environ.get("VEMU_MODELS", BUNDLED_MODELS_DIR))
KINDS = ("host", "architecture", "workload")
KIND_DIRS = {"host": "hosts", "architecture": "architectures", "workload": "workloads"}
# a tenant's vCPUs are the resource vcpu@TENANT (what paging and halt-polling apply to): a
# device or resource of the models may not take such a name
AT_IN_NAME = "'@' is kept for a tenant's vCPUs (vcpu@TENANT); choose a name without it"
RESERVED_FLOW_NAMES = ("host_cycles", "utilization")  # prefixes of measure names beside FLOW.MEASURE
STANDARD_CATEGORIES = ("tenant", "exit", "hypervisor", "emulation", "backend", "copy", "poll")
ENGINE_CATEGORIES = ("idle", "reserved_idle", "wake")
REQUIRED_PATHS = ("net_tx", "net_rx", "blk_read", "blk_write")  # of every bundled architecture
DIST_NAMES = ("fixed", "exp", "lognormal", "uniform")
PS_PER_US = 1_000_000
PS_PER_S = 1_000_000_000_000
MAX_DURATION_S = 1.0e6  # the engine's clock reaches ~9.2e6 s; keep a wide margin
MIN_DURATION_S = 1.0e-12  # one picosecond, the engine's time unit: a shorter window rounds to nothing


def check_window(duration_s: Any, warmup_s: Any, *, file: str | None = None) -> None:
    """A ModelError unless the measured window is a number of seconds in [1 ps, MAX] and
    the warm-up one in [0, MAX] (wherever they come from: a file, a flag or the API)."""
    for key, v, lo, what in (("duration_s", duration_s, MIN_DURATION_S, " (at least one picosecond, the engine's "
                                                                         "time unit)"),
                             ("warmup_s", warmup_s, 0.0, "")):
        real = isinstance(v, numbers.Real) and not isinstance(v, bool)
        if not (real and lo <= v <= MAX_DURATION_S):
            shown = (f"{float(v):g} s" if not isinstance(v, int) or abs(v) < 10**300 else f"an integer of "
                     f"{_digits(v)} digits") if real else repr(v)
            raise ModelError(f"{shown} is out of range: [{lo:g}, {MAX_DURATION_S:g}] s{what}", file=file,
                             key=f"experiment.{key}")
MAX_CLIENTS = 4_000_000
MAX_PER_BYTE_PS = 1e9  # the engine's bound on a stage's time per byte
MAX_PER_PAGE_PS = 1e15  # the engine's bound on a stage's time per page (vemu.c, validate)
DEFAULT_OPEN_POOL = 1 << 18  # requests the open flows may have in flight together before the run fails


# ----------------------------------------------------------------------------- values

@dataclass(frozen=True)
class Dist_:
    """A distribution as written: ``mean`` is a number or a param name."""

    dist: str
    mean: Union[float, str]
    cv: float = 0.0


Value = Union[float, str, Dist_]  # a number, a param name, or a distribution


@dataclass(frozen=True)
class Stage:
    name: str
    on: str | None
    cycles: Value = 0.0
    per_byte: Union[float, str] = 0.0
    delay_us: Value = 0.0
    account: str = "tenant"
    batch: int = 1
    priority: int = 0
    preempt: bool = False  # its arrivals preempt services of lower priority (preemptive resume)
    where: str = ""  # file and key path, for messages and batch identity
    file: str = ""  # the file alone (its key path is where's rest: a path's name may hold ':')
    direction: str | None = None  # on a duplex link: "rx" or "tx" (default "tx")
    throttle_us: Union[float, str] = 0.0  # services of its queue begin at least this far apart (interrupt throttling)
    queues: Union[int, str] = 1  # its queues (each with its own batches and throttle), or "units": one per unit
    fork: str | None = None  # a path of the architecture each request leaving the stage sets off, detached
    per_page: Union[float, str] = 0.0  # cycles per page of the request's bytes beyond unpaged_bytes (ceil)
    page_bytes: float = 4096.0
    unpaged_bytes: Union[float, str] = 0.0
    # what keys its random draws when it has no name of its own: the resource's name (as
    # unnamed stages were called before they read "tenant work on vcpu"), so that naming
    # them for people moved no draw
    stream: str = ""


@dataclass(frozen=True)
class Resource:
    name: str
    kind: str  # cpu | link | server
    units: int
    ghz: float | None = None
    on_host: bool = False
    gbps: float = 0.0
    overhead_bytes: float = 0.0
    segment_bytes: float = 0.0  # a link: the most bytes one frame carries (0: one frame per request)
    service_us: Value = 0.0
    capacity: int = -1
    poll: bool = False
    duplex: bool = False  # a link with independent receive and transmit directions


@dataclass(frozen=True)
class PathStep:
    path: str
    bytes: Value = 0.0
    count: int = 1
    where: str = ""


Step = Union[PathStep, Stage]


@dataclass(frozen=True)
class RequestClass:
    name: str
    weight: float
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Flow:
    name: str
    arrival: str  # closed | poisson | periodic
    classes: tuple[RequestClass, ...]
    clients: int = 0
    think_us: Value = 0.0
    rate_per_s: float = 0.0
    per_vcpu: bool = False


@dataclass(frozen=True)
class IdleState:
    """One idle state (C-state) of the host's cores: the time from a wake-up to the first
    instruction, and the shortest predicted idle period for which it is chosen."""

    name: str
    exit_us: float
    residency_us: float


@dataclass(frozen=True)
class Host:
    name: str
    summary: str
    cores: int
    ghz: float
    memory_gib: float
    params: Mapping[str, float]
    devices: tuple[Resource, ...]
    sources: tuple[str, ...] = ()
    file: str = "<host>"
    idle_states: tuple[IdleState, ...] = ()  # shallowest first; () : cores start work the moment they are free
    halt_poll_us: float = 0.0  # an idle vCPU polls this long before it sleeps (KVM halt-polling)


@dataclass(frozen=True)
class Architecture:
    name: str
    summary: str
    params: Mapping[str, float]
    reserve_cores: int
    reserve_memory_gib: float
    resources: tuple[Resource, ...]
    paths: Mapping[str, tuple[Stage, ...]]
    background: tuple[Flow, ...] = ()
    sources: tuple[str, ...] = ()
    file: str = "<architecture>"
    # the share of the guest's own time (its `tenant` work on vCPUs) spent in the nested
    # dimension of its page walks (EPT/NPT): a number or a param name; 0 on bare metal and PV
    nested_paging: Value = 0.0


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str
    flows: tuple[Flow, ...]
    params: Mapping[str, float] = field(default_factory=dict)
    rationale: str = ""
    sources: tuple[str, ...] = ()
    file: str = "<workload>"


@dataclass(frozen=True)
class Tenant:
    """One VM of a multi-tenant host: its own vCPUs and workload; everything else (dom0,
    back ends, offload cards, devices) is shared as the architecture says."""

    name: str
    vcpus: int
    workload: Workload


@dataclass(frozen=True)
class Experiment:
    host: Host
    architecture: Architecture
    workload: Workload
    duration_s: float = 0.1
    warmup_s: float = 0.01
    seed: int = 1
    file: str = "<experiment>"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    tenants: tuple[Tenant, ...] = ()  # empty: one tenant owning every vCPU
    # each override ([set] or --set) that wrote one place: (its key as given, the place as
    # KIND.path with list items by index), so two spellings of one key can be told apart
    placed: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    # the bundled model files the experiment was read from, as (kind, name), sorted: what
    # provenance hashes (a tenant's bundled workload included)
    bundled: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    # each place an override with a '*' in its path wrote: (its key as given, KIND.path)
    wild: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def digest(self, *, full: bool = False) -> str:
        """A stable hash of everything that determines the run's results but the seed
        (the model data after overrides, and the window); 16 hex digits unless ``full``."""
        blob = json.dumps(
            {k: self.raw.get(k) for k in KINDS + ("tenants",)}
            | {"duration_s": self.duration_s, "warmup_s": self.warmup_s},
            sort_keys=True, default=str,
        )
        h = hashlib.sha256(blob.encode()).hexdigest()
        return h if full else h[:16]


# ----------------------------------------------------------------------------- reading

def _reserved_prefix(name: str) -> str | None:
    """The measure prefix (host_cycles, utilization) a flow's or tenant's name would collide
    with: the name itself or NAME.anything; None when free."""
    return next((r for r in RESERVED_FLOW_NAMES if name == r or name.startswith(r + ".")), None)


def _has_control(text: str) -> bool:
    """Whether a name holds a control character (C0, DEL, C1: what breaks a table's line or
    drives a terminal)."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


class _Table:
    """A TOML table being validated: typed getters that know their file and key path."""

    def __init__(self, data: Any, file: str, path: str):
        if not isinstance(data, dict):
            raise ModelError(f"must be a table, got {_typename(data)}", file=file, key=path or None)
        self.data, self.file, self.path = data, file, path

    def key(self, k: str | int) -> str:
        return f"{self.path}.{k}" if self.path else str(k)

    def err(self, k: str | int | None, msg: str) -> ModelError:
        return ModelError(msg, file=self.file, key=self.key(k) if k is not None else (self.path or None))

    def allow(self, *names: str) -> None:
        for k in self.data:
            if k not in names:
                close = difflib.get_close_matches(str(k), names, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(names)}"
                raise self.err(k, f"unknown key{hint}")

    def has(self, k: str) -> bool:
        return k in self.data

    def str(self, k: str, default: str | None = None, choices: Sequence[str] | None = None) -> str:
        if k not in self.data:
            if default is None:
                raise self.err(k, "is required" + (f" (one of {', '.join(choices)})" if choices else ""))
            return default
        v = self.data[k]
        if not isinstance(v, str):
            raise self.err(k, f"must be a string, got {_typename(v)}")
        if k == "name" and not v.strip():
            raise self.err(k, "must be a name, not empty or blank (results and --set name things by it)")
        if k == "name" and _has_control(v):
            raise self.err(k, f"{v!r} has a control character (a line break, an escape): tables and terminals "
                              "print names as they are; choose a name without one")
        if choices is not None and v not in choices:
            close = difflib.get_close_matches(v, choices, n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise self.err(k, f"'{v}' is not one of {', '.join(choices)}{hint}")
        return v

    def num(self, k: str, default: float | None = None, *, lo: float = 0.0, hi: float = 1e18,
            lo_open: bool = False) -> float:
        if k not in self.data:
            if default is None:
                raise self.err(k, f"is required (a number in {'(' if lo_open else '['}{lo:g}, {hi:g}])")
            return default
        return _number(self.data[k], self, k, lo, hi, lo_open)

    def int(self, k: str, default: int | None = None, *, lo: int = 0, hi: int = 2**31 - 1) -> int:
        if k not in self.data:
            if default is None:
                raise self.err(k, f"is required (an integer in [{lo}, {hi}])")
            return default
        v = self.data[k]
        # 1e300 as written, not its 301 digits; an integer literal that long by its length
        shown = (f"{v:g}" if isinstance(v, float) else f"an integer of {_digits(v)} digits"
                 if isinstance(v, int) and abs(v) >= 10**30 else str(v))
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            else:
                raise self.err(k, f"must be an integer in [{lo}, {hi}], got {_show(v)}")
        if not lo <= v <= hi:
            raise self.err(k, f"{shown} is out of range: an integer in [{lo}, {hi}]")
        return v

    def bool(self, k: str, default: bool) -> bool:
        if k not in self.data:
            return default
        v = self.data[k]
        if not isinstance(v, bool):
            raise self.err(k, f"must be true or false, got {_show(v)}")
        return v

    def table(self, k: str, required: bool = False) -> "_Table":
        if k not in self.data:
            if required:
                raise self.err(k, "is required (a table)")
            return _Table({}, self.file, self.key(k))
        return _Table(self.data[k], self.file, self.key(k))

    def list(self, k: str, required: bool = True) -> list[Any]:
        if k not in self.data:
            if required:
                raise self.err(k, "is required (a list)")
            return []
        v = self.data[k]
        if not isinstance(v, list):
            raise self.err(k, f"must be a list, got {_typename(v)}")
        return v

    def strings(self, k: str) -> tuple[str, ...]:
        vals = self.list(k, required=False)
        for i, v in enumerate(vals):
            if not isinstance(v, str):
                raise self.err(f"{k}[{i}]", f"must be a string, got {_typename(v)}")
        return tuple(vals)

    def value(self, k: str, default: Value = 0.0, *, allow_dist: bool = True, hi: float = 1e15) -> Value:
        """A number, a param name (checked later, when params are known) or a distribution."""
        if k not in self.data:
            return default
        v = self.data[k]
        if isinstance(v, str):
            if not v or not (v[0].isalpha() or v[0] == "_"):
                raise self.err(k, f"'{v}' is neither a number nor a param name")
            return v
        if isinstance(v, dict):
            if not allow_dist:
                raise self.err(k, "must be a number or a param name, not a distribution")
            d = _Table(v, self.file, self.key(k))
            d.allow("dist", "mean", "cv")
            kind = d.str("dist", choices=DIST_NAMES)
            mean: Union[float, str]
            if isinstance(v.get("mean"), str):
                mean = d.value("mean", allow_dist=False)  # type: ignore[assignment]
            else:
                mean = d.num("mean", lo=0, hi=hi)
            cv = d.num("cv", 0.0 if kind in ("fixed", "exp") else None, lo=0, hi=1e6)
            if kind == "uniform" and cv > 1 / math.sqrt(3):
                raise d.err("cv", f"{cv:g} is too wide for a uniform distribution: cv <= 1/sqrt(3) = 0.577")
            if kind == "fixed" and "cv" in v and cv != 0.0:
                raise d.err("cv", "a fixed distribution has no spread: omit cv or use another dist")
            if kind == "exp" and "cv" in v and cv != 1.0:
                raise d.err("cv", f"an exponential distribution has cv = 1, not {cv:g}: omit cv, or use "
                                  "lognormal for another spread")
            return Dist_(kind, mean, cv)
        return _number(v, self, k, 0.0, hi, False)


def _digits(v: int) -> int:
    """About how many decimal digits an integer has, without printing it (Python refuses to
    print one of more than 4300 digits)."""
    return int(abs(v).bit_length() * 0.30103) + 1


def _typename(v: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    return f"'{v}'" if isinstance(v, str) else _typename(v) if isinstance(v, (dict, list)) else repr(v)


def _number(v: Any, t: _Table, k: str, lo: float, hi: float, lo_open: bool) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise t.err(k, f"must be a number, got {_show(v)}")
    try:
        f = float(v)
    except OverflowError:  # an integer literal beyond any double: out of every range
        raise t.err(k, f"an integer of {_digits(v)} digits is out of range: a number in "
                       f"{'(' if lo_open else '['}{lo:g}, {hi:g}]") from None
    if math.isnan(f) or math.isinf(f):
        raise t.err(k, f"must be a finite number, got {v}")
    if f < lo or f > hi or (lo_open and f == lo):
        raise t.err(k, f"{v:g} is out of range: a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return f


def _source_keys() -> frozenset[str] | None:
    """The keys of MODELS_DIR's sources.toml (citations.sources, read once); None when that
    folder (VEMU_MODELS) has none."""
    from .citations import sources  # (citations imports this module)

    p = MODELS_DIR / "sources.toml"
    if not p.is_file():
        return None
    try:
        return frozenset(sources())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"is not valid TOML ({e}): a model's `sources` are checked against it", file=str(p)) from None


def _sources(t: _Table) -> tuple[str, ...]:
    """A model's ``sources``: keys of models/sources.toml (a key it lacks cites nothing, and
    `vemu show` would drop it silently)."""
    keys = t.strings("sources")
    known = _source_keys()
    for i, k in enumerate(keys if known is not None else ()):
        if k not in known:
            close = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise t.err(f"sources[{i}]", f"'{k}' is not a key of models/sources.toml; {hint}add the source there "
                                         "to cite it")
    return keys


def _params(t: _Table) -> dict[str, float]:
    p = t.table("params")
    out = {}
    for k in p.data:
        out[k] = p.num(k, lo=0, hi=1e15)
    return out


_STAGE_KEYS = ("name", "on", "cycles", "per_byte", "delay_us", "account", "batch", "priority", "preempt",
               "direction", "throttle_us", "queues", "fork", "per_page", "page_bytes", "unpaged_bytes")


def _queues(t: "_Table") -> Union[int, str]:
    """`queues`: a whole number, or "units" (one per unit of the stage's resource)."""
    if isinstance(t.data.get("queues"), str):
        v = t.data["queues"]
        if v != "units":
            raise t.err("queues", f"must be a whole number of queues or \"units\" (one per unit of the stage's "
                                  f"resource: per vCPU on a cpu), got '{v}'")
        return v
    return t.int("queues", 1, lo=1, hi=LIMITS["units"])


def _per_page(t: "_Table") -> Union[float, str]:
    """`per_page` (a number or param); `page_bytes` and `unpaged_bytes` only beside it."""
    for k in ("page_bytes", "unpaged_bytes"):
        if t.has(k) and not t.has("per_page"):
            raise t.err(k, "only a stage with `per_page` counts pages")
    return t.value("per_page", 0.0, allow_dist=False, hi=1e12)  # type: ignore[return-value]


def _stage(data: Any, file: str, path: str) -> Stage:
    t = _Table(data, file, path)
    t.allow(*_STAGE_KEYS)
    on = t.str("on") if t.has("on") else None
    if on is None and not t.has("delay_us"):
        raise t.err(None, "a stage needs `on` (a resource) or `delay_us` (a pure delay)")
    if on is None:
        for k in ("cycles", "per_byte", "account", "batch", "priority", "preempt", "direction", "throttle_us",
                  "queues", "per_page", "page_bytes", "unpaged_bytes"):
            if t.has(k):
                raise t.err(k, "only a stage with `on` can have it")
    account = t.str("account", "tenant")
    if not account or not account.replace("_", "").replace("-", "").isalnum():
        raise t.err("account", f"'{account}' is not a category name (letters, digits, '_' or '-')")
    if account in ENGINE_CATEGORIES:
        raise t.err("account", f"'{account}' is reserved for the engine; use another category")
    pb = t.value("per_byte", 0.0, allow_dist=False, hi=1e9)
    return Stage(
        # unnamed: "tenant work on vcpu" where it does work; a device's stage (no cycles) is the device
        name=t.str("name", (f"{account} work on {on}" if t.has("cycles") or t.has("per_byte") else on) if on
                   else "delay"), on=on, cycles=t.value("cycles", 0.0), per_byte=pb,  # type: ignore[arg-type]
        stream="" if t.has("name") else (on or "delay"),
        delay_us=t.value("delay_us", 0.0, hi=1e12), account=account,
        batch=t.int("batch", 1, lo=1, hi=LIMITS["batch"]), priority=t.int("priority", 0, lo=-1000, hi=1000),
        preempt=t.bool("preempt", False),
        where=f"{file}:{path}", file=file, direction=t.str("direction", choices=("rx", "tx")) if t.has("direction") else None,
        throttle_us=t.value("throttle_us", 0.0, allow_dist=False, hi=1e12),  # type: ignore[arg-type]
        queues=_queues(t),
        fork=t.str("fork") if t.has("fork") else None,
        per_page=_per_page(t),
        page_bytes=t.num("page_bytes", 4096.0, lo=1, hi=LIMITS["bytes"]),
        unpaged_bytes=t.value("unpaged_bytes", 0.0, allow_dist=False, hi=LIMITS["bytes"]),  # type: ignore[arg-type]
    )


def _resource(name: str, t: _Table, on_host_default: bool) -> Resource:
    if not name.strip():
        raise t.err(None, "a resource needs a name, not an empty or blank key (stages name it: on = \"NAME\")")
    kind = t.str("kind", choices=("cpu", "link", "server"))
    cap = t.int("capacity", -1, lo=-1, hi=LIMITS["pool"])
    if kind == "cpu":
        t.allow("kind", "cores", "ghz", "on_host", "capacity", "poll")
        on_host = t.bool("on_host", on_host_default)
        cores = t.int("cores", lo=1, hi=LIMITS["units"])
        ghz: float | None
        if on_host:  # runs at the host's clock, filled in when the host is known
            ghz = t.num("ghz", lo=0, hi=100, lo_open=True) if t.has("ghz") else None
        else:
            ghz = t.num("ghz", lo=0, hi=100, lo_open=True)
        return Resource(name, "cpu", cores, ghz=ghz, on_host=on_host, capacity=cap, poll=t.bool("poll", False))
    if t.has("poll"):
        raise t.err("poll", "only a cpu resource can poll")
    if kind == "link":
        t.allow("kind", "gbps", "lanes", "overhead_bytes", "segment_bytes", "capacity", "duplex")
        if t.has("segment_bytes") and not t.has("overhead_bytes"):
            raise t.err("segment_bytes", "cuts a request into frames that each pay overhead_bytes: give "
                                         "overhead_bytes too")
        return Resource(name, "link", t.int("lanes", 1, lo=1, hi=LIMITS["units"]),
                        gbps=t.num("gbps", lo=0, hi=1e6, lo_open=True),
                        overhead_bytes=t.num("overhead_bytes", 0.0, lo=0, hi=1e6),
                        segment_bytes=t.num("segment_bytes", 0.0, lo=1, hi=LIMITS["bytes"]), capacity=cap,
                        duplex=t.bool("duplex", False))
    t.allow("kind", "servers", "service_us", "capacity")
    if not t.has("service_us"):
        raise t.err("service_us", "is required for a server (a number or a distribution, microseconds)")
    return Resource(name, "server", t.int("servers", lo=1, hi=LIMITS["units"]),
                    service_us=t.value("service_us", hi=1e12), capacity=cap)


def _steps(items: list[Any], file: str, path: str) -> tuple[Step, ...]:
    if not items:
        raise ModelError("must list at least one step", file=file, key=path)
    out: list[Step] = []
    for i, s in enumerate(items):
        p = f"{path}[{i}]"
        if isinstance(s, dict) and "path" in s:
            t = _Table(s, file, p)
            t.allow("path", "bytes", "count")
            out.append(PathStep(t.str("path"), t.value("bytes", 0.0, hi=LIMITS["bytes"]),
                                t.int("count", 1, lo=1, hi=10_000), where=p))
        else:
            out.append(_stage(s, file, p))
    return tuple(out)


def _flow(data: Any, file: str, path: str, background: bool) -> Flow:
    t = _Table(data, file, path)
    keys = ["name", "arrival", "clients", "think_us", "rate_per_s", "steps", "mix"]
    if background:
        keys.append("per_vcpu")
    t.allow(*keys)
    name = t.str("name")
    if "/" in name:  # FLOW/CLASS names a class of a flow's mix, TENANT/FLOW a tenant's flow
        raise t.err("name", f"'{name}' must not contain '/' (results name a flow's classes FLOW/CLASS)")
    # measures read FLOW.MEASURE, host_cycles.CATEGORY, utilization.RESOURCE: a flow named
    # utilization.x would give utilization.x.throughput_per_s, which a resource x.throughput_per_s
    # gives too (found only after every run of a sweep)
    reserved = _reserved_prefix(name)
    if reserved is not None:
        raise t.err("name", f"'{name}' names the measures of every {reserved.split('_')[0]} "
                            f"({reserved}.NAME in sweeps and replications); rename the flow")
    arrival = t.str("arrival", choices=("closed", "poisson", "periodic"))
    if arrival == "closed":
        for k in ("rate_per_s", "per_vcpu"):
            if t.has(k):
                raise t.err(k, "belongs to an open flow (arrival = \"poisson\" or \"periodic\"); a closed flow has clients and think_us")
        clients = t.int("clients", lo=1, hi=MAX_CLIENTS)
        think = t.value("think_us", 0.0, hi=1e12)
        rate = 0.0
    else:
        for k in ("clients", "think_us"):
            if t.has(k):
                raise t.err(k, f"belongs to a closed flow; an open ({arrival}) flow has rate_per_s")
        clients, think = 0, 0.0
        rate = t.num("rate_per_s", lo=0, hi=1e12, lo_open=True)
    if t.has("steps") == t.has("mix"):
        raise t.err(None, "a flow needs exactly one of `steps` or `mix`")
    if t.has("steps"):
        classes: tuple[RequestClass, ...] = (RequestClass(name, 1.0, _steps(t.list("steps"), file, t.key("steps"))),)
    else:
        mix = t.list("mix")
        if not mix:
            raise t.err("mix", "must list at least one request class")
        cl = []
        for i, m in enumerate(mix):
            mt = _Table(m, file, t.key(f"mix[{i}]"))
            mt.allow("name", "weight", "steps")
            if "/" in mt.str("name"):
                raise mt.err("name", f"'{mt.str('name')}' must not contain '/' (results name it FLOW/CLASS)")
            cl.append(RequestClass(mt.str("name"), mt.num("weight", lo=0, hi=1e12, lo_open=True),
                                   _steps(mt.list("steps"), file, mt.key("steps"))))
        names = [c.name for c in cl]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise t.err("mix", f"class name '{sorted(dup)[0]}' is used twice")
        classes = tuple(cl)
    return Flow(name, arrival, classes, clients=clients, think_us=think, rate_per_s=rate,
                per_vcpu=t.bool("per_vcpu", False) if background else False)


def _check_name(t: _Table, stem: str | None) -> str:
    name = t.str("name")
    if stem is not None and name != stem:
        raise t.err("name", f"'{name}' must equal the file name '{stem}'")
    return name


def parse_host(data: Any, file: str = "<host>", stem: str | None = None, prefix: str = "") -> Host:
    t = _Table(data, file, prefix)
    t.allow("name", "summary", "sources", "cores", "ghz", "memory_gib", "params", "devices", "idle_states",
            "halt_poll_us")
    ghz = t.num("ghz", lo=0, hi=100, lo_open=True)
    idle = _idle_states(t)
    halt_poll = t.num("halt_poll_us", 0.0, lo=0, hi=1e6)
    if halt_poll > 0 and not idle:
        raise t.err("halt_poll_us", "needs idle_states: a vCPU polls this long before it sleeps in one")
    dev = t.table("devices")
    if "vcpu" in dev.data:
        raise dev.err("vcpu", "'vcpu' is built in (the host's cores minus the reserve); choose another name")
    for k in dev.data:
        if "@" in k:
            raise dev.err(k, AT_IN_NAME)
        if _has_control(k):
            raise dev.err(k, f"{k!r} has a control character; choose a name without one")
    devices = tuple(_resource(k, dev.table(k), False) for k in dev.data)
    for d in devices:
        if d.kind == "cpu" and d.on_host:
            raise dev.err(d.name, "a host device cannot be an on-host cpu; host cores are `cores`")
    return Host(
        name=_check_name(t, stem), summary=t.str("summary", ""), sources=_sources(t),
        cores=t.int("cores", lo=1, hi=LIMITS["units"]), ghz=ghz,
        memory_gib=t.num("memory_gib", lo=0, hi=1e9, lo_open=True),
        params=_params(t), devices=devices, file=file, idle_states=idle, halt_poll_us=halt_poll,
    )


def _idle_states(t: _Table) -> tuple[IdleState, ...]:
    """The host cores' idle states, shallowest first (each a table: name, exit_us, residency_us)."""
    items = t.list("idle_states", required=False)
    if len(items) > LIMITS["idle_states"]:
        raise t.err("idle_states", f"{len(items)} idle states, at most {LIMITS['idle_states']}")
    out: list[IdleState] = []
    for i, item in enumerate(items):
        it = _Table(item, t.file, t.key(f"idle_states[{i}]"))
        it.allow("name", "exit_us", "residency_us")
        st = IdleState(it.str("name", f"state{i}"), it.num("exit_us", lo=0, hi=1e6),
                       it.num("residency_us", lo=0, hi=1e6))
        if any(o.name == st.name for o in out):
            raise it.err("name", f"'{st.name}' names two idle states")
        if out and st.residency_us < out[-1].residency_us:
            raise it.err("residency_us", f"{st.residency_us:g} is shorter than the {out[-1].residency_us:g} of "
                         f"'{out[-1].name}' before it: list the states shallowest first")
        out.append(st)
    return tuple(out)


def parse_architecture(data: Any, file: str = "<architecture>", stem: str | None = None, prefix: str = "") -> Architecture:
    t = _Table(data, file, prefix)
    t.allow("name", "summary", "sources", "params", "reserve", "resources", "paths", "background", "nested_paging")
    rv = t.table("reserve")
    rv.allow("cores", "memory_gib")
    rs = t.table("resources")
    resources = []
    for k in rs.data:
        if k == "vcpu":
            raise rs.err(k, "'vcpu' is built in (the host's cores minus the reserve); choose another name")
        if "@" in k:
            raise rs.err(k, AT_IN_NAME)
        if _has_control(k):
            raise rs.err(k, f"{k!r} has a control character; choose a name without one")
        resources.append(_resource(k, rs.table(k), True))
    ps = t.table("paths", required=True)
    paths = {}
    for k in ps.data:
        if not k.strip():
            raise ps.err(k, "a path needs a name, not an empty or blank key (steps name it: path = \"NAME\")")
        if _has_control(k):
            raise ps.err(k, f"{k!r} has a control character; choose a name without one")
        pt = ps.table(k)
        pt.allow("stages")
        stages = pt.list("stages")
        if not stages:
            raise pt.err("stages", "must list at least one stage")
        paths[k] = tuple(_stage(s, file, pt.key(f"stages[{i}]")) for i, s in enumerate(stages))
    bg = tuple(_flow(f, file, t.key(f"background[{i}]"), True) for i, f in enumerate(t.list("background", required=False)))
    return Architecture(
        name=_check_name(t, stem), summary=t.str("summary", ""), sources=_sources(t),
        params=_params(t), reserve_cores=rv.int("cores", 0, lo=0, hi=LIMITS["units"]),
        reserve_memory_gib=rv.num("memory_gib", 0.0, lo=0, hi=1e9), resources=tuple(resources),
        paths=paths, background=bg, file=file,
        nested_paging=t.value("nested_paging", 0.0, allow_dist=False, hi=MAX_NESTED_PAGING),
    )


def parse_workload(data: Any, file: str = "<workload>", stem: str | None = None, prefix: str = "") -> Workload:
    t = _Table(data, file, prefix)
    t.allow("name", "summary", "sources", "rationale", "params", "flows")
    flows = tuple(_flow(f, file, t.key(f"flows[{i}]"), False) for i, f in enumerate(t.list("flows")))
    if not flows:
        raise t.err("flows", "must list at least one flow")
    names = [f.name for f in flows]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise t.err("flows", f"flow name '{sorted(dup)[0]}' is used twice")
    return Workload(name=_check_name(t, stem), summary=t.str("summary", ""), sources=_sources(t),
                    rationale=t.str("rationale", ""), params=_params(t), flows=flows, file=file)


PARSERS = {"host": parse_host, "architecture": parse_architecture, "workload": parse_workload}


# ----------------------------------------------------------------------------- files

MAX_FILE_BYTES = 16 << 20  # a model file is text of a few KB; refuse before reading a huge one


def read_toml(path: Path | str) -> dict[str, Any]:
    """Reads a TOML file; syntax errors become a ModelError with line and column."""
    if str(path) == "":  # Path("") is ".", the current directory
        raise ModelError("an empty file name; give the path of a TOML file", file="''")
    p = Path(path)
    try:
        st = os.stat(p)
        if stat.S_ISDIR(st.st_mode):
            raise ModelError("is a directory, not a TOML file", file=str(p))
        if not stat.S_ISREG(st.st_mode):
            raise ModelError("is not a regular file (a TOML model or experiment file is expected)", file=str(p))
        if st.st_size > MAX_FILE_BYTES:
            raise ModelError(f"is {st.st_size} bytes; a model file may be at most {MAX_FILE_BYTES >> 20} MiB", file=str(p))
        with open(p, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ModelError("no such file", file=str(p)) from None
    except IsADirectoryError:
        raise ModelError("is a directory, not a TOML file", file=str(p)) from None
    except OSError as e:
        raise ModelError(f"cannot read: {e.strerror or e}", file=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ModelError(f"not UTF-8 text: {e.reason} (at line {line}, column {col}); save the file as UTF-8",
                         file=str(p)) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write: not TOML, but harmless
    try:
        return _parse_toml(text)
    except tomllib.TOMLDecodeError as e:
        raise ModelError(f"TOML syntax error: {e}", file=str(p)) from None
    except ValueError as e:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ModelError(f"TOML value out of range: {str(e).split(';')[0]}", file=str(p)) from None
    except RecursionError:
        raise ModelError("TOML syntax error: arrays or tables nested too deeply", file=str(p)) from None


_TOML_CACHE: dict[str, dict[str, Any]] = {}


def _parse_toml(text: str) -> dict[str, Any]:
    """tomllib.loads, memoised on the text (sweeps load the same few files thousands of
    times); callers get a fresh deep copy, so they may modify it."""
    data = _TOML_CACHE.get(text)
    if data is None:
        data = tomllib.loads(text)
        if len(_TOML_CACHE) > 256:
            _TOML_CACHE.clear()
        _TOML_CACHE[text] = data
    return copy.deepcopy(data)


def bundled(kind: str) -> list[str]:
    """Names of the bundled models of a kind ('host', 'architecture', 'workload')."""
    d = MODELS_DIR / KIND_DIRS[kind]
    # regular files only (through links), as bundled_path reads them: a FIFO or a folder
    # named x.toml is no model, and listing it offered 'did you mean x?' for x itself
    return sorted(p.stem for p in d.glob("*.toml") if p.is_file()) if d.is_dir() else []


def bundled_path(kind: str, name: str, *, file: str | None = None, key: str | None = None) -> Path:
    """The file of a bundled model; ``file`` and ``key`` say where the name was given."""
    _check_kind(kind)
    key = key or f"experiment.{kind}"
    if not isinstance(name, str):
        raise ModelError(f"must be a bundled {kind}'s name (a string), got {_show(name)}", file=file, key=key)
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise ModelError(f"'{name}' is not a bundled {kind} name (a file stem from `vemu list`, such as "
                         f"'{(bundled(kind) or ['none'])[0]}'); give a path as the experiment file instead",
                         file=file, key=key)
    p = MODELS_DIR / KIND_DIRS[kind] / f"{name}.toml"
    if not p.is_file():
        names = bundled(kind)
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ModelError(f"no bundled {kind} '{name}'; {hint}known: {', '.join(names) or 'none'}",
                         file=file, key=key)
    return p


def _check_kind(kind: Any, key: str = "kind") -> None:
    if not isinstance(kind, str) or kind not in KINDS:
        raise ModelError(f"{_show(kind)} is not a model kind: one of {', '.join(KINDS)}", key=key)


def load(kind: str, name: str) -> Host | Architecture | Workload:
    """Loads one bundled model by name."""
    _check_kind(kind)
    p = bundled_path(kind, name, key="name")
    return PARSERS[kind](read_toml(p), str(p), p.stem)  # type: ignore[operator]


# ----------------------------------------------------------------------------- overrides

def parse_set(text: str) -> tuple[str, Any]:
    """Splits ``KEY=VALUE``; VALUE is read as a TOML value, else taken as a bare string."""
    if "=" not in text:
        raise ModelError(f"'{text}' is not KEY=VALUE", key="--set")
    k, v = text.split("=", 1)
    k, v = k.strip(), v.strip()
    if not k:
        raise ModelError(f"'{text}' has an empty key", key="--set")
    try:
        val = tomllib.loads(f"v = {v}")["v"]
    except ValueError:  # not a TOML value (TOMLDecodeError), or an integer of too many digits
        val = v
    except RecursionError:
        raise ModelError(f"the value of '{k}' has arrays or tables nested too deeply", key="--set") from None
    return k, val


def _apply_set(raw: dict[str, dict[str, Any]], key: str, value: Any, file: str | None,
               at_key: str = "set.", created: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Applies one override; returns the places it wrote, each (model kind or "tenants", key
    path within it, list items by index), so that an error there can name the override: one
    place, or each a key with ``*`` parts reached. An error names ``file`` and the key
    ``at_key`` + the key path (a file's ``[set]``: "set."; the command line: no file, "--set ").
    ``created`` gets the place of each table the override made on its way (what is wrong in
    it is the override's too)."""
    parts = key.split(".")
    if any(not p.strip() for p in parts):
        raise ModelError("a key path has an empty part: give names or list indices separated by single dots "
                         "(a param name, or e.g. architecture.reserve.cores)", file=file, key=f"{at_key}{key}")
    def params_of(kind: str) -> dict[str, Any]:
        """A model's params table. The files' were checked to be tables before any override,
        so one that is not was replaced by an earlier override."""
        p = raw[kind].get("params", {}) if kind in raw and isinstance(raw[kind], dict) else {}
        if not isinstance(p, dict):
            raise ModelError(f"{kind}.params is {_typename(p)}, not a table: an earlier override replaced it",
                             file=file, key=f"{at_key}{key}")
        return p

    if len(parts) == 1:  # a param name
        owners = [kind for kind in KINDS if key in params_of(kind)]
        if not owners:
            known = sorted({p for kind in KINDS for p in params_of(kind)})
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ModelError(f"no param '{key}' in the host, architecture or workload; {hint}"
                             f"params: {', '.join(known) or 'none'}; or give a dotted key path",
                             file=file, key=f"{at_key}{key}")
        raw[owners[0]]["params"][key] = value
        return [(owners[0], f"params.{key}")]
    if parts[0] not in KINDS and not (parts[0] == "tenants" and "tenants" in raw):
        roots = KINDS + (("tenants",) if "tenants" in raw else ())
        raise ModelError(f"a dotted key starts with one of {', '.join(roots)}", file=file, key=f"{at_key}{key}")
    if parts[0] == "workload" and "workload" not in raw:
        raise ModelError("this experiment has tenants: set a tenant's workload as tenants.NAME.workload....",
                         file=file, key=f"{at_key}{key}")
    if "*" in parts[1:]:
        places: list[list[str]] = []
        found = _wildcard_leaves(raw, parts, file=file, key=f"{at_key}{key}", places=places)
        if not found:
            raise ModelError(f"matches nothing in the {parts[0]}: a '*' stands for every key or list item there, "
                             "and only values the model already has (not tables or lists) are set",
                             file=file, key=f"{at_key}{key}")
        for _, container, k in found:
            container[k] = copy.deepcopy(value)  # each place its own value: a later --set may change one
        return [(at[0], ".".join(at[1:])) for at in places]
    node: Any = raw[parts[0]]
    at = [parts[0]]  # the path written, list items by index (as error keys name them)
    for i, p in enumerate(parts[1:], 1):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            idx = list_index(node, p, file=file, key=f"{at_key}{where}")
            if idx is None:
                raise ModelError(f"no list item '{p}' (give an index below {len(node)} or an item's name)",
                                 file=file, key=f"{at_key}{where}")
            at.append(str(idx))
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last and parts[i - 1] == "params" and p not in node:
                # a param no stage reads is used by nothing, and names are unique across the
                # models: a new one here can only be a misspelling
                known = sorted(node)
                everywhere = {k: f"{kind}.params.{k}" for kind in KINDS for k in params_of(kind)}
                everywhere.update({k: ".".join(parts[:i] + [k]) for k in known})
                close = difflib.get_close_matches(p, list(everywhere), n=1, cutoff=0.6)
                hint = f"did you mean '{everywhere[close[0]]}'? " if close else ""
                raise ModelError(f"no param '{p}' in {'.'.join(parts[:i])}; {hint}params there: "
                                 f"{', '.join(known) or 'none'} (an override changes a param the model has)",
                                 file=file, key=f"{at_key}{where}")
            at.append(p)
            if last:
                node[p] = value
            else:
                if p not in node:
                    node[p] = {}
                    if created is not None:
                        created.append((parts[0], ".".join(at[1:])))
                node = node[p]
        else:
            raise ModelError(f"'{'.'.join(parts[:i])}' is a value, not a table or list", file=file, key=f"{at_key}{where}")
    return [(parts[0], ".".join(at[1:]))]


def _set_entries(key: str, value: Any) -> list[tuple[str, Any]]:
    """The overrides one entry of an experiment file's [set] table stands for. TOML reads an
    unquoted dotted key (``architecture.reserve.cores = 12``) as nested tables; a bare key's
    value is a param's, never a table, so a bare key holding a table is such a path and is
    flattened back into dotted keys, down to the values: a table with a `dist` (a
    distribution) is a value, as is an empty one. (As in TOML, ``a.b = { c = 1 }`` is
    ``a.b.c = 1``; a quoted key, ``"host.devices.nic" = { ... }``, sets the table whole.)"""
    if "." in key or not _is_path_table(value):
        return [(key, value)]
    out: list[tuple[str, Any]] = []

    def walk(k: str, v: Any) -> None:
        if _is_path_table(v):
            for sub, sv in v.items():
                walk(f"{k}.{sub}", sv)
        else:
            out.append((k, v))

    walk(key, value)
    return out


def _is_path_table(v: Any) -> bool:
    """A nested table of [set] that is part of a key path, not a value: not empty and not a
    distribution (`dist` a name)."""
    return isinstance(v, dict) and bool(v) and not isinstance(v.get("dist"), str)


def list_index(node: list[Any], p: str, *, file: str | None = None, key: str | None = None) -> int | None:
    """A list item as a key path names it: an index (negative from the end) or an item's name.
    A name two items share is refused (ModelError at ``file``/``key``): taking the first would
    change one of them where the user meant both, or the other."""
    if re.fullmatch(r"-?[0-9]+", p):  # ASCII digits only: int() refuses '²', accepts '٣'
        i = int(p)
        return i % len(node) if -len(node) <= i < len(node) else None
    named = [j for j, x in enumerate(node) if isinstance(x, dict) and x.get("name") == p]
    if len(named) > 1:
        raise ModelError(f"{len(named)} list items are named '{p}' (indices {', '.join(map(str, named))}): "
                         "give an index, or '*' for every item", file=file, key=key)
    return named[0] if named else None


def _wildcard_leaves(raw: Mapping[str, Any], parts: list[str], match: Any = None, *, file: str | None = None,
                     key: str | None = None, places: list[list[str]] | None = None) -> list[tuple[list[str], Any, Any]]:
    """Every value (not a table or list) a key path with ``*`` parts reaches in the raw
    models: (the parts as written with each ``*`` replaced, the container, its key). A ``*``
    matches every key of a table or item of a list (by index); other parts are keys, list
    indices or items' names, as in a plain path; with ``match``, only values equal to it.
    ``places``, if given, gets each value's path with list items by index."""
    found: list[tuple[list[str], Any, Any]] = []

    def walk(node: Any, i: int, path: list[str], at: list[str]) -> None:
        p = parts[i]
        if isinstance(node, dict):
            steps = [(k, str(k)) for k in node] if p == "*" else ([(p, p)] if p in node else [])
        elif isinstance(node, list):
            j = None if p == "*" else list_index(node, p, file=file, key=key)
            steps = [(k, str(k)) for k in range(len(node))] if p == "*" else ([] if j is None else [(j, p)])
        else:
            return
        for k, written in steps:
            if i + 1 < len(parts):
                walk(node[k], i + 1, path + [written], at + [str(k)])
            elif not isinstance(node[k], (dict, list)) and (match is None or node[k] == match):
                found.append((path + [written], node, k))
                if places is not None:
                    places.append(at + [str(k)])

    if parts[0] in raw and len(parts) > 1:
        walk(raw[parts[0]], 1, [parts[0]], [parts[0]])
    return found


def expand_wildcards(raw: Mapping[str, Any], key: str, match: Any = None) -> list[str]:
    """The plain keys a dotted key with ``*`` parts stands for in these raw models (see
    :func:`_wildcard_leaves`); each sets one value when given to ``--set``."""
    return [".".join(path) for path, _, _ in _wildcard_leaves(raw, key.split("."), match)]


# ----------------------------------------------------------------------------- experiments

def load_experiment(
    spec: str | Path | Mapping[str, Any] | None = None,
    *,
    host: str | None = None,
    architecture: str | None = None,
    workload: str | None = None,
    sets: Iterable[str | tuple[str, Any]] = (),
    duration_s: float | None = None,
    warmup_s: float | None = None,
    seed: int | None = None,
) -> Experiment:
    """Builds an experiment from an experiment file (or dict) and/or bundled names.

    Keyword arguments replace what the file says; ``sets`` are ``KEY=VALUE`` overrides
    applied after the file's own ``[set]`` table, before validation.
    """
    sets = _check_arguments(spec, host, architecture, workload, sets, seed)
    file = "<experiment>"
    data: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        try:
            data = json.loads(json.dumps(spec))  # a deep, plain copy
        except (TypeError, ValueError, RecursionError) as e:
            raise ModelError(f"an experiment must be plain data (tables, lists, strings, numbers, booleans): {e}",
                             file=file) from None
    elif spec is not None:
        file = str(spec)
        data = read_toml(spec)
    top = _Table(data, file, "")
    top.allow("experiment", "host", "architecture", "workload", "set")
    ex = top.table("experiment")
    ex.allow("host", "architecture", "workload", "tenants", "duration_s", "warmup_s", "seed")
    names = {"host": host, "architecture": architecture, "workload": workload}
    raw: dict[str, Any] = {}
    files: dict[str, str] = {}
    tenant_files: list[str] = []
    if ex.has("tenants"):
        if workload is not None or ex.has("workload") or "workload" in data:
            raise ex.err("tenants", "a multi-tenant experiment gives each tenant its workload; drop the experiment's workload")
        items = ex.list("tenants")
        if not items:
            raise ex.err("tenants", "must list at least one tenant")
        raw["tenants"] = []
        for i, item in enumerate(items):
            t = _Table(item, file, ex.key(f"tenants[{i}]"))
            t.allow("name", "vcpus", "workload")
            name = t.str("name")
            if not name or "/" in name or name in [x["name"] for x in raw["tenants"]]:
                raise t.err("name", f"'{name}' must be a unique name without '/'")
            vcpus = t.int("vcpus", lo=1, hi=LIMITS["units"])
            w = t.data.get("workload")
            if isinstance(w, str):
                p = bundled_path("workload", w, file=file, key=f"experiment.tenants[{i}].workload")
                raw["tenants"].append({"name": name, "vcpus": vcpus, "workload": read_toml(p)})
                tenant_files.append(str(p))
            elif isinstance(w, dict):
                raw["tenants"].append({"name": name, "vcpus": vcpus, "workload": w})
                tenant_files.append(file)
            else:
                raise t.err("workload", "is required: a bundled workload's name or an inline table")
    for kind in KINDS:
        if kind == "workload" and "tenants" in raw:
            continue
        chosen = names[kind]
        if chosen is None and ex.has(kind):
            chosen = ex.str(kind)
            if kind in data:
                raise ex.err(kind, f"names a bundled {kind} and the file also has an inline [{kind}] table; keep one")
            p = bundled_path(kind, chosen, file=file)
        elif chosen is not None:
            p = bundled_path(kind, chosen, key=f"--{kind}")
        if chosen is not None:
            raw[kind] = read_toml(p)
            files[kind] = str(p)
        elif kind in data:
            if not isinstance(data[kind], dict):
                raise top.err(kind, f"must be a table, got {_typename(data[kind])}")
            raw[kind] = data[kind]
            files[kind] = file
        else:
            raise ModelError(f"no {kind}: name a bundled one (experiment.{kind} or --{kind}) or give an inline [{kind}] table",
                             file=file, key=f"experiment.{kind}")
    for kind in (k for k in KINDS if k in raw):  # overrides look params up by name: a params that is no
        params = raw[kind].get("params", {})        # table is said first
        if not isinstance(params, dict):
            inline = files[kind] == file
            raise ModelError(f"must be a table, got {_typename(params)}", file=files[kind],
                             key=f"{kind}.params" if inline else "params")
    # key, value, where it was given, and the file and key prefix its own errors name
    overrides: list[tuple[str, Any, str, str | None, str]] = []
    st = top.table("set")
    overrides += [(fk, fv, f"{file}: [set] {fk}", file, "set.") for k, v in st.data.items()
                  for fk, fv in _set_entries(k, v)]
    for i, s in enumerate(sets):
        k, v = _check_set_item(s, i)
        overrides.append((k, v, f"--set {k}", None, "--set "))
    written: list[tuple[str, str, str, str]] = []  # kind, key path in it, where the override was given, its key
    placed: list[tuple[str, str]] = []  # (its key, KIND.path) of each override that wrote one place
    wild: list[tuple[str, str]] = []  # the same for each place an override with a '*' wrote
    for k, v, origin, efile, at_key in overrides:
        made: list[tuple[str, str]] = []
        places = _apply_set(raw, k, v, efile, at_key, made)
        for i, t in enumerate(raw.get("tenants", ())):
            if not isinstance(t, dict):
                continue
            if isinstance(t.get("workload"), str):  # a bundled workload by name: its table, as the file form reads it
                wp = bundled_path("workload", t["workload"], file=efile, key=f"{at_key}{k}")
                t["workload"] = read_toml(wp)
                tenant_files[i] = str(wp)
            elif ("tenants", f"{i}.workload") in places or ("tenants", str(i)) in places:
                tenant_files[i] = file  # a table given here: its keys are this file's
        written += [(*place, origin, k) for place in places + made]
        if "*" not in k.split(".")[1:]:
            placed += [(k, f"{kind}.{path}") for kind, path in places]
        else:
            wild += [(k, f"{kind}.{path}") for kind, path in places]
    try:
        exp = _parse_experiment(file, ex, raw, files, tenant_files, duration_s, warmup_s, seed)
        bundled = {(kind, Path(f).stem) for kind, f in files.items() if f != file}
        bundled |= {("workload", Path(f).stem) for f in tenant_files if f != file}
        out = dataclasses.replace(exp, placed=tuple(placed), bundled=tuple(sorted(bundled)), wild=tuple(wild))
        # the compiled form does not depend on `placed`: keep it (else every run compiled twice)
        object.__setattr__(out, "_compiled", exp._compiled)  # type: ignore[attr-defined]
        return out
    except ModelError as e:
        # a value an override wrote is blamed on the override, not on the file it replaced
        for kind, path, origin, _ in reversed(written):
            at = _error_place(e, kind, file, files, tenant_files)
            if at is not None and (at[0] == path or at[0].startswith(path + ".")):
                of = f" of {Path(e.file).name}" if e.file and e.file != file else ""
                raise ModelError(e.detail, file=origin, key=f"{at[1]}{of}") from None
        # an error beside a --set's place, in the table it wrote (its `kind` made `duplex`
        # unknown; its `on_host = false` made `ghz` required), where the models without the
        # --sets load: the --set's doing, not the file's
        near = []
        for kind, path, origin, _ in reversed(written):
            at = _error_place(e, kind, file, files, tenant_files)
            table = path.rpartition(".")[0]
            if at is not None and origin.startswith("--set ") and (at[0] == table or at[0].startswith(table + ".")):
                near.append((origin, at, e.file))
        if near and _loads_without_sets(spec, host, architecture, workload, duration_s, warmup_s, seed):
            # the --set whose removal alone lets the models load (on_host=false, not a later
            # cores=4 that wrote the same table); else the last one to write there
            items = [(_check_set_item(x, i)[0], x) for i, x in enumerate(sets)]
            culprit = near[0]
            for cand in dict.fromkeys(o for o, _, _ in near):
                rest = [x for k, x in items if f"--set {k}" != cand]
                if _loads_without_sets(spec, host, architecture, workload, duration_s, warmup_s, seed, rest):
                    culprit = next(n for n in near if n[0] == cand)
                    break
            origin, at, efile = culprit
            of = f" of {Path(efile).name}" if efile and efile != file else ""
            raise ModelError(e.detail, file=origin, key=f"{at[1]}{of}") from None
        raise


def _loads_without_sets(spec: Any, host: Any, architecture: Any, workload: Any, duration_s: Any, warmup_s: Any,
                        seed: Any, sets: Sequence[Any] = ()) -> bool:
    """Whether the experiment loads with only ``sets`` of its --sets (only on an error's
    path: what to blame)."""
    try:
        load_experiment(spec, host=host, architecture=architecture, workload=workload, sets=sets,
                        duration_s=duration_s, warmup_s=warmup_s, seed=seed)
        return True
    except ModelError:
        return False


def _error_place(e: ModelError, kind: str, file: str, files: Mapping[str, str],
                 tenant_files: Sequence[str]) -> tuple[str, str] | None:
    """Where in the raw models of ``kind`` (a model kind or "tenants") an error is: (its key
    path there, list items by index, as an override's place is; the key to report), or None
    when it is elsewhere."""
    key = e.key or ""
    if kind == "tenants":
        m = re.fullmatch(r"experiment\.tenants\[(\d+)\](.*)", key)
        if m is not None and e.file in (file, *tenant_files):  # the experiment's key of a tenant
            i, rest = m.group(1), m.group(2).lstrip(".")
        else:  # a key of a tenant's bundled workload file, in that file
            i = getattr(e, "tenant", None)
            if i is None or not 0 <= i < len(tenant_files) or e.file != tenant_files[i] or tenant_files[i] == file:
                return None
            rest = f"workload.{key}" if key else "workload"
            key = f"experiment.tenants[{i}].{rest}"
        local = f"{i}.{rest}" if rest else str(i)
    else:
        if e.file != files.get(kind, file):
            return None
        local = key.removeprefix(f"{kind}.") if files.get(kind) == file else key
        key = f"{kind}.{local}"
    return re.sub(r"\[(\d+)\]", r".\1", local), key  # flows[0].clients -> flows.0.clients


def _check_arguments(spec: Any, host: Any, architecture: Any, workload: Any, sets: Any, seed: Any) -> list[Any]:
    """load_experiment's arguments, as the API gives them: each a ModelError naming it.
    Returns ``sets`` as a list, each item's form checked before any file is read (`--set
    exit_cycles 3100` makes 3100 the spec: what is wrong is the --set, not a missing file)."""
    if not (spec is None or isinstance(spec, (str, os.PathLike, Mapping))):
        raise ModelError(f"must be an experiment file's path, a table (dict) or None, got {_show(spec)}", key="spec")
    for kind, v in (("host", host), ("architecture", architecture), ("workload", workload)):
        if v is not None and not isinstance(v, str):
            raise ModelError(f"must be a bundled {kind}'s name (a string) or None, got {_show(v)}", key=kind)
    what = "an iterable of overrides, each 'KEY=VALUE' or a (KEY, VALUE) pair"
    if isinstance(sets, (str, bytes, Mapping)) or not isinstance(sets, Iterable):
        raise ModelError(f"must be {what}, got {_show(sets) if not isinstance(sets, Mapping) else 'a table'}",
                         key="sets")
    if seed is not None:
        check_seed(seed)
    items = list(sets)
    for i, item in enumerate(items):
        _check_set_item(item, i)
    return items


def as_experiment(x: Any, *, key: str = "experiment") -> "Experiment":
    """An Experiment as the API's functions take it: an Experiment, or what
    :func:`load_experiment` takes (an experiment file's path, or a table); else a ModelError
    naming ``key`` (a path passed to Simulation() failed with "'str' object has no
    attribute 'host'")."""
    if isinstance(x, Experiment):
        return x
    if isinstance(x, (str, os.PathLike, Mapping)):
        return load_experiment(x)
    raise ModelError(f"must be an Experiment (load_experiment), an experiment file's path or a table, "
                     f"got {_show(x)}", key=key)


def check_count(n: Any, *, key: str, lo: int = 1, hi: int = 2**31 - 1) -> int:
    """An integer argument in [lo, hi] (not a bool, a float or a string), or a ModelError
    naming ``key``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not lo <= n <= hi:
        raise ModelError(f"must be an integer in [{lo}, {hi}], got {_show(n)}", key=key)
    return int(n)


def check_level(level: Any, *, key: str = "level") -> float:
    """A confidence level in (0, 1), or a ModelError naming ``key``."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ModelError(f"must be a confidence level in (0, 1), such as 0.95, got {_show(level)}", key=key)
    return float(level)


def check_seed(seed: Any, *, key: str = "seed", file: str | None = None) -> int:
    """A seed as the engine takes it (an integer in [0, 2**64), not a bool), or the
    ModelError naming ``key``: one check for the API's arguments, a run's and a file's."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ModelError(f"must be an integer, got {_show(seed)}: an integer in [0, 2**64)", file=file, key=key)
    if not 0 <= seed < 2**64:
        raise ModelError(f"must be an integer in [0, 2**64), got {seed}: out of range", file=file, key=key)
    return int(seed)


def _check_set_item(s: Any, i: int) -> tuple[str, Any]:
    """One item of load_experiment's ``sets``: 'KEY=VALUE' or a (KEY, VALUE) pair."""
    if isinstance(s, str):
        return parse_set(s)
    if isinstance(s, (tuple, list)) and len(s) == 2 and isinstance(s[0], str):
        if not s[0]:
            raise ModelError("an override has an empty key", key=f"sets[{i}]")
        return s[0], s[1]
    raise ModelError(f"must be 'KEY=VALUE' or a (KEY, VALUE) pair with a string KEY, got {_show(s)}",
                     key=f"sets[{i}]")


def _parse_experiment(file: str, ex: "_Table", raw: dict[str, Any], files: dict[str, str], tenant_files: list[str],
                      duration_s: float | None, warmup_s: float | None, seed: int | None) -> Experiment:
    parsed: dict[str, Any] = {}
    tenants: tuple[Tenant, ...] = ()
    if "tenants" in raw:
        ts = []
        for i, (t, tf) in enumerate(zip(raw["tenants"], tenant_files)):
            # checked again: overrides (--set tenants.NAME....) may have changed any of it
            tt = _Table(t, file, f"experiment.tenants[{i}]")
            tt.allow("name", "vcpus", "workload")
            name = tt.str("name")
            if not name or "/" in name or name in [x.name for x in ts]:
                raise tt.err("name", f"'{name}' must be a unique name without '/'")
            reserved = _reserved_prefix(name)  # its flows are TENANT/FLOW: the measures' prefixes as for a flow
            if reserved is not None:
                raise tt.err("name", f"'{name}' names the measures of every {reserved.split('_')[0]} "
                                     f"({reserved}.NAME in sweeps and replications); rename the tenant")
            vcpus = tt.int("vcpus", lo=1, hi=LIMITS["units"])
            wdata = t.get("workload")  # (a bundled workload's name was read into its table already)
            if not isinstance(wdata, dict):
                raise tt.err("workload", f"must be a table (a workload) or a bundled workload's name, got "
                                         f"{_typename(wdata)}")
            try:
                w = parse_workload(wdata, tf, Path(tf).stem if tf != file else None,
                                   f"experiment.tenants[{i}].workload" if tf == file else "")
            except ModelError as e:
                e.tenant = i  # type: ignore[attr-defined]  # whose (tenants may share a bundled workload's file)
                raise
            ts.append(Tenant(name, vcpus, w))
        tenants = tuple(ts)
        parsed["workload"] = Workload(name="+".join(t.workload.name for t in tenants),
                                      summary="tenants: " + ", ".join(f"{t.name} ({t.workload.name}, {t.vcpus} vCPUs)"
                                                                      for t in tenants),
                                      flows=tuple(f for t in tenants for f in t.workload.flows), file=file)
    for kind in KINDS:
        if kind in parsed:
            continue
        prefix = kind if files[kind] == file else ""
        stem = Path(files[kind]).stem if files[kind] != file else None
        parsed[kind] = PARSERS[kind](raw[kind], files[kind], stem, prefix)  # type: ignore[operator]
    dur = duration_s if duration_s is not None else ex.num("duration_s", 0.1, lo=MIN_DURATION_S, hi=MAX_DURATION_S)
    check_window(dur, 0.0, file=file)
    warm = warmup_s if warmup_s is not None else ex.num("warmup_s", dur / 10, lo=0, hi=MAX_DURATION_S)
    check_window(dur, warm, file=file)
    sd = int(seed) if seed is not None else ex.int("seed", 1, lo=0, hi=2**64 - 1)
    if not 0 <= sd < 2**64:
        raise ModelError(f"{sd} is out of range: an integer in [0, 2**64)", file=file, key="experiment.seed")
    exp = Experiment(parsed["host"], parsed["architecture"], parsed["workload"], dur, warm, sd, file, raw, tenants)
    # cross-references are checked now, not at run time; the result is kept for Simulation
    object.__setattr__(exp, "_compiled", compile_experiment(exp))
    return exp


# ----------------------------------------------------------------------------- compiling

@dataclass(frozen=True)
class ResourceInfo:
    name: str
    kind: str
    units: int
    ghz: float | None
    on_host: bool  # its cycles are host cycles (vcpu and on-host cpu resources)
    reserved: bool  # inside the reserve (idle time is reserved_idle)
    poll: bool
    sleeps: bool = False  # its units take the host's idle states (on-host cpu that does not poll)
    halt_polls: bool = False  # a sleeping vCPU that polls first (KVM halt-polling), its idle polls charged to poll


@dataclass(frozen=True)
class StageInfo:
    name: str
    flow: str
    request_class: str
    resource: str | None
    category: str
    step: str  # the path, or "inline"
    where: str = ""  # file:key of the stage's definition (unique per stage of a path)


@dataclass(frozen=True)
class Compiled:
    spec: Spec
    resources: tuple[ResourceInfo, ...]
    categories: tuple[str, ...]
    flows: tuple[str, ...]
    background: tuple[bool, ...]
    classes: tuple[tuple[str, str], ...]  # (flow, class)
    stages: tuple[StageInfo, ...]
    host_cores: int
    vcpus: int  # sold to tenants (all the unreserved cores unless tenants say otherwise)
    reserve_cores: int
    ghz: float
    tenants: tuple[tuple[str, int, int], ...] = ()  # (name, vcpus, resource index) of a multi-tenant host
    flow_tenants: tuple[str, ...] = ()  # each flow's tenant ("" on a single-tenant host)
    detached: frozenset[int] = frozenset()  # classes that run a forked path (no requests of their flow)
    flow_where: tuple[tuple[str, str], ...] = ()  # each flow's file and key path

    def own_classes(self, fi: int) -> list[int]:
        """The classes flow fi draws its requests from (not those its forks run)."""
        return _own_classes(self.spec.flows[fi], self.detached)


def _own_classes(flow_row: tuple[Any, ...], detached: Any) -> list[int]:
    """A compiled flow's own classes: its range of classes, bar the detached (forked) ones."""
    return [k for k in range(flow_row[4], flow_row[4] + flow_row[5]) if k not in detached]


def _tag(*parts: Any) -> int:
    """A flow's or a stage's tag, the key of its random draws in the engine (vemu.h,
    Randomness): a hash of the flow's identity (its name and how many flows of that name came
    before it), and for a stage where it stands in the flow (class, the step's place in the
    class and the repetition of a `count`, or the forked path) and what it draws for there (a
    device's name, or the stage's name, and its occurrence in the step; "bytes" for the step's
    sizes). Two models that differ in a cost, or two architectures under one workload, give a
    stage that stands in the same place the same tag, so the k-th request draws the same
    numbers there in both (common random numbers); stages in different places get different
    tags."""
    text = json.dumps(parts, separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class _Compiler:
    def __init__(self, exp: Experiment, *, trace_requests: int, pool_size: int | None):
        self.exp = exp
        h, a, w = exp.host, exp.architecture, exp.workload
        self.params: dict[str, tuple[float, str]] = {}
        for owner, params in (("host", h.params), ("architecture", a.params), ("workload", w.params)):
            for k, v in params.items():
                if k in self.params:
                    raise ModelError(f"param '{k}' is defined by both the {self.params[k][1]} and the {owner}; rename one",
                                     file=getattr(exp, owner).file, key=self._key(owner, f"params.{k}"))
                self.params[k] = (v, owner)
        if a.reserve_cores >= h.cores:
            raise ModelError(f"reserves {a.reserve_cores} cores but host '{h.name}' has {h.cores}: at most {h.cores - 1}",
                             file=a.file, key=self._key("architecture", "reserve.cores"))
        if a.reserve_memory_gib > h.memory_gib:
            raise ModelError(f"reserves {a.reserve_memory_gib:g} GiB but host '{h.name}' has {h.memory_gib:g} GiB",
                             file=a.file, key=self._key("architecture", "reserve.memory_gib"))
        self.res: list[ResourceInfo] = []
        self.res_defs: list[Resource | None] = []
        self.res_index: dict[str, int] = {}
        self.rx_index: dict[str, int] = {}  # the receive direction of each duplex link
        self.res_where: dict[str, tuple[str, str | None, str | None]] = {}  # device names: (its resource, file, key)
        # `vcpu` is the tenant's own cores: one pool, or one per tenant of a multi-tenant host
        self.vcpu = 0
        self.local_params: Mapping[str, float] = {}
        self.prefix = ""
        sellable = h.cores - a.reserve_cores
        if exp.tenants:
            sold = sum(t.vcpus for t in exp.tenants)
            if sold > sellable:
                raise ModelError(f"the tenants have {sold} vCPUs but host '{h.name}' has {sellable} to sell "
                                 f"({h.cores} threads, {a.reserve_cores} reserved)", file=exp.file,
                                 key="experiment.tenants")
            for t in exp.tenants:
                self.res_index[f"vcpu@{t.name}"] = len(self.res)
                self.res.append(ResourceInfo(f"vcpu@{t.name}", "cpu", t.vcpus, h.ghz, True, False, False))
                self.res_defs.append(None)
        else:
            self.res_index["vcpu"] = 0
            self.res.append(ResourceInfo("vcpu", "cpu", sellable, h.ghz, True, False, False))
            self.res_defs.append(None)
        for r in h.devices:
            self._add_res(r, False, h.file, self._key("host", f"devices.{r.name}"))
        on_host = 0
        for r in a.resources:
            if r.kind == "cpu" and r.on_host:
                if r.ghz is not None and r.ghz != h.ghz:
                    raise ModelError(f"an on-host resource runs at the host's {h.ghz:g} GHz, not {r.ghz:g}; "
                                     "omit ghz or set on_host = false", file=a.file, key=self._key("architecture", f"resources.{r.name}.ghz"))
                r = Resource(r.name, r.kind, r.units, h.ghz, True, capacity=r.capacity, poll=r.poll)
                on_host += r.units
            self._add_res(r, r.kind == "cpu" and r.on_host, a.file, self._key("architecture", f"resources.{r.name}"))
        for rdef in (*h.devices, *a.resources):  # a device no stage uses is checked all the same
            if rdef.kind == "server":
                self._dist(rdef.service_us, PS_PER_US, rdef_file(exp, rdef.name), self._device_key(rdef.name, "service_us"))
        if on_host > a.reserve_cores:
            raise ModelError(f"on-host cpu resources take {on_host} cores but the reserve is {a.reserve_cores}: "
                             "raise reserve.cores or set on_host = false", file=a.file,
                             key=self._key("architecture", "reserve.cores"))
        self.categories: list[str] = []
        self.cat_index: dict[str, int] = {}
        for c in STANDARD_CATEGORIES:
            self._cat(c)
        # the guest's own work takes 1 / (1 - share) as long, the share charged to `paging`
        share = a.nested_paging
        key = self._key("architecture", "nested_paging")
        share = self._param(share, a.file, key) if isinstance(share, str) else float(share)
        if not 0 <= share <= MAX_NESTED_PAGING:
            raise ModelError(f"{share:g} is not a share in [0, {MAX_NESTED_PAGING:g}] (of the guest's own time spent "
                             "in the nested dimension of its page walks)", file=a.file, key=key)
        self.paging = share
        if share:
            self._cat("paging")
        self.qclasses: list[tuple[int, int, int]] = []
        self.q_index: dict[Any, int] = {}
        self.stages: list[tuple[int, int, Dist, float, Dist, bool, Dist]] = []
        self.stage_info: list[StageInfo] = []
        self.classes: list[tuple[int, int, float]] = []
        self.class_names: list[tuple[str, str]] = []
        self.flows: list[tuple[bool, Dist, int, Dist, int, int]] = []
        self.flow_names: list[str] = []
        self.flow_name_set: set[str] = set()
        self.flow_bg: list[bool] = []
        self.trace_requests = trace_requests
        self.pool_size = pool_size
        self.walked: set[str] = set()
        self.fork_base, self.forks = 0, {}  # per flow: its first detached class; forked path -> class
        self.detached: set[int] = set()

    def _key(self, owner: str, key: str) -> str:
        """A key path as the user wrote it: prefixed by the table's name when the model is
        inline in the experiment file."""
        return f"{owner}.{key}" if getattr(self.exp, owner).file == self.exp.file else key

    def _device_key(self, name: str, field: str) -> str:
        on_host = any(r.name == name for r in self.exp.host.devices)
        owner = "host" if on_host else "architecture"
        return self._key(owner, f"{'devices' if on_host else 'resources'}.{name}.{field}")

    def _add_res(self, r: Resource, reserved: bool, file: str, key: str) -> None:
        if r.name in self.res_index and r.name in self.res_where and self.res_where[r.name][0] == r.name:
            raise ModelError(f"resource name '{r.name}' is used by both the host and the architecture", file=file, key=key)
        # the names results report it by (a duplex link's two sides) and the name stages give
        # it must each be one resource's: a device "nic.rx" beside a duplex "nic" hid one of them
        names = [r.name] + ([f"{r.name}.tx", f"{r.name}.rx"] if r.duplex else [])
        for n in names:
            if n in self.res_where or n in self.res_index:
                owner, ofile, okey = self.res_where.get(n, (n, None, None))
                this = (f"resource '{r.name}'" if n == r.name else
                        f"the {'transmit' if n.endswith('.tx') else 'receive'} side '{n}' of duplex link '{r.name}'")
                other = (f"resource '{owner}'" if owner == n else
                         f"the {'transmit' if n.endswith('.tx') else 'receive'} side '{n}' of duplex link '{owner}'")
                if owner.startswith("vcpu@") and owner == n:
                    other = f"tenant '{owner[5:]}''s vCPUs '{owner}'"
                at = f" ({okey}{' of ' + Path(ofile).name if ofile and ofile != file else ''})" if okey else ""
                raise ModelError(f"{this} has the name of {other}{at}: results would report the two as one; "
                                 "rename one", file=file, key=key)
        for n in names:
            self.res_where[n] = (r.name, file, key)
        self.res_index[r.name] = len(self.res)
        if r.duplex:  # two engine resources: NAME.tx (what `on = NAME` means) and NAME.rx
            self.res.append(ResourceInfo(f"{r.name}.tx", r.kind, r.units, r.ghz, False, False, False))
            self.res_defs.append(r)
            self.rx_index[r.name] = len(self.res)
            self.res.append(ResourceInfo(f"{r.name}.rx", r.kind, r.units, r.ghz, False, False, False))
        else:
            self.res.append(ResourceInfo(r.name, r.kind, r.units, r.ghz, r.kind == "cpu" and r.on_host, reserved, r.poll))
        self.res_defs.append(r)

    def _cat(self, name: str, file: str | None = None, key: str | None = None) -> int:
        if name not in self.cat_index:
            if len(self.categories) >= LIMITS["categories"]:
                raise ModelError(f"more than {LIMITS['categories']} accounting categories (the engine's limit)",
                                 file=file, key=key)
            self.cat_index[name] = len(self.categories)
            self.categories.append(name)
        return self.cat_index[name]

    def _param(self, name: str, file: str, key: str) -> float:
        if name in self.local_params:  # a tenant's own workload params
            return self.local_params[name]
        if name not in self.params:
            close = difflib.get_close_matches(name, list(self.params), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ModelError(f"unknown param '{name}'; {hint}params: {', '.join(sorted(self.params)) or 'none'}",
                             file=file, key=key)
        return self.params[name][0]

    def _dist(self, v: Value, scale: float, file: str, key: str) -> Dist:
        if isinstance(v, Dist_):
            mean = self._param(v.mean, file, key + ".mean") if isinstance(v.mean, str) else v.mean
            d: Dist = (v.dist, mean * scale, v.cv)
        elif isinstance(v, str):
            d = ("fixed", self._param(v, file, key) * scale, 0.0)
        else:
            d = ("fixed", float(v) * scale, 0.0)
        if not d[1] <= LIMITS["mean"]:
            raise ModelError(f"a mean of {d[1]:.3g} ps is beyond the engine's limit of {LIMITS['mean']:.3g}",
                             file=file, key=key)
        return d

    @staticmethod
    def _split(s: Stage) -> tuple[str, str]:
        """A stage's file and key path (for messages)."""
        return s.file, s.where[len(s.file) + 1:]

    def stage(self, s: Stage, flow: str, cls: str, step: str, bytes_: Value | None,
              bytes_where: tuple[str, str] | None = None, *, place: tuple[Any, ...], seen: dict[str, int]) -> None:
        """``bytes_where``: the file and key path of the workload step that gave ``bytes_``
        (the bytes are the step's, not the path stage's). ``place`` names the step the stage
        is part of (the flow's identity, the class, the step and its repetition, or the
        forked path) and ``seen`` counts what the step's stages so far drew for: together
        they make the stage's tags (see :func:`_tag`)."""
        file, key = self._split(s)
        q, cat, lanes = -1, self.cat_index.get("tenant", 0), 1
        work: Dist = NONE_DIST
        per_byte = 0.0
        paged: tuple[float, float, float] | None = None  # ps per page, page bytes, unpaged bytes
        rname = None
        if s.on is not None:
            ri = self._stage_resource(s, file, key)
            rname = self.res[ri].name
            info, rdef = self.res[ri], self.res_defs[ri]
            if info.kind == "cpu":
                ps_per_cycle = 1000.0 / float(info.ghz or 1.0)
                if self.paging and s.account == "tenant" and is_vcpu(rname):  # its page walks are two-dimensional
                    ps_per_cycle /= 1.0 - self.paging
                work = self._dist(s.cycles, ps_per_cycle, file, key + ".cycles")
                pb = self._param(s.per_byte, file, key + ".per_byte") if isinstance(s.per_byte, str) else float(s.per_byte)
                per_byte = pb * ps_per_cycle
                if not per_byte <= MAX_PER_BYTE_PS:
                    raise ModelError(f"{pb:g} cycles per byte at {info.ghz:g} GHz is {per_byte:.3g} ps per byte, beyond "
                                     f"the engine's limit of {MAX_PER_BYTE_PS:g}", file=file, key=key + ".per_byte")
                cat = self._cat(s.account, file, key + ".account")
                if (s.account == "poll" and is_vcpu(rname) and self.exp.host.halt_poll_us > 0
                        and self.exp.host.idle_states):
                    raise ModelError("the vCPUs halt-poll here (the host's halt_poll_us), and their idle polls are "
                                     "charged to 'poll': a stage's work there would be read as polling; charge it "
                                     "to another category", file=file, key=key + ".account")
                pp = self._param(s.per_page, file, key + ".per_page") if isinstance(s.per_page, str) else float(s.per_page)
                up = (self._param(s.unpaged_bytes, file, key + ".unpaged_bytes")
                      if isinstance(s.unpaged_bytes, str) else float(s.unpaged_bytes))
                if not 0 <= up <= LIMITS["bytes"]:
                    raise ModelError(f"unpaged_bytes {up:g} is not in [0, {LIMITS['bytes']:g}]", file=file,
                                     key=key + ".unpaged_bytes")
                if pp > 0:
                    pp_ps = pp * ps_per_cycle
                    # the largest request the engine carries: its pages must not take longer than
                    # its bytes could at the largest per_byte (so no service overruns the clock)
                    most = pp_ps * math.ceil(max(LIMITS["bytes"] - up, 0.0) / float(s.page_bytes))
                    if not most <= MAX_PER_BYTE_PS * LIMITS["bytes"]:
                        raise ModelError(f"{pp:g} cycles per {float(s.page_bytes):g}-byte page at {info.ghz:g} GHz gives "
                                         f"{most:.3g} ps for a request of the engine's {LIMITS['bytes']:.0f} bytes, beyond "
                                         f"its limit of {MAX_PER_BYTE_PS * LIMITS['bytes']:.3g}", file=file,
                                         key=key + ".per_page")
                    if not pp_ps <= MAX_PER_PAGE_PS:
                        fed = f" (param '{s.per_page}')" if isinstance(s.per_page, str) else ""
                        raise ModelError(f"{pp:g} cycles per page{fed} at {info.ghz:g} GHz is {pp_ps:.3g} ps per page, "
                                         f"beyond the engine's limit of {MAX_PER_PAGE_PS:g} ps: at most "
                                         f"{MAX_PER_PAGE_PS / ps_per_cycle:.3g} cycles at this clock", file=file,
                                         key=key + ".per_page")
                    paged = (pp_ps, float(s.page_bytes), up)
            else:
                if s.per_page not in (0, 0.0):
                    raise ModelError(f"resource '{s.on}' is a {info.kind}: only a cpu stage has work per page",
                                     file=file, key=key + ".per_page")
                if s.cycles not in (0, 0.0) or s.per_byte not in (0, 0.0):
                    raise ModelError(f"resource '{s.on}' is a {info.kind}: its time comes from the "
                                     f"{'bytes' if info.kind == 'link' else 'service_us'}, not from cycles",
                                     file=file, key=key + (".cycles" if s.cycles not in (0, 0.0) else ".per_byte"))
                if s.account != "tenant":
                    raise ModelError(f"resource '{s.on}' is a {info.kind}, not a cpu: its time is not charged to a category",
                                     file=file, key=key + ".account")
                assert rdef is not None
                if info.kind == "link":
                    if s.batch != 1:  # a batch's fixed work is paid once: one frame's overhead for all
                        raise ModelError(f"resource '{s.on}' is a link: it sends each request with its own "
                                         "overhead_bytes, so it does not batch (batch is for a cpu stage: one "
                                         "interrupt or wake-up serving many requests)", file=file, key=key + ".batch")
                    per_byte = 8000.0 / rdef.gbps  # ps per byte; each lane serialises at the full gbps
                    if not per_byte <= MAX_PER_BYTE_PS:
                        raise ModelError(f"{rdef.gbps:g} Gb/s is {per_byte:.3g} ps per byte, beyond the engine's limit "
                                         f"of {MAX_PER_BYTE_PS:g}: at least {8000 / MAX_PER_BYTE_PS:g} Gb/s",
                                         file=rdef_file(self.exp, s.on), key=self._device_key(s.on, "gbps"))
                    work = ("fixed", rdef.overhead_bytes * per_byte, 0.0)
                    if rdef.segment_bytes and rdef.overhead_bytes:
                        # a request of more bytes than a frame carries goes as ceil(bytes /
                        # segment_bytes) frames (a TSO send, segmented by the NIC), each with
                        # its own framing: the first frame's is the fixed work, the rest are
                        # "pages" beyond the first frame's bytes
                        paged = (rdef.overhead_bytes * per_byte, rdef.segment_bytes, rdef.segment_bytes)
                        most = paged[0] * math.ceil(max(LIMITS["bytes"] - paged[2], 0.0) / paged[1])
                        if not most <= MAX_PER_BYTE_PS * LIMITS["bytes"]:
                            raise ModelError(f"{rdef.overhead_bytes:g} B of framing per {rdef.segment_bytes:g} B frame "
                                             f"at {rdef.gbps:g} Gb/s is beyond the engine's limit of "
                                             f"{MAX_PER_BYTE_PS:g} ps per byte of a request",
                                             file=rdef_file(self.exp, s.on), key=self._device_key(s.on, "segment_bytes"))
                else:
                    work = self._dist(rdef.service_us, PS_PER_US, rdef_file(self.exp, s.on),
                                      self._device_key(s.on, "service_us"))
            gap = int(round(self._dist(s.throttle_us, PS_PER_US, file, key + ".throttle_us")[1]))  # a number or param
            if gap > LIMITS["gap_ps"]:
                raise ModelError(f"throttle_us {gap / PS_PER_US:g} is beyond the engine's limit of "
                                 f"{LIMITS['gap_ps'] / PS_PER_US:g} us", file=file, key=key + ".throttle_us")
            # a batching or throttled stage has a queue of its own: its batches form, and its
            # throttle counts, only among its own requests (one throttle per resource: per
            # tenant on vcpu, as a VF's interrupt vector), or `queues` of them, each request
            # in the one its lane picks (a multi-queue NIC's vectors). A stage that neither
            # batches nor throttles shares the resource's one queue whatever its `queues`
            # (requests are served in arrival order across queues of one priority).
            if s.batch > 1 or gap > 0:
                lanes = self.res[ri].units if s.queues == "units" else int(s.queues)
            qkey = ((ri, s.priority, s.preempt) if s.batch == 1 and gap == 0
                    else (ri, s.priority, s.where, s.batch, gap, s.preempt, lanes))
            if qkey not in self.q_index:
                if len(self.qclasses) + lanes > LIMITS["stages"]:
                    raise ModelError(f"more than {LIMITS['stages']} queues after expanding `queues`", file=file,
                                     key=key + ".queues")
                self.q_index[qkey] = len(self.qclasses)
                self.qclasses += [(ri, s.priority, s.batch, gap, int(s.preempt))] * lanes
            q = self.q_index[qkey]
        delay = self._dist(s.delay_us, PS_PER_US, file, key + ".delay_us")
        draw = bytes_ is not None
        bfile, bkey = bytes_where if bytes_where is not None else (file, key)
        nbytes = self._dist(bytes_, 1.0, bfile, bkey + ".bytes") if bytes_ is not None else NONE_DIST
        if draw and nbytes[1] > LIMITS["bytes"]:
            raise ModelError(f"bytes mean {nbytes[1]:g} beyond {LIMITS['bytes']:g}", file=bfile, key=bkey + ".bytes")
        if len(self.stages) >= LIMITS["stages"]:
            raise ModelError(f"more than {LIMITS['stages']} stages after expanding paths and counts", file=file, key=key)
        fork = 1 + self._fork_class(s.fork, file, key) if s.fork is not None else 0
        # a device's draws are the device's, whatever an architecture calls the stage; a cpu
        # stage's or a delay's are its own, by name
        what = rname if rname is not None and self.res[ri].kind != "cpu" else (s.stream or s.name)
        seen[what] = seen.get(what, 0) + 1
        tags = (_tag(*place, what, seen[what]), _tag(*place, "bytes"))
        self.stages.append((q, cat, work, per_byte, delay, draw, nbytes, fork, paged, tags, lanes))
        self.stage_info.append(StageInfo(s.name, flow, cls, rname, self.categories[cat], step, s.where))

    def _fork_path(self, path: str, file: str, key: str) -> None:
        """Checks that `fork = PATH` names a path of the architecture that does not fork."""
        a = self.exp.architecture
        if path not in a.paths:
            close = difflib.get_close_matches(path, list(a.paths), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ModelError(f"architecture '{a.name}' has no path '{path}' to fork; {hint}paths: {', '.join(a.paths)}",
                             file=file, key=key + ".fork")
        for s in a.paths[path]:
            if s.fork is not None:
                sfile, skey = self._split(s)
                raise ModelError(f"path '{path}' is forked to, so it cannot fork again (to '{s.fork}')",
                                 file=sfile, key=skey + ".fork")

    def _fork_class(self, path: str, file: str, key: str) -> int:
        """The class of the flow being compiled that runs the forked path `path` (its classes
        come after the flow's own, one per forked path)."""
        self._fork_path(path, file, key)
        self.walked.add(path)
        return self.forks.setdefault(path, self.fork_base + len(self.forks))

    def check_unused(self) -> None:
        """Checks the stages of paths no flow walks as a walked path's are checked (its
        resources, params, kinds, and the engine's limits), then forgets them: a model that
        passes with one workload must not fail with another (a typo in a path the workload
        does not use is still a typo). Each path is compiled on its own, from empty tables, so
        that the limits on counts judge it alone."""
        for name, stages in self.exp.architecture.paths.items():
            if name in self.walked:
                continue
            kept = (self.stages, self.stage_info, self.q_index, self.qclasses, self.cat_index, self.categories,
                    self.walked, self.forks, self.fork_base)
            self.stages, self.stage_info, self.q_index, self.qclasses = [], [], {}, []
            self.cat_index, self.categories = dict(self.cat_index), list(self.categories)
            self.walked, self.forks, self.fork_base = set(self.walked), {}, 0
            try:
                seen: dict[str, int] = {}
                for s in stages:
                    self.stage(s, "", "", name, None, place=("unwalked", name), seen=seen)
            finally:
                (self.stages, self.stage_info, self.q_index, self.qclasses, self.cat_index, self.categories,
                 self.walked, self.forks, self.fork_base) = kept

    def _stage_resource(self, s: Stage, file: str, key: str) -> int:
        """The engine resource a stage runs on: its `on`, or a duplex link's receive side
        for `direction = "rx"`."""
        ri = self._resource_index(s.on, file, key)  # type: ignore[arg-type]
        if s.direction is not None:
            if s.on not in self.rx_index:
                raise ModelError(f"`direction` is for a duplex link; '{s.on}' is not one", file=file,
                                 key=key + ".direction")
            if s.direction == "rx":
                ri = self.rx_index[s.on]
        return ri

    def _resource_index(self, on: str, file: str, key: str) -> int:
        if on == "vcpu":
            return self.vcpu
        if on not in self.res_index:
            known = list(self.res_index)
            close = difflib.get_close_matches(on, known, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ModelError(f"unknown resource '{on}'; {hint}resources: {', '.join(known)}", file=file, key=key + ".on")
        return self.res_index[on]

    def steps(self, steps: Sequence[Step], flow: str, cls: str, file: str | None = None) -> None:
        a = self.exp.architecture
        file = file if file is not None else self.exp.workload.file
        for n, st in enumerate(steps):  # a stage's place: (flow, class, step, repetition)
            if isinstance(st, PathStep):
                if st.path not in a.paths:
                    close = difflib.get_close_matches(st.path, list(a.paths), n=1, cutoff=0.5)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    raise ModelError(f"architecture '{a.name}' has no path '{st.path}'; {hint}paths: {', '.join(a.paths)}",
                                     file=file, key=st.where + ".path")
                self.walked.add(st.path)
                for rep in range(st.count):
                    seen: dict[str, int] = {}
                    for i, s in enumerate(a.paths[st.path]):
                        self.stage(s, flow, cls, st.path, st.bytes if i == 0 else None, (file, st.where),
                                   place=(*self.fid, cls, n, rep), seen=seen)
            else:  # an inline stage has no bytes
                for k in ("per_byte", "per_page"):
                    if getattr(st, k) not in (0, 0.0):
                        sfile, skey = self._split(st)
                        raise ModelError(f"an inline stage carries no bytes, so {k} has nothing to act on: put the "
                                         "work in cycles, or the stage in a path its step gives bytes to",
                                         file=sfile, key=f"{skey}.{k}")
                self.stage(st, flow, cls, "inline", 0.0, place=(*self.fid, cls, n, 0), seen={})

    def flow(self, f: Flow, background: bool, file: str, key: str) -> None:
        first_class = len(self.classes)
        name = self.prefix + f.name
        # the flow's identity for its draws (see _tag): its own name, and how many flows of that
        # name came before it (tenants run copies of one workload), not its place in the list,
        # so that a tenant's draws do not depend on the flows compiled before it, and one
        # tenant owning the host draws as the single-tenant host does
        self.fid = (f.name, self.fid_seen.get(f.name, 0))
        self.fid_seen[f.name] = self.fid[1] + 1
        self.fork_base, self.forks = first_class + len(f.classes), {}
        for c in f.classes:
            first = len(self.stages)
            self.steps(c.steps, name, c.name, file)
            self.classes.append((first, len(self.stages) - first, c.weight))
            self.class_names.append((name, c.name))
        for path in self.forks:  # the detached classes, after the flow's own (none of them forks)
            first, cname = len(self.stages), path
            seen: dict[str, int] = {}
            for s in self.exp.architecture.paths[path]:
                self.stage(s, name, cname, path, None, place=(*self.fid, None, path), seen=seen)
            self.detached.add(len(self.classes))
            self.classes.append((first, len(self.stages) - first, 1.0))
            self.class_names.append((name, cname))
        rate = f.rate_per_s * (self.res[self.vcpu].units if f.per_vcpu else 1)
        if f.arrival == "closed":
            think = self._dist(f.think_us, PS_PER_US, file, f"{key}.think_us")
            self.flows.append((True, NONE_DIST, f.clients, think, first_class, len(f.classes), _tag(*self.fid)))
        else:
            mean = PS_PER_S / rate
            if not mean <= LIMITS["mean"]:
                raise ModelError(f"rate {rate:g}/s is below the engine's {PS_PER_S / LIMITS['mean']:g}/s (a mean "
                                 f"interarrival time of at most {LIMITS['mean']:g} ps)", file=file,
                                 key=f"{key}.rate_per_s")
            if mean < 1:
                raise ModelError(f"rate {rate:g}/s is above the engine's 1e12/s (one arrival per picosecond)",
                                 file=file, key=f"{key}.rate_per_s")
            inter: Dist = ("exp" if f.arrival == "poisson" else "fixed", mean, 0.0)
            self.flows.append((False, inter, 0, NONE_DIST, first_class, len(f.classes), _tag(*self.fid)))
        if name in self.flow_name_set:  # a set: a list's lookup made 65k flows take minutes
            raise ModelError(f"flow name '{f.name}' is used by both the workload and the architecture's background",
                             file=file, key=f"{key}.name")
        self.flow_names.append(name)
        self.flow_name_set.add(name)
        self.flow_bg.append(background)
        self.flow_tenant.append(self.prefix[:-1])
        self.flow_where.append((file, key))

    def _check_sizes(self) -> None:
        """Counts what the flows expand to before building any of it: a `count` times a long
        path, times many classes and flows, must stay within the engine's limits."""
        a, w = self.exp.architecture, self.exp.workload
        n_res = len(self.res)
        if n_res > LIMITS["resources"]:
            raise ModelError(f"{n_res} resources (host devices + architecture resources + vcpu) is beyond the "
                             f"engine's limit of {LIMITS['resources']}", file=a.file, key=self._key("architecture", "resources"))
        background = [(f, a.file, self._key("architecture", f"background[{i}]")) for i, f in enumerate(a.background)]
        if self.exp.tenants:  # each tenant runs its workload's flows and its own copy of the background
            n_flows = sum(len(t.workload.flows) for t in self.exp.tenants) + len(self.exp.tenants) * len(background)
            if n_flows > LIMITS["flows"]:
                of = f" of {Path(a.file).name}" if a.file != self.exp.file else ""
                raise ModelError(f"{len(self.exp.tenants)} tenants each run their workload's flows and their own copy "
                                 f"of the architecture's {len(background)} background flows "
                                 f"({self._key('architecture', 'background')}{of}): {n_flows} flows is beyond the "
                                 f"engine's limit of {LIMITS['flows']}; fewer tenants or background flows",
                                 file=self.exp.file, key="experiment.tenants")
            flows = [(f, t.workload.file, f"experiment.tenants[{ti}].workload.flows[{i}]")
                     for ti, t in enumerate(self.exp.tenants) for i, f in enumerate(t.workload.flows)]
            flows += background * len(self.exp.tenants)
        else:
            flows = [(f, w.file, self._key("workload", f"flows[{i}]")) for i, f in enumerate(w.flows)] + background
            if len(flows) > LIMITS["flows"]:
                raise ModelError(f"{len(flows)} flows is beyond the engine's limit of {LIMITS['flows']}",
                                 file=w.file, key=self._key("workload", "flows"))
        total = classes = 0
        for f, file, key in flows:
            classes += len(f.classes)
            for c in f.classes:
                for st in c.steps:
                    n = st.count * len(a.paths.get(st.path, ())) if isinstance(st, PathStep) else 1
                    total += n
                    if total > LIMITS["stages"]:
                        where = st.where if isinstance(st, PathStep) else key
                        raise ModelError(
                            f"the flows expand to more than {LIMITS['stages']} stages (the engine's limit) by here: "
                            f"each step's `count` times its path's stages, summed over steps, classes and flows",
                            file=file, key=where)
        if classes > LIMITS["stages"]:
            raise ModelError(f"{classes} request classes is beyond the engine's limit of {LIMITS['stages']}",
                             file=w.file, key="experiment.tenants" if self.exp.tenants else self._key("workload", "flows"))

    def build(self) -> Compiled:
        self._check_sizes()
        self.flow_tenant: list[str] = []
        self.flow_where: list[tuple[str, str]] = []
        self.fid_seen: dict[str, int] = {}
        if self.exp.tenants:
            for ti, t in enumerate(self.exp.tenants):
                self.vcpu = self.res_index[f"vcpu@{t.name}"]
                self.prefix = f"{t.name}/"
                self.local_params = t.workload.params
                for k in t.workload.params:
                    if k in self.params:
                        raise ModelError(f"param '{k}' is defined by both the {self.params[k][1]} and tenant "
                                         f"'{t.name}''s workload; rename one", file=t.workload.file,
                                         key=f"experiment.tenants[{ti}].workload.params.{k}")
                try:
                    for i, f in enumerate(t.workload.flows):
                        self.flow(f, False, t.workload.file, f"experiment.tenants[{ti}].workload.flows[{i}]")
                except ModelError as e:
                    e.tenant = ti  # type: ignore[attr-defined]  # whose (tenants may share a bundled workload's file)
                    raise
                for i, f in enumerate(self.exp.architecture.background):
                    self.flow(f, True, self.exp.architecture.file, self._key("architecture", f"background[{i}]"))
            self.vcpu, self.prefix, self.local_params = 0, "", {}
        else:
            for i, f in enumerate(self.exp.workload.flows):
                self.flow(f, False, self.exp.workload.file, self._key("workload", f"flows[{i}]"))
            for i, f in enumerate(self.exp.architecture.background):
                self.flow(f, True, self.exp.architecture.file, self._key("architecture", f"background[{i}]"))
        self.check_unused()
        clients = sum(f[2] for f in self.flows if f[0])
        n_open = sum(1 for f in self.flows if not f[0])
        # the pool is shared: open flows together may have DEFAULT_OPEN_POOL requests in flight
        forks = bool(self.detached)
        # detached requests (forks) take pool slots too, as many as the forked work holds at once
        pool = self.pool_size if self.pool_size is not None else clients + (DEFAULT_OPEN_POOL if n_open or forks else 0)
        if clients > LIMITS["pool"] or pool > LIMITS["pool"]:
            how = (f"{clients} closed-loop clients" + (f" + {DEFAULT_OPEN_POOL} requests for the open flows"
                                                       if self.pool_size is None and n_open else "")
                   if self.pool_size is None else f"a pool of {pool}")
            raise ModelError(f"{how} = {max(clients, pool)} requests in flight, beyond the engine's limit of "
                             f"{LIMITS['pool']}: fewer clients or flows", file=self.exp.workload.file,
                             key=self._key("workload", "flows"))
        if pool < clients:
            raise ModelError(f"pool of {pool} is smaller than the {clients} closed-loop clients", key="pool_size")
        # a traced request's records, and those of the detached requests it forks (one per
        # forking stage it passes: at most one class's length each)
        cap = max(1, max(n for _, n, _ in self.classes))
        cap = min(LIMITS["trace"], self.trace_requests * cap * (1 + (cap if forks else 0)))
        # the host's idle states apply to the cores whose cycles are host cycles, unless they poll
        idle_ps = tuple((round(st.exit_us * 1e6), round(st.residency_us * 1e6)) for st in self.exp.host.idle_states)
        if idle_ps:
            self.res = [dataclasses.replace(r, sleeps=True) if r.kind == "cpu" and r.on_host and not r.poll else r
                        for r in self.res]
        wake = self._cat("wake") if any(r.sleeps for r in self.res) else 0
        # halt-polling: the tenant's vCPUs poll before they sleep (KVM's halt_poll_ns)
        halt = (round(self.exp.host.halt_poll_us * 1e6), self._cat("poll"))
        if halt[0] > 0:
            self.res = [dataclasses.replace(r, halt_polls=True) if r.sleeps and is_vcpu(r.name) else r for r in self.res]

        def sleep_row(r: ResourceInfo) -> tuple[Any, ...]:
            if not r.sleeps:
                return ()
            return (idle_ps, wake) + (halt if r.halt_polls else ())

        # a class of a flow's mix is reported as FLOW/CLASS, a tenant's flow as TENANT/FLOW:
        # no two may read alike
        seen: dict[str, str] = {}
        owns = [_own_classes(row, self.detached) for row in self.flows]
        for fi, own in enumerate(owns):
            names = [self.flow_names[fi]] + ([f"{self.flow_names[fi]}/{self.class_names[k][1]}" for k in own]
                                             if len(own) > 1 else [])
            for n in names:
                if n in seen:
                    raise ModelError(f"'{n}' names both {seen[n]} and flow '{self.flow_names[fi]}' or one of its "
                                     "classes; rename one", key="workload.flows")
                seen[n] = f"flow '{self.flow_names[fi]}'" if n == self.flow_names[fi] else f"a class of flow '{self.flow_names[fi]}'"
        spec = Spec(
            resources=[(r.units, (d.capacity if d is not None else -1)) + sleep_row(r)
                       for r, d in zip(self.res, self.res_defs)],
            qclasses=self.qclasses, stages=self.stages, classes=self.classes, flows=self.flows,
            n_categories=len(self.categories), pool_size=pool,
            trace_requests=self.trace_requests, trace_capacity=cap,
            # percentiles by class where a flow mixes classes, if their counters stay small
            # (59 KiB a class): a flow's own classes are those not forked to
            class_histograms=len(self.classes) <= CLASS_HIST_CLASSES and any(len(own) > 1 for own in owns),
            shares=[(ri, self.cat_index["tenant"], self.cat_index["paging"], self.paging)
                    for ri, r in enumerate(self.res) if self.paging and is_vcpu(r.name)],
        )
        h, a = self.exp.host, self.exp.architecture
        tenants = tuple((t.name, t.vcpus, self.res_index[f"vcpu@{t.name}"]) for t in self.exp.tenants)
        vcpus = sum(t[1] for t in tenants) if tenants else h.cores - a.reserve_cores
        return Compiled(spec, tuple(self.res), tuple(self.categories), tuple(self.flow_names), tuple(self.flow_bg),
                        tuple(self.class_names), tuple(self.stage_info), h.cores, vcpus,
                        a.reserve_cores, h.ghz, tenants, tuple(self.flow_tenant), frozenset(self.detached),
                        tuple(self.flow_where))


CLASS_HIST_CLASSES = 512  # models with more classes get latency means by class, not percentiles
MAX_NESTED_PAGING = 0.5  # of the guest's own time: its work at most twice as long


def is_vcpu(resource: str) -> bool:
    """The tenant's own cores: `vcpu`, or `vcpu@TENANT` on a multi-tenant host."""
    return resource == "vcpu" or resource.startswith("vcpu@")


def rdef_file(exp: Experiment, name: str) -> str:
    for r in exp.host.devices:
        if r.name == name:
            return exp.host.file
    return exp.architecture.file


def compile_experiment(exp: Experiment, *, trace_requests: int = 0, pool_size: int | None = None) -> Compiled:
    """Flattens an experiment into the engine's arrays; cross-references are checked here."""
    for key, v, lo, hi, what in (("trace_requests", trace_requests, 0, 2**32 - 1, "requests traced, 0 for none"),
                                 ("pool_size", pool_size, 1, LIMITS["pool"], "requests in flight at most, or None "
                                                                             "for enough")):
        if v is None and key == "pool_size":
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
            shown = f"{v} is out of range" if isinstance(v, numbers.Integral) and not isinstance(v, bool) \
                else f"must be an integer, got {_show(v)}"
            raise ModelError(f"{shown}: an integer in [{lo}, {hi}] ({what})", key=key)
    trace_requests = int(trace_requests)
    pool_size = int(pool_size) if pool_size is not None else None
    if trace_requests == 0 and pool_size is None:
        done = getattr(exp, "_compiled", None)  # compiled once by load_experiment
        if done is not None:
            return done
    return _Compiler(exp, trace_requests=trace_requests, pool_size=pool_size).build()
