"""The one module that touches the C engine through cffi.

It owns the engine handle, turns a compiled model (flat tuples, see ``emulator.model``)
into the C spec arrays, turns every negative status into an exception at one choke point,
and reads results back as whole numpy arrays. Everything else in vemu goes through
:class:`Engine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ._native import ffi, lib

VERSION = ffi.string(lib.VEMU_VERSION).decode()
HIST_BUCKETS = int(lib.VEMU_HIST_BUCKETS)
TIME_MAX_PS = int(lib.VEMU_TIME_MAX)
LIMITS = {
    "resources": int(lib.VEMU_MAX_RESOURCES),
    "stages": int(lib.VEMU_MAX_STAGES),
    "flows": int(lib.VEMU_MAX_FLOWS),
    "categories": int(lib.VEMU_MAX_CATEGORIES),
    "units": int(lib.VEMU_MAX_UNITS),
    "batch": int(lib.VEMU_MAX_BATCH),
    "gap_ps": int(lib.VEMU_MAX_GAP),
    "idle_states": int(lib.VEMU_MAX_IDLE),
    "class_hist": int(lib.VEMU_MAX_CLASS_HIST),
    "pool": int(lib.VEMU_MAX_POOL),
    "trace": int(lib.VEMU_MAX_TRACE),
    "mean": float(lib.VEMU_MAX_MEAN),
    "bytes": float(lib.VEMU_MAX_BYTES),
}
DIST_KINDS = {
    "fixed": int(lib.VEMU_DIST_FIXED),
    "exp": int(lib.VEMU_DIST_EXP),
    "lognormal": int(lib.VEMU_DIST_LOGNORMAL),
    "uniform": int(lib.VEMU_DIST_UNIFORM),
}
ARRIVAL_OPEN = int(lib.VEMU_ARRIVAL_OPEN)
ARRIVAL_CLOSED = int(lib.VEMU_ARRIVAL_CLOSED)
STATUS_MORE = int(lib.VEMU_MORE)
STATUS_STALL = int(lib.VEMU_STALL)
STATUS_EFULL = int(lib.VEMU_EFULL)
STATUS_ESTATE = int(lib.VEMU_ESTATE)  # the sim failed earlier: every further run returns it
NO_PARENT = int(lib.VEMU_NO_PARENT)

TRACE_DTYPE = np.dtype(
    [
        ("request", "<u8"), ("flow", "<u4"), ("stage", "<u4"), ("dropped", "<i4"), ("batch", "<u4"),
        ("enter", "<u8"), ("start", "<u8"), ("end", "<u8"), ("leave", "<u8"), ("wake", "<u8"),
        ("parent", "<u8"), ("preempted", "<u8"),
    ]
)
assert TRACE_DTYPE.itemsize == ffi.sizeof("vemu_trace_record")


class EmulatorError(Exception):
    """Base of every error vemu raises on purpose."""


class ModelError(EmulatorError, ValueError):
    """A model or experiment is invalid. ``str()`` is one line: file, key path, what is allowed."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        self.detail = message
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self) -> tuple[Any, ...]:  # whole across processes (a pool worker's error)
        return (_model_error, (self.detail, self.file, self.key))


