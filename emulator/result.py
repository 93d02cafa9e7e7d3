"""Results: the engine's arrays turned into the measures of DESIGN.md.

**usable_fraction** is the share of all host cycles (every core of the host, reserved or
not, over the measured window) that did the tenant's own work (category ``tenant``).
Off-host resources (offload cards, NICs, SSDs) are not host cycles. Host cycles by
category always sum to 1: time a tenant core had nothing to do is ``idle``, time a reserved
core had nothing to do is ``reserved_idle`` (or ``poll`` if the resource polls).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ._core import HIST_BUCKETS, hist_lower, hist_width, idle_offsets
from .model import Compiled, Experiment

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999))
# A per-run percentile needs this many requests beyond it to be nearly unbiased; fewer, and
# its estimate is low and a t interval over runs covers less than its level (M/M/1 with
# 2,500 requests a run, 2.5 beyond the p99.9: the estimate 7% low, 10-replication
# intervals covering 67%; with 25 beyond the p99: 91%).
MIN_TAIL_REQUESTS = 10


def thin_tail(completed: float, q: float) -> bool:
    """Whether a run's q-quantile of latency rests on fewer than MIN_TAIL_REQUESTS requests
    beyond it, on either side (a CDF's 0.001 counts as well as its 0.999)."""
    # counted in whole requests (100 x (1 - 0.9) is 9.999999999999998 in floating point)
    n = int(completed)
    above = n - math.ceil(round(q * n, 9))  # beyond the q-quantile's rank
    below = n - math.ceil(round((1.0 - q) * n, 9))  # the mirror: beyond the (1 - q)-quantile's, below it
    return min(above, below) < MIN_TAIL_REQUESTS if n else True


# the latency CDF a result carries (for CDF plots): these quantiles, in microseconds
CDF_QUANTILES = (0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995,
                 0.999, 0.9995, 0.9999)


SATURATED = 0.98  # a resource this busy sets the throughput: more offered load only queues at it


def hist_quantile(hist: np.ndarray, q: float, max_ps: float) -> float:
    """The q-quantile (nearest rank) of a latency histogram, in ps, never above the max.

    The value of rank r = ceil(q N) lies in some bucket [lo, lo + w) holding c values, of
    which it is the k-th (k = r - values below the bucket). It is read as lo + w (k - 1/2) / c,
    the k-th of c equal slices of the bucket: the values spread evenly over it. So it stays
    in the bucket (within 0.8% of the true value; a bucket is 0.4-0.8% wide) as the midpoint
    would, but moves with the rank and the counts instead of jumping a bucket at a time:
    replications whose percentiles differ by less than a bucket still read differently
    when their counts differ, so a confidence interval over them does not collapse to zero
    width. (Spread within a bucket that leaves every count the same cannot be seen.)"""
    return hist_quantiles(hist, (q,), max_ps)[0]


def hist_quantiles(hist: np.ndarray, qs: Sequence[float], max_ps: float) -> list[float]:
    """:func:`hist_quantile` at each of ``qs``, from one cumulative sum of the histogram."""
    cum = np.cumsum(hist, dtype=np.uint64)
    total = int(cum[-1]) if len(cum) else 0
    if total == 0:
        return [math.nan] * len(qs)
    ranks = np.array([max(1, math.ceil(q * total)) for q in qs], dtype=np.uint64)
    idx = np.searchsorted(cum, ranks)
    lo, w = hist_lower(idx), hist_width(idx)
    out = []
    for r, i, l, wi in zip(ranks.tolist(), idx.tolist(), lo.tolist(), w.tolist()):
        if r >= total:  # the largest value: recorded exactly
            out.append(float(max_ps))
            continue
        if wi == 1:  # exact buckets below 256 ps
            out.append(min(float(l), max_ps))
            continue
        count = int(hist[i])
        k = r - (int(cum[i]) - count)
        # (read across the whole bucket and capped at the max: squeezing the top bucket's
        # values below the max put a run of equal latencies' p50 under their one value)
        out.append(min(float(l) + float(wi) * (k - 0.5) / count, max_ps))
    return out


# A flow's latency tail as runs exchange it: (bucket indices, their counts, maximum in ps),
# the histogram's nonzero buckets only (a run fills a few hundred of its 7,424)
Tail = tuple[np.ndarray, np.ndarray, float]


def _latency(done: int, total_ps: float, max_ps: float, hist: np.ndarray | None, *,
             cdf: bool = False) -> tuple[dict[str, float], list[list[float]]]:
    """Latency in microseconds of ``done`` requests: the mean from their sum, the percentiles
    (NaN without a histogram) and the maximum; with ``cdf``, also [quantile, value] pairs of
    the distribution function."""
    if not done:
        return {k: math.nan for k in ("mean", "p50", "p90", "p99", "p999", "max")}, []
    lat = {"mean": total_ps / done / 1e6}
    qs = [q for _, q in PERCENTILES] + (list(CDF_QUANTILES) if cdf else [])
    vals = [v / 1e6 for v in hist_quantiles(hist, qs, max_ps)] if hist is not None else [math.nan] * len(qs)
    lat.update(zip((name for name, _ in PERCENTILES), vals))
    lat["max"] = max_ps / 1e6
    return lat, [[q, v] for q, v in zip(CDF_QUANTILES, vals[len(PERCENTILES):])] if cdf else []


def tail_to_json(t: Tail) -> dict[str, Any]:
    idx, counts, mx = t
    return {"max_ps": float(mx), "index": [int(i) for i in idx], "count": [int(c) for c in counts]}


def tail_from_json(d: dict[str, Any]) -> Tail:
    return (np.array(d["index"], np.int64), np.array(d["count"], np.uint64), float(d["max_ps"]))


class Pool:
    """The latency histograms of several runs summed, per flow: percentiles of all their
    requests together. Integer sums and a maximum, so the same in any order of adding."""

    def __init__(self) -> None:
        self.hist: dict[str, np.ndarray] = {}
        self.max_ps: dict[str, float] = {}
        self.parts: dict[str, dict[int, Tail]] = {}  # each run's own histogram, by its ``part``

    def add(self, tails: dict[str, Tail], part: int | None = None) -> None:
        """Adds a run's histograms; with ``part`` (a key unique in this pool, such as the
        run's index) they are also kept apart, for :meth:`cdf_at` (a percentile's interval)."""
        for name, (idx, counts, mx) in tails.items():
            if name not in self.hist:
                self.hist[name], self.max_ps[name] = np.zeros(HIST_BUCKETS, np.uint64), 0.0
            np.add.at(self.hist[name], idx, counts)
            self.max_ps[name] = max(self.max_ps[name], mx)
            if part is not None:
                self.parts.setdefault(name, {})[part] = (idx, counts, mx)

    def cdf_at(self, name: str, x_us: float) -> np.ndarray:
        """Each kept run's fraction of its requests of flow ``name`` at or below ``x_us``, in
        the order of their ``part`` keys (NaN for a run with none), read as
        :func:`hist_quantile` reads a bucket: its values spread evenly over it (so that at the
        pooled q-quantile the runs' fractions together are q, within half a request)."""
        return np.array([tail_cdf(idx, counts, x_us * 1e6, mx)
                         for _, (idx, counts, mx) in sorted(self.parts.get(name, {}).items())], np.float64)

    def quantile(self, name: str, q: float) -> float:
        """The q-quantile (us) of flow ``name``'s pooled requests; NaN when none completed."""
        h = self.hist.get(name)
        return math.nan if h is None else hist_quantile(h, q, self.max_ps[name]) / 1e6


def tail_cdf(idx: np.ndarray, counts: np.ndarray, x_ps: float, max_ps: float | None = None) -> float:
    """The fraction of a histogram's values (its nonzero buckets ``idx`` and their
    ``counts``) at or below ``x_ps``, each bucket's values spread evenly over it, as
    :func:`hist_quantile` reads them; 1 at or above ``max_ps`` (the largest value), when
    given; NaN for an empty histogram."""
    c = np.asarray(counts, np.float64)
    total = float(c.sum())
    if total == 0:
        return math.nan
    if max_ps is not None and x_ps >= max_ps:
        return 1.0
    lo, w = hist_lower(idx), hist_width(idx).astype(np.float64)
    # an exact bucket (1 ps wide, below 256 ps) holds one value, at its lower edge, as
    # hist_quantile reads it: counted once x reaches it
    frac = np.where(w > 1, np.clip((x_ps - lo) / w, 0.0, 1.0), (x_ps >= lo).astype(np.float64))
    return float((frac * c).sum()) / total


@dataclass
class Result:
    """The outcome of one run. ``to_dict()`` holds the DESIGN.md keys and more."""

    experiment: Experiment
    compiled: Compiled
    stats: dict[str, np.ndarray]
    seed: int
    duration_s: float
    warmup_s: float
    events: int
    wall_s: float
    trace: np.ndarray | None = None
    trace_lost: int = 0
    _dict: dict[str, Any] | None = field(default=None, repr=False)

    # -- host cycles ----------------------------------------------------------------
    def host_cycles(self) -> dict[str, float]:
        """Fraction of all host cycles per category (sums to 1)."""
        c, s = self.compiled, self.stats
        window = self.duration_s * 1e12
        total = c.host_cores * window
        out: dict[str, float] = {}
        covered = 0
        for i, r in enumerate(c.resources):
            if not r.on_host:
                continue
            busy = s["resource_busy_area"][i]
            for k, cat in enumerate(c.categories):
                if busy[k] > 0:
                    out[cat] = out.get(cat, 0.0) + float(busy[k])
            idle = max(0.0, r.units * window - float(busy.sum()))
            key = "poll" if r.poll else ("reserved_idle" if r.reserved else "idle")
            out[key] = out.get(key, 0.0) + idle
            covered += r.units
        reserved_used = sum(r.units for r in c.resources if r.on_host and r.reserved)
        spare_reserved = c.reserve_cores - reserved_used  # reserved cores no resource uses
        unsold = c.host_cores - covered - spare_reserved  # sellable cores no tenant bought
        if spare_reserved > 0:
            out["reserved_idle"] = out.get("reserved_idle", 0.0) + spare_reserved * window
        if unsold > 0:
            out["idle"] = out.get("idle", 0.0) + unsold * window
        out.setdefault("tenant", 0.0)
        if any(r.sleeps for r in c.resources):
            out.setdefault("wake", 0.0)
        out.setdefault("idle", 0.0)
        out.setdefault("reserved_idle", 0.0)
        return {k: v / total for k, v in sorted(out.items(), key=lambda kv: _cat_order(kv[0]))}

    @property
    def usable_fraction(self) -> float:
        return self.host_cycles()["tenant"]

    def tenants(self) -> dict[str, dict[str, Any]]:
        """Per tenant of a multi-tenant host: its vCPUs, the share of its own vCPU cycles
        that did its work, and its share of all host cycles."""
        c, s = self.compiled, self.stats
        window = self.duration_s * 1e12
        tenant_cat = c.categories.index("tenant")
        out = {}
        for name, vcpus, ri in c.tenants:
            busy = s["resource_busy_area"][ri]
            out[name] = {
                "vcpus": vcpus,
                "vcpu_utilization": (float(busy.sum()) - self._polled(ri)) / (vcpus * window),  # as resources()'s
                "tenant_share_of_own_vcpus": float(busy[tenant_cat]) / (vcpus * window),
                "tenant_share_of_host": float(busy[tenant_cat]) / (c.host_cores * window),
                "flows": [f for f, t in zip(c.flows, c.flow_tenants) if t == name],
            }
        return out

    # -- flows ----------------------------------------------------------------------
    def flow(self, i: int) -> dict[str, Any]:
        s = self.stats
        done = int(s["flow_completed"][i])
        lat, cdf = _latency(done, float(s["flow_latency_sum"][i]), float(s["flow_latency_max"][i]),
                            s["flow_hist"][i], cdf=True)
        window = self.duration_s
        classes: dict[str, int] = {}
        detached: dict[str, int] = {}  # forked paths: completions of the work its requests set off
        for k, (fname, cname) in enumerate(self.compiled.classes):
            if fname == self.compiled.flows[i]:
                (detached if k in self.compiled.detached else classes)[cname] = int(s["class_completed"][k])
        by_class = {}  # a flow of several classes: each one's latency (percentiles where kept)
        if len(classes) > 1 and "class_latency_sum" in s:
            for k in self.compiled.own_classes(i):
                n = int(s["class_completed"][k])
                hist = s["class_hist"][k] if "class_hist" in s else None
                by_class[self.compiled.classes[k][1]] = _latency(n, float(s["class_latency_sum"][k]),
                                                                 float(s["class_latency_max"][k]), hist)[0]
        return {
            "completed": done,
            "dropped": int(s["flow_dropped"][i]),
            "created": int(s["flow_created"][i]),
            "throughput_per_s": done / window,
            "mean_in_flight": float(s["flow_in_flight_area"][i]) / (window * 1e12),
            "background": self.compiled.background[i],
            "closed": bool(self.compiled.spec.flows[i][0]),  # clients in a loop, not open arrivals
            "latency_us": lat,
            # the percentiles resting on fewer than MIN_TAIL_REQUESTS requests beyond them
            "thin_tail": [name for name, q in PERCENTILES if thin_tail(done, q)],
            "latency_cdf_us": cdf,  # [quantile, microseconds] pairs
            "classes": classes,
            **({"class_latency_us": by_class} if by_class else {}),
            **({"detached": detached} if detached else {}),
        }

    def tails(self) -> dict[str, Tail]:
        """Each flow's latency histogram (its nonzero buckets) and maximum, for pooling the
        requests of several runs (:class:`Pool`)."""
        s = self.stats
        out = {}
        for i, name in enumerate(self.compiled.flows):
            h = s["flow_hist"][i]
            idx = np.flatnonzero(h)
            out[name] = (idx, h[idx].astype(np.uint64), float(s["flow_latency_max"][i]))
            own = self.compiled.own_classes(i)
            if len(own) > 1 and "class_hist" in s:  # each class's too, as FLOW/CLASS
                for k in own:
                    h = s["class_hist"][k]
                    idx = np.flatnonzero(h)
                    out[f"{name}/{self.compiled.classes[k][1]}"] = (idx, h[idx].astype(np.uint64),
                                                                    float(s["class_latency_max"][k]))
        return out

    def throughput_per_s(self, *, include_background: bool = False) -> float:
        """Completed tenant requests per second, over all workload flows."""
        done = sum(int(self.stats["flow_completed"][i]) for i, bg in enumerate(self.compiled.background)
                   if include_background or not bg)
        return done / self.duration_s

    # -- resources and stages -------------------------------------------------------
    def resources(self) -> dict[str, dict[str, Any]]:
        s, window = self.stats, self.duration_s * 1e12
        out = {}
        # resources a stage can preempt on (a qclass of theirs has `preempt`)
        preemptive = {q[0] for q in self.compiled.spec.qclasses if len(q) > 4 and q[4]}
        # where each sleeping resource's states start in the engine's flat array (as _core builds it)
        first_idle, _ = idle_offsets(self.compiled.spec)
        states = self.experiment.host.idle_states
        for i, r in enumerate(self.compiled.resources):
            area = s["resource_busy_area"][i]
            polled = self._polled(i)
            busy = float(area.sum()) - polled
            out[r.name] = {
                "kind": r.kind,
                "units": r.units,
                "on_host": r.on_host,
                "utilization": busy / (r.units * window),
                "mean_queue": float(s["resource_queue_area"][i]) / window,
                "max_queue": int(s["resource_max_queue"][i]),
                "served": int(s["resource_served"][i]),
                "dropped": int(s["resource_dropped"][i]),
            }
            if r.sleeps:  # services that began by waking an idle unit (the host's idle states)
                out[r.name]["wakeups"] = int(s["resource_wakeups"][i])
                # and from which state each woke (the host's idle states by name, shallowest first)
                if i in first_idle and "idle_state_wakeups" in s and len(self.compiled.spec.resources[i][2]) == len(states):
                    k0 = first_idle[i]
                    out[r.name]["wakeups_by_state"] = {
                        st.name: int(s["idle_state_wakeups"][k0 + j]) for j, st in enumerate(states)}
                if polled > 0:  # the share of its units' time spent halt-polling
                    out[r.name]["polling"] = polled / (r.units * window)
            if i in preemptive:  # services suspended by a preempting arrival
                out[r.name]["preemptions"] = int(s["resource_preemptions"][i])
        return out

    def _polled(self, i: int) -> float:
        """Resource i's halt-polling area (ps x units): a halt-polling vCPU's `poll` time (no
        stage there may charge poll), which burns host cycles but serves no one, so, as a
        polling resource's idle polls, it is not in the utilization: it is `polling`."""
        cats = self.compiled.categories
        if not self.compiled.resources[i].halt_polls or "poll" not in cats:
            return 0.0
        return float(self.stats["resource_busy_area"][i][cats.index("poll")])

    def stages(self) -> list[dict[str, Any]]:
        """Per stage: how many passed, how many services began there (a batch counts once, so
        completed / services is the mean batch: packets per interrupt on an interrupt
        stage), mean wait and mean service, the part of the wait spent suspended by
        preemption (after the service began), and the mean of its pure delay as the model
        gives it (microseconds)."""
        s = self.stats
        out = []
        cpus = {r.name for r in self.compiled.resources if r.kind == "cpu"}
        visits: dict[tuple[str, ...], int] = {}
        for i, g in enumerate(self.compiled.stages):
            n = int(s["stage_completed"][i])
            served = int(s["stage_served"][i])
            # a stage a class passes more than once (a step's `count`, a path walked twice):
            # its k-th pass by a request of the class, each with its own waits
            who = (g.flow, g.request_class, g.step, g.name, g.where)
            visits[who] = visits.get(who, 0) + 1
            out.append({
                "flow": g.flow, "class": g.request_class, "step": g.step, "stage": g.name, "visit": visits[who],
                # an account holds host cycles: a link's or a device's stage (the wire, the
                # disk) charges none, and has none (summing stages by account over-counted tenant)
                "resource": g.resource, "account": g.category if g.resource in cpus else None,
                "completed": n, "services": served,
                "where": g.where.rpartition("/")[2],  # file name and key of its definition
                "mean_wait_us": float(s["stage_wait_sum"][i]) / n / 1e6 if n else math.nan,
                "mean_service_us": float(s["stage_service_sum"][i]) / n / 1e6 if n else math.nan,
                "mean_preempted_us": float(s["stage_preempted_sum"][i]) / n / 1e6 if n else math.nan,
                "delay_us": float(self.compiled.spec.stages[i][4][1]) / 1e6,  # its pure latency (mean)
            })
        return out

    # -- output ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        if self._dict is None:
            e = self.experiment
            self._dict = {
                "host": e.host.name,
                "architecture": e.architecture.name,
                "workload": e.workload.name,
                "seed": self.seed,
                "duration_s": self.duration_s,
                "warmup_s": self.warmup_s,
                "flows": {name: self.flow(i) for i, name in enumerate(self.compiled.flows)},
                "usable_fraction": self.usable_fraction,
                "host_cycles": self.host_cycles(),
                "resources": self.resources(),
                "throughput_per_s": self.throughput_per_s(),
                **({"tenants": self.tenants()} if self.compiled.tenants else {}),
                "reserve": {
                    "cores": self.compiled.reserve_cores,
                    "memory_gib": e.architecture.reserve_memory_gib,
                    "vcpu_share": self.compiled.vcpus / self.compiled.host_cores,
                    "memory_share": 1 - e.architecture.reserve_memory_gib / e.host.memory_gib,
                },
                "events": self.events,
                "wall_s": self.wall_s,
                "spec_digest": e.digest(),
            }
        # a copy: a caller editing what it got (a notebook's d["flows"].clear()) changed what
        # the next to_dict(), to_json() and the replication measures read
        return copy.deepcopy(self._dict)

    def to_json(self, **kw: Any) -> str:
        return dumps(self.to_dict(), **kw)


def dumps(obj: Any, **kw: Any) -> str:
    """Strict JSON (RFC 8259) of a result or of anything built from one: numpy numbers as
    plain numbers, and a value that is not defined (NaN: a latency with no completion, an
    interval from one run) or infinite as ``null``, which every JSON reader takes."""
    return json.dumps(_finite(obj), default=_json_default, allow_nan=False, **kw)


def _finite(o: Any) -> Any:
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(type(o).__name__)


_ORDER = ("tenant", "exit", "hypervisor", "paging", "emulation", "backend", "copy", "poll")


def categories(host_cycles: Iterable[Iterable[str]]) -> list[str]:
    """Every category of the given runs' host cycles (each a mapping or list of category
    names), once each, in the order reports use: tenant, the overheads, idle last."""
    return sorted({c for cats in host_cycles for c in cats}, key=_cat_order)


def _cat_order(cat: str) -> tuple[int, str]:
    if cat in _ORDER:
        return (_ORDER.index(cat), cat)
    if cat == "wake":
        return (97, cat)
    if cat == "idle":
        return (98, cat)
    if cat == "reserved_idle":
        return (99, cat)
    return (50, cat)