class NativeError(EmulatorError, RuntimeError):
    """The engine returned a negative status; ``.status`` is the code."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # unpicklable by default (two arguments): a
        # worker's engine error broke the process pool into "BrokenProcessPool"
        return (NativeError, (self.status, str(self)))


class Stalled(EmulatorError):
    """The engine's clock did not move for its stall limit of events (at ``at_ps``); the
    sim is intact: a larger limit lets it go on."""

    def __init__(self, at_ps: int):
        self.at_ps = at_ps
        super().__init__(f"the clock stopped at {at_ps} ps")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Stalled, (self.at_ps,))


def _model_error(message: str, file: str | None, key: str | None) -> ModelError:
    return ModelError(message, file=file, key=key)


def _check(status: int, message: str) -> int:
    if status < 0:
        name = ffi.string(lib.vemu_strerror(status)).decode()
        raise NativeError(status, f"{name}: {message}" if message else name)
    return status


# A dist is (kind, mean, cv) with kind one of DIST_KINDS' names.
Dist = tuple[str, float, float]
NONE_DIST: Dist = ("fixed", 0.0, 0.0)


@dataclass(frozen=True)
class Spec:
    """Flat engine input. Each row is a plain tuple in the field order of the C struct."""

    resources: Sequence[tuple[Any, ...]]
    # ^ units, capacity (-1 unbounded)[, idle states ((exit ps, target residency ps), ...,
    #   shallowest first), wake category[, poll before sleeping (ps), poll category]]
    qclasses: Sequence[tuple[int, ...]]
    # ^ resource, priority, batch[, gap (ps, 0: no throttle)[, preempt (1: its arrivals
    #   preempt lower-priority services)]]
    stages: Sequence[tuple[Any, ...]]
    # ^ qclass (-1 none), category, work (ps), per_byte_ps, delay (ps), draw_bytes, bytes[,
    #   fork (0 none, else 1 + the class a request leaving the stage starts a detached one on)[,
    #   (per_page_ps, page_bytes, unpaged_bytes) or None[, (tag, bytes_tag): the keys of its
    #   draws, distinct over the stages (default: its index), see vemu.h's Randomness[, lanes
    #   (0 or 1: none; L: served on qclass + the request's lane mod L, qclasses alike)]]]]
    classes: Sequence[tuple[int, int, float]]  # first_stage, n_stages, weight
    flows: Sequence[tuple[Any, ...]]
    # ^ closed, interarrival (ps), clients, think (ps), first_class, n_classes[, tag: the key of
    #   its draws, distinct over the flows (default: its index), see vemu.h's Randomness]
    n_categories: int
    pool_size: int
    trace_requests: int = 0
    trace_capacity: int = 0
    class_histograms: bool = False  # a latency histogram per class too (percentiles by class)
    shares: Sequence[tuple[int, int, int, float]] = ()
    # ^ (resource, from category, to category, share): of the busy time the resource charges
    #   to the first category, the share is reported under the second (vemu.h)


def _set_dist(c: Any, d: Dist) -> None:
    c.kind = DIST_KINDS[d[0]]
    c.mean = d[1]
    c.cv = d[2]


def idle_offsets(spec: Spec) -> tuple[dict[int, int], int]:
    """Where each sleeping resource's idle states start in the engine's flat array (its
    ``idle_first``), by resource index, and the array's length: the resources' states in
    turn, as :func:`_build` lays them out."""
    first: dict[int, int] = {}
    n = 0
    for i, row in enumerate(spec.resources):
        if len(row) > 2 and row[2]:
            first[i] = n
            n += len(row[2])
    return first, n


def _build(spec: Spec) -> tuple[Any, list[Any]]:
    keep: list[Any] = []
    res = ffi.new("vemu_resource_spec[]", max(1, len(spec.resources)))
    idle: list[tuple[int, int]] = []
    first_idle, _ = idle_offsets(spec)
    for i, row in enumerate(spec.resources):
        res[i].units = row[0]
        res[i].capacity = row[1]
        if i in first_idle:
            res[i].idle_first = first_idle[i]
            res[i].n_idle = len(row[2])
            idle += row[2]
        if len(row) > 3:
            res[i].wake_category = row[3]
        if len(row) > 4:  # passed on even without idle states: the engine refuses polling then
            res[i].poll = row[4]
            res[i].poll_category = row[5]
    for r, share_from, share_to, share in spec.shares:
        res[r].share_from = share_from
        res[r].share_to = share_to
        res[r].share = share
    ids = ffi.new("vemu_idle_state[]", max(1, len(idle)))
    for i, (exit_ps, residency_ps) in enumerate(idle):
        ids[i].exit = exit_ps
        ids[i].residency = residency_ps
    qc = ffi.new("vemu_qclass_spec[]", max(1, len(spec.qclasses)))
    for i, row in enumerate(spec.qclasses):
        r, prio, batch = row[:3]
        qc[i].resource = r
        qc[i].priority = prio
        qc[i].batch = batch
        qc[i].gap = row[3] if len(row) > 3 else 0
        qc[i].preempt = row[4] if len(row) > 4 else 0
    st = ffi.new("vemu_stage_spec[]", max(1, len(spec.stages)))
    for i, row in enumerate(spec.stages):
        q, cat, work, pb, delay, draw, nbytes = row[:7]
        g = st[i]
        g.fork = row[7] if len(row) > 7 else 0
        if len(row) > 8 and row[8]:
            g.per_page_ps, g.page_bytes, g.unpaged_bytes = row[8]
        # the keys of its draws (distinct over the stages); by default its place in the model
        g.tag, g.bytes_tag = row[9] if len(row) > 9 else (i, i)
        g.lanes = row[10] if len(row) > 10 else 0
        g.qclass = q
        g.category = cat
        _set_dist(g.work, work)
        g.per_byte_ps = pb
        _set_dist(g.delay, delay)
        g.draw_bytes = 1 if draw else 0
        _set_dist(g.bytes, nbytes)
    cl = ffi.new("vemu_class_spec[]", max(1, len(spec.classes)))
    for i, (first, n, w) in enumerate(spec.classes):
        cl[i].first_stage = first
        cl[i].n_stages = n
        cl[i].weight = w
    fl = ffi.new("vemu_flow_spec[]", max(1, len(spec.flows)))
    for i, row in enumerate(spec.flows):
        closed, inter, clients, think, first, n = row[:6]
        f = fl[i]
        f.tag = row[6] if len(row) > 6 else i
        f.arrival = ARRIVAL_CLOSED if closed else ARRIVAL_OPEN
        _set_dist(f.interarrival, inter)
        f.clients = clients
        _set_dist(f.think, think)
        f.first_class = first
        f.n_classes = n
    m = ffi.new("vemu_model *")
    m.n_resources = len(spec.resources)
    m.n_qclasses = len(spec.qclasses)
    m.n_stages = len(spec.stages)
    m.n_classes = len(spec.classes)
    m.n_flows = len(spec.flows)
    m.n_categories = spec.n_categories
    m.resources, m.qclasses, m.stages, m.classes, m.flows = res, qc, st, cl, fl
    m.pool_size = spec.pool_size
    m.trace_requests = spec.trace_requests
    m.trace_capacity = spec.trace_capacity
    m.n_idle_states = len(idle)
    m.idle_states = ids
    m.class_histograms = 1 if spec.class_histograms else 0
    keep += [res, qc, st, cl, fl, ids]
    return m, keep


class Engine:
    """One simulation in the C engine. Use as a context manager, or call :meth:`close`."""

    def __init__(self, spec: Spec, *, seed: int):
        if not 0 <= seed < 2**64:
            raise ModelError(f"seed {seed} is outside 0 .. 2**64-1", key="seed")
        self.spec = spec
        m, keep = _build(spec)
        out = ffi.new("vemu_sim **")
        err = ffi.new("char[]", 512)
        status = lib.vemu_sim_create(m, seed, out, err, 512)
        del keep
        _check(status, ffi.string(err).decode())
        self._sim = ffi.gc(out[0], lib.vemu_sim_destroy)

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        if self._sim is not None:
            ffi.release(self._sim)
            self._sim = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self) -> Any:
        if self._sim is None:
            raise EmulatorError("the engine was closed")
        return self._sim

    # -- running ---------------------------------------------------------------------
    def run(self, until_ps: int, max_events: int = 2**63) -> bool:
        """Runs to ``until_ps`` or ``max_events``; True when the clock reached ``until_ps``.
        Raises :class:`Stalled` when the stall limit stopped it (:meth:`set_stall_limit`)."""
        s = self._handle()
        status = lib.vemu_sim_run(s, until_ps, max_events)
        if status < 0:
            _check(status, ffi.string(lib.vemu_sim_error(s)).decode())
        if status == STATUS_STALL:
            raise Stalled(self.now_ps)
        return status != STATUS_MORE

    def set_stall_limit(self, n: int) -> None:
        """Stop a run (:class:`Stalled`) once ``n`` events happen at one instant (0: never)."""
        _check(lib.vemu_sim_set_stall_limit(self._handle(), n), "")

    def reset_stats(self) -> None:
        _check(lib.vemu_sim_reset_stats(self._handle()), "")

    @property
    def now_ps(self) -> int:
        return int(lib.vemu_sim_now(self._handle()))

    @property
    def window_start_ps(self) -> int:
        return int(lib.vemu_sim_window_start(self._handle()))

    @property
    def events(self) -> int:
        return int(lib.vemu_sim_events(self._handle()))

    @property
    def in_flight(self) -> int:
        return int(lib.vemu_sim_in_flight(self._handle()))

    # -- results ---------------------------------------------------------------------
    def stats(self, *, class_hist: bool = True) -> dict[str, np.ndarray]:
        """The current window's statistics as whole numpy arrays (without the classes'
        histograms, 58 KiB each, when ``class_hist`` is false)."""
        s = self._handle()
        nf, nc, nr = len(self.spec.flows), len(self.spec.classes), len(self.spec.resources)
        ns, ncat = len(self.spec.stages), self.spec.n_categories
        arrays = {
            "flow_created": np.zeros(nf, np.uint64),
            "flow_completed": np.zeros(nf, np.uint64),
            "flow_dropped": np.zeros(nf, np.uint64),
            "flow_in_flight": np.zeros(nf, np.uint64),
            "flow_latency_sum": np.zeros(nf, np.float64),
            "flow_latency_max": np.zeros(nf, np.uint64),
            "flow_in_flight_area": np.zeros(nf, np.float64),
            "flow_hist": np.zeros((nf, HIST_BUCKETS), np.uint64),
            "class_completed": np.zeros(nc, np.uint64),
            "class_latency_sum": np.zeros(nc, np.float64),
            "class_latency_max": np.zeros(nc, np.uint64),
            "resource_busy_area": np.zeros((max(nr, 1), ncat), np.float64),
            "resource_queue_area": np.zeros(max(nr, 1), np.float64),
            "resource_served": np.zeros(max(nr, 1), np.uint64),
            "resource_dropped": np.zeros(max(nr, 1), np.uint64),
            "resource_max_queue": np.zeros(max(nr, 1), np.uint64),
            "resource_wakeups": np.zeros(max(nr, 1), np.uint64),
            "resource_preemptions": np.zeros(max(nr, 1), np.uint64),
            "stage_preempted_sum": np.zeros(ns, np.float64),
            "stage_completed": np.zeros(ns, np.uint64),
            "stage_wait_sum": np.zeros(ns, np.float64),
            "stage_service_sum": np.zeros(ns, np.float64),
            "stage_served": np.zeros(ns, np.uint64),
            # the model's flat array of idle states (each sleeping resource's, in order)
            "idle_state_wakeups": np.zeros(max(1, idle_offsets(self.spec)[1]), np.uint64),
        }
        if self.spec.class_histograms and class_hist:
            arrays["class_hist"] = np.zeros((nc, HIST_BUCKETS), np.uint64)
        out = ffi.new("vemu_stats *")
        for name, arr in arrays.items():
            ctype = "double *" if arr.dtype == np.float64 else "uint64_t *"
            setattr(out, name, ffi.cast(ctype, ffi.from_buffer(arr)))
        _check(lib.vemu_sim_stats(s, out), "")
        if nr == 0:
            for k in list(arrays):
                if k.startswith("resource_"):
                    arrays[k] = arrays[k][:0]
        return arrays

    def trace(self) -> tuple[np.ndarray, int]:
        """The trace records (TRACE_DTYPE) and how many were lost for want of capacity."""
        s = self._handle()
        lost = ffi.new("uint64_t *")
        n = lib.vemu_sim_trace(s, ffi.NULL, 0, lost)
        arr = np.zeros(n, TRACE_DTYPE)
        if n:
            lib.vemu_sim_trace(s, ffi.cast("vemu_trace_record *", ffi.from_buffer(arr)), n, lost)
        return arr, int(lost[0])


def dist_sample(dist: Dist, n: int, *, seed: int = 1) -> np.ndarray:
    """n draws from a distribution with the engine's own samplers (for tests and teaching)."""
    d = ffi.new("vemu_dist *")
    _set_dist(d, dist)
    out = np.empty(n, np.float64)
    _check(lib.vemu_dist_sample(d, seed, ffi.cast("double *", ffi.from_buffer(out)), n), f"bad distribution {dist}")
    return out


def hist_lower(index: np.ndarray) -> np.ndarray:
    """Lower bound (ps) of histogram buckets, with the engine's arithmetic."""
    i = np.asarray(index, dtype=np.int64)
    small = i < 256
    shift = np.where(small, 0, (i >> 7) - 1)
    sub = np.where(small, i, i - (shift << 7))
    return (sub.astype(np.float64) * np.exp2(shift)).astype(np.float64)


def hist_width(index: np.ndarray) -> np.ndarray:
    i = np.asarray(index, dtype=np.int64)
    return np.where(i < 256, 1.0, np.exp2((i >> 7) - 1))


def hist_index(value_ps: int) -> int:
    return int(lib.vemu_hist_index(value_ps))
