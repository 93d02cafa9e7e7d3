"""Sweeps: one experiment run over a grid or a sample of parameter values, with replications.

A sweep varies any key that ``--set`` accepts (a param name such as ``exit_cycles``, or a
dotted key path such as ``architecture.reserve.cores``) and the bundled ``host``,
``architecture`` or ``workload`` by name. Each ``--vary`` gives one axis:

=====================================  ============================================================
``exit_cycles=1000,2000,4000``         a list; each item is read as a TOML value (``{ dist = "exp",
                                       mean = 5 }`` is one item: commas inside braces, brackets
                                       or quotes do not split), else taken as a bare string
``exit_cycles=1000:5000:5``            5 points, linear, both ends included
``exit_cycles=1e3:1e6:7:log``          7 points, geometric (log-spaced), both ends included
``architecture=xen-pv,nitro``          bundled names (likewise ``host``, ``workload``)
=====================================  ============================================================

Keys joined by ``+`` are one axis whose value each of them takes: ``--vary
architecture.reserve.cores+architecture.resources.dom0.cores=4:24:11`` grows dom0 with
the reserve it must fit in (the column is named by the joined keys).

Range points are rounded to 15 significant digits (so ``1e3:1e6:4:log`` gives exactly
1000, 10000, ...). When both ends of a range are written as integers the points are
integers (rounded to the nearest); write ``1000.0`` for real-valued points. Points that
coincide are an error. A string that contains ``:`` is given quoted (``key="a:b"``).

**Designs.** By default the full grid (the cartesian product, the first axis varying
slowest). ``sample="random:N"`` draws N points independently: uniformly in each range
(log-uniformly in a log range; the range's point count is ignored and may be left out:
``x=1000:5000``), uniformly from each list. ``sample="lhs:N"`` is a Latin hypercube: each
range is cut into N equal strata (in log space for a log range) and every stratum of every
range holds exactly one point, the strata paired at random; a list axis is stratified the
same way over its items, so each item appears ⌊N/k⌋ or ⌈N/k⌉ times. Samples come from
numpy's PCG64 seeded with ``sample_seed``: the same design every time.

**Replications and common random numbers.** Every point is run ``replications`` times.
Replication r of every point uses the same seed (``emulator.stats.replication_seeds(seed,
R)[r]``, the seeds :func:`emulator.stats.replicate` would use), and the engine keys every
draw by the request and the stage that make it, so the k-th request draws the same numbers
at every point: points differ by their parameters and not by their luck, and the
difference between two points has much less noise than either alone.

**Outputs.** One tidy CSV, one row per point × replication: ``point``, ``replication``,
``seed``, one column per varied key, then ``usable_fraction``, ``throughput_per_s``, per
flow NAME ``NAME.throughput_per_s``, ``NAME.completed`` (requests completed in the window),
``NAME.mean_us``, ``NAME.p50_us``, ``NAME.p99_us``, ``NAME.p999_us`` (latency in
microseconds), ``host_cycles.CATEGORY`` for every host-cycle category (a category a
point does not have is 0; a flow it does not have is empty), and ``utilization.RESOURCE``
for every resource (which one binds the point: a saturated one reads ~1). A summary CSV (the same name
with ``-summary`` before the extension) has one row per point: the varied keys,
``replications``, and for each measure its mean and the half-width of its 95% confidence
interval, ``MEASURE_ci95`` = t_{0.975, R-1} s / √R (``nan`` with one replication). A
percentile's value is that of all the point's requests together (the replications' latency
histograms summed; the same sectioning estimate as ``vemu run -n``), its ``_ci95`` the wider
side of :func:`emulator.stats.quantile_ci`'s interval (through each replication's share of
requests below it); it also gets ``MEASURE_thin_tail``, 1 when some replication had fewer
than 10 requests beyond it (its estimate is biased low: run longer), and
``MEASURE_biased``, 1 when the replications' own percentiles sit further from the pooled
value than the interval and a histogram bucket (each run is too short for that tail), blank
with one replication. Both start with ``#`` provenance lines; neither depends on the executor,
the number of workers or the cache, so a sweep resumed from the cache or run on a cluster
writes the same bytes as one run straight through on one core.

**Executors and the cache.** Runs are :class:`emulator.runner.Job` s, run by
:func:`emulator.runner.run_jobs` on a local process pool or on a Dask cluster, each cached
(by the model data after overrides, window, seed and code) as it finishes: a sweep killed
midway and started again computes only the points that were missing.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ._core import EmulatorError, ModelError
from .model import KINDS, bundled_path, check_count, check_seed, load_experiment, parse_set, read_toml
from .provenance import model_hashes
from .result import Pool, Tail, categories, tail_from_json
from .stats import PERCENTILES, mean_ci, pooled_percentiles, replication_seeds, thin_tail

LEVEL = 0.95
FLOW_MEASURES = (("throughput_per_s", None), ("completed", None), ("mean_us", "mean"), ("p50_us", "p50"),
                 ("p99_us", "p99"), ("p999_us", "p999"))
# each class of a flow's mix (FLOW/CLASS), as vemu run -n reports them
CLASS_MEASURES = (("completed", None), ("mean_us", "mean"), ("p99_us", "p99"))
FIXED_COLUMNS = ("point", "replication", "seed")
MEASURE_COLUMNS = ("usable_fraction", "throughput_per_s")  # measures beside FLOW.MEASURE, host_cycles.*, utilization.*
MAX_POINTS = 1_000_000  # a range's point count, a sample's size
MAX_RUNS = 1_000_000  # points x replications: checked before the grid is built



def mean_ci95(values: Iterable[float | None]) -> tuple[float, float, int]:
    """(mean, 95% t half-width, n) over the finite values (emulator.stats.mean_ci)."""
    iv = mean_ci([x for x in values if x is not None], level=LEVEL)
    return iv.mean, iv.half_width, iv.n


# ----------------------------------------------------------------------------- value syntax

JOIN_ROOTS = ("host.", "architecture.", "workload.", "tenants.")


def joined_keys(key: str) -> tuple[str, ...]:
    """``key`` split at its ``+`` signs when it joins keys: when every part is a param name
    (no dot) or a dotted path from a model's root. Otherwise the ``+`` belongs to a name
    inside one path (a resource ``"dom0+x"``), and the key is one key."""
    parts = key.split("+")
    if len(parts) > 1 and all(p and ("." not in p or p.startswith(JOIN_ROOTS)) for p in parts):
        return tuple(parts)
    return (key,)


@dataclass(frozen=True)
class Axis:
    """One varied key: a list of values, or a numeric range.

    ``values`` are (value, text) pairs, ``text`` being what ``--set KEY=text`` takes; for a
    range they are its grid points (empty when a sampled range gave no count)."""

    key: str
    values: tuple[tuple[Any, str], ...]
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        return self.lo is not None

    @property
    def is_name(self) -> bool:
        return self.key in KINDS

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys this axis sets: one, or several joined by ``+`` that take the same value."""
        return joined_keys(self.key)

    def cells(self, n: int) -> int:
        """How many discrete values a Latin hypercube of n points deals out evenly on this
        axis: a list's k items; an integer range's integers when they are no more than n
        (a linear range; with more, or on a log scale, u's stratum places the value); else 0."""
        if not self.is_range:
            return len(self.values)
        if self.integer and not self.log:
            m = abs(int(self.hi) - int(self.lo)) + 1  # type: ignore[arg-type]
            return m if m <= n else 0
        return 0

    def at(self, u: float, lhs: tuple[int, int, Any] | None = None) -> tuple[Any, str]:
        """The value at quantile ``u`` in [0, 1): along the range, or the ⌊u·k⌋-th item.

        An integer range's integers are equally likely (log-uniformly over [lo, hi + 1) in
        a log range): lo + ⌊u·(hi - lo + 1)⌋, not a rounded real, which gave the two ends
        half the others' share. ``lhs`` (i, n, perm) is u's Latin-hypercube stratum i of n and
        a random order of the axis's :meth:`cells`: a discrete axis then takes the cell
        perm[⌊i·c/n⌋], so each of its c values is in ⌊n/c⌋ or ⌈n/c⌉ points (u itself, jittered
        within a stratum that straddles two values, could leave one out) and, the order
        being random, each is as likely as any to get the extra ones."""
        c = self.cells(lhs[1]) if lhs else 0
        if c:
            cell = int(lhs[2][lhs[0] * c // lhs[1]])  # type: ignore[index]
            return self.values[cell] if not self.is_range else _number(int(min(self.lo, self.hi)) + cell)  # type: ignore[arg-type,type-var]
        if not self.is_range:
            k = len(self.values)
            return self.values[min(k - 1, int(u * k))]
        lo, hi = float(self.lo), float(self.hi)  # type: ignore[arg-type]
        if self.integer:  # the integers between the ends, whichever is given first
            lo, hi = min(lo, hi), max(lo, hi)
            x = math.floor(_between(lo, hi + 1, u, self.log))
            return _number(int(min(max(x, lo), hi)))
        return _number(_between(lo, hi, u, self.log))


def _between(lo: float, hi: float, t: float, log: bool) -> float:
    """The point a fraction ``t`` of the way from lo to hi (geometrically when ``log``);
    in log space when hi/lo or hi - lo overflows (1e-300:1e300, -1e308:1e308)."""
    if log:
        x = lo * (hi / lo) ** t if math.isfinite(hi / lo) else math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * t)
    else:
        x = lo + (hi - lo) * t if math.isfinite(hi - lo) else lo * (1 - t) + hi * t
    return x


def _number(x: int | float) -> tuple[Any, str]:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(type(x).__name__)
    return (x, str(x)) if isinstance(x, int) else (x, repr(float(x)))


def _err(key: str, msg: str) -> ModelError:
    return ModelError(msg, key=f"--vary {key}" if key else "--vary")


def _toml_value(text: str) -> Any:
    """A value as ``--set`` reads it: TOML, else the bare string."""
    return parse_set(f"v={text}")[1]


def _split_items(text: str) -> list[str]:
    """Splits on commas that are not inside quotes, braces or brackets."""
    items, depth, quote, cur = [], 0, "", []
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"' and i + 1 < len(text):
                cur.append(c)
                i += 1
                c = text[i]
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    items.append("".join(cur).strip())
    return items


def _range_number(key: str, text: str, what: str) -> int | float:
    try:
        v = tomllib.loads(f"v = {text.strip()}")["v"]
    except (ValueError, RecursionError):  # not a TOML value, or an integer of too many digits
        v = None
    try:
        finite = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(float(v))
    except OverflowError:  # an integer beyond any float
        finite = False
    if not finite:
        shown = text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"
        raise _err(key, f"{what} of range must be a finite number, got '{shown}' (a range is LO:HI:N or LO:HI:N:log; "
                        "quote a string that contains ':')")
    return v


def parse_vary(text: str, *, sampled: bool = False) -> Axis:
    """Parses one ``KEY=VALUES`` (see the module docstring). ``sampled``: the axis feeds a
    random or LHS design, so a range's point count may be left out."""
    if "=" not in text:
        raise _err("", f"'{text}' is not KEY=VALUES (e.g. exit_cycles=1000,2000 or exit_cycles=1000:5000:5)")
    key, rhs = (s.strip() for s in text.split("=", 1))
    if not key or any(c.isspace() for c in key):
        raise _err(key, f"'{text}' has no key (or a key with spaces)")
    if not rhs:
        raise _err(key, "no values")
    if "+" in key and any(not p for p in key.split("+")):
        raise _err(key, "an empty key between '+' signs; join keys as KEY1+KEY2=VALUES")
    parts = joined_keys(key)
    if len(parts) > 1:
        if any(p in KINDS for p in parts):
            raise _err(key, f"{', '.join(KINDS)} cannot be joined with other keys; vary them on their own")
        if len(set(parts)) < len(parts):
            raise _err(key, "a key is joined to itself")
    if key in KINDS:
        names = [s.strip() for s in rhs.split(",")]
        if any(not s for s in names):
            raise _err(key, f"'{rhs}' has an empty name; give bundled {key} names separated by commas")
        for name in names:
            bundled_path(key, name, key=f"--vary {key}")
        _no_repeats(key, names)
        return Axis(key, tuple((s, s) for s in names))
    if ":" in rhs and rhs[0] not in "\"'[{" and "," not in rhs:
        return _parse_range(key, rhs, sampled)
    items = _split_items(rhs)
    if any(not s for s in items):
        raise _err(key, f"'{rhs}' has an empty item")
    try:
        vals = tuple((_toml_value(s), s) for s in items)
    except ModelError:  # a value nested too deeply for the TOML reader
        raise _err(key, "a value has arrays or tables nested too deeply") from None
    # 1 and 1.0 are one point (a model reads both as the same number); integers compare exactly
    _no_repeats(key, [_same_number_text(v) for v, _ in vals])
    return Axis(key, vals)


def _same_number_text(v: Any) -> str:
    """A value's text for spotting repeats: an integral number as the integer (1, 1.0 and
    1e0 alike; 2**53 and 2**53 + 1 apart), any other as JSON."""
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return str(int(v))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v) if isinstance(v, int) else repr(v)
    return json.dumps(v, sort_keys=True, default=str)


def _no_repeats(key: str, texts: Sequence[str]) -> None:
    seen = set()
    for t in texts:
        if t in seen:
            raise _err(key, f"value {t} is given twice")
        seen.add(t)


def _parse_range(key: str, rhs: str, sampled: bool) -> Axis:
    parts = [p.strip() for p in rhs.split(":")]
    log = parts[-1] == "log"
    if log:
        parts = parts[:-1]
    if len(parts) not in (2, 3) or (len(parts) == 2 and not sampled):
        need = "LO:HI:N or LO:HI:N:log" + (" (N may be left out when sampling)" if not sampled else "")
        raise _err(key, f"'{rhs}' is not a range: {need}")
    lo = _range_number(key, parts[0], "the low end")
    hi = _range_number(key, parts[1], "the high end")
    n = None
    if len(parts) == 3:
        try:
            n = int(parts[2])
        except ValueError:
            n = None
        if n is None or n < 1 or n > MAX_POINTS:
            raise _err(key, f"the point count of '{rhs}' must be an integer in [1, {MAX_POINTS}], got '{parts[2]}'")
        if n == 1 and lo != hi:
            raise _err(key, f"'{rhs}' has one point but two different ends; give N >= 2")
    if log and not (lo > 0 and hi > 0):
        raise _err(key, f"a log range needs both ends > 0, got '{rhs}'")
    integer = isinstance(lo, int) and isinstance(hi, int)
    ax = Axis(key, (), float(lo), float(hi), n, log, integer)
    if n is None:
        return ax
    pts: list[int | float] = []
    for k in range(n):
        if k == 0 or k == n - 1:
            x: float = lo if k == 0 else hi
        else:
            t = k / (n - 1)
            x = _between(lo, hi, t, log)
            x = float(f"{x:.15g}")
        pts.append(round(x) if integer else float(x))
    if len(set(pts)) < len(pts):
        what = "integers" if integer else "distinct numbers"
        hint = f"; write {float(lo)!r} for real-valued points" if integer else ""
        raise _err(key, f"'{rhs}' does not hold {n} {what}{hint}")
    return Axis(key, tuple(_number(x) for x in pts), ax.lo, ax.hi, n, log, integer)


def parse_sample(text: str | None) -> tuple[str, int]:
    """``None``/``grid`` → ("grid", 0); ``random:N``, ``lhs:N`` → (kind, N)."""
    if text is None or text == "grid":
        return "grid", 0
    kind, _, n = text.partition(":")
    if kind in ("random", "lhs"):
        try:
            size = int(n)
        except ValueError:
            size = 0
        if 1 <= size <= MAX_POINTS:
            return kind, size
    raise ModelError(f"'{text}' is not a design: grid, random:N or lhs:N with N in [1, {MAX_POINTS}]", key="--sample")


def lhs_unit(n: int, d: int, rng: Any) -> tuple[Any, Any]:
    """An n × d Latin hypercube on [0, 1)^d: column j has exactly one value in each
    [k/n, (k+1)/n), uniform within it, the strata of the columns paired at random. Returns
    the points and each one's stratum index (an n × d array of integers)."""
    import numpy as np

    out = np.empty((n, d))
    strata = np.empty((n, d), dtype=np.int64)
    for j in range(d):
        strata[:, j] = rng.permutation(n)
        out[:, j] = (strata[:, j] + rng.random(n)) / n
    return out, strata


def design(axes: Sequence[Axis], sample: str | None = None, *, sample_seed: int = 0) -> list[tuple[tuple[Any, str], ...]]:
    """The points: for each, one (value, text) per axis, in axis order."""
    kind, n = parse_sample(sample)
    if kind == "grid":
        for a in axes:
            if not a.values:
                raise _err(a.key, "a range in a grid needs a point count: LO:HI:N")
        return list(itertools.product(*(a.values for a in axes)))
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(sample_seed))
    if kind == "lhs":
        u, strata = lhs_unit(n, len(axes), rng)
        perms = [rng.permutation(a.cells(n)) if a.cells(n) else None for a in axes]
        return [tuple(a.at(float(u[i, j]), (int(strata[i, j]), n, perms[j])) for j, a in enumerate(axes))
                for i in range(n)]
    u = rng.random((len(axes), n)).T
    return [tuple(a.at(float(u[i, j])) for j, a in enumerate(axes)) for i in range(n)]


# ----------------------------------------------------------------------------- running

@dataclass
class Plan:
    """What a sweep will run: the axes, the points, the seeds and one Job per run."""

    axes: list[Axis]
    points: list[tuple[tuple[Any, str], ...]]
    seeds: list[int]
    jobs: list[Any]
    options: dict[str, Any]
    models: list[tuple[str, str]]
    # their hashes when the plan was made: the written provenance must still be theirs
    model_hashes: dict[str, str] = field(default_factory=dict)


def _axes(vary: Mapping[str, Any] | Sequence[str], sampled: bool) -> list[Axis]:
    if isinstance(vary, Mapping):
        axes = []
        for k, v in vary.items():
            if isinstance(v, str):
                axes.append(parse_vary(f"{k}={v}", sampled=sampled))
            elif isinstance(v, Iterable):
                items = list(v)
                if not items:
                    raise _err(k, "no values")
                axes.append(parse_vary(f"{k}=" + ",".join(_toml_text(x) if k not in KINDS else str(x)
                                                          for x in items), sampled=sampled))
            else:
                raise _err(k, f"values must be a string in --vary syntax or a list, got {type(v).__name__}")
    else:
        axes = [parse_vary(t, sampled=sampled) for t in vary]
    if not axes:
        raise _err("", "nothing to vary: give at least one KEY=VALUES")
    keys = [k for a in axes for k in a.keys]
    for k in keys:
        if keys.count(k) > 1:
            raise _err(k, "is varied twice")
        if k in FIXED_COLUMNS or k in MEASURE_COLUMNS:
            raise _err(k, f"'{k}' is a column of the sweep table, not a model key")
    return axes


def _toml_text(v: Any) -> str:
    if isinstance(v, np.generic):  # NumPy's scalars (np.arange's int64) as Python's
        v = v.item()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_text(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_text(x) for x in v) + "]"
    raise _err("", f"cannot write {type(v).__name__} as a --set value")


def _spec_info(spec: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(spec as a Job takes it, its data, provenance of the spec itself)."""
    if spec is None:
        return None, {}, {"spec": None}
    if isinstance(spec, Mapping):
        data = json.loads(json.dumps(spec))
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
        return data, data, {"spec": "inline", "spec_sha256": digest}
    p = Path(spec)
    data = read_toml(p)
    return str(p), data, {"spec": str(p), "spec_sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:12]}


def plan(spec: Any = None, *, host: str | None = None, architecture: str | None = None, workload: str | None = None,
         vary: Mapping[str, Any] | Sequence[str], sets: Sequence[str] = (), sample: str | None = None,
         sample_seed: int = 0, replications: int = 1, seed: int | None = 1, duration_s: float | None = None,
         warmup_s: float | None = None) -> Plan:
    """Parses and validates a sweep without running it: every point's experiment is loaded
    and compiled here, so a bad key or value fails before any run starts."""
    from .runner import Job

    kind, n_sample = parse_sample(sample)
    for name, v in (("vary", vary), ("sets", sets)):  # a string would be read a character at a time
        if isinstance(v, (str, bytes)):
            raise ModelError(f"must be a {'mapping or ' if name == 'vary' else ''}list of 'KEY=...' strings, got the "
                             f"string {v!r}: put it in a list", key=f"--{name.rstrip('s')}")
    axes = _axes(vary, kind != "grid")
    # (KEY, VALUE) pairs, as load_experiment takes them, as the 'KEY=VALUE' text the options
    # line records and the checks below parse (a pair slipped past them, and its recorded
    # options were then refused by vemu plot)
    sets = [f"{t[0]}={_toml_text(t[1])}" if isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], str) else t
            for t in sets]
    given = {str(t).split("=", 1)[0].strip() for t in sets}
    for a in axes:  # one key both set and varied: refused before any point is loaded
        for k in ([] if a.is_name else a.keys):
            if k in given:
                raise _err(k, f"also set by --set {k}: the --vary would override it at every point; drop one")
    replications = check_count(replications, key="--replications", hi=MAX_RUNS)
    sample_seed = check_count(sample_seed, key="--sample-seed", lo=0, hi=2**63 - 1)
    n_points = math.prod(len(a.values) for a in axes) if kind == "grid" else n_sample
    if n_points * int(replications) > MAX_RUNS:
        raise ModelError(f"{n_points} points x {int(replications)} replications = {n_points * int(replications)} runs, "
                         f"beyond {MAX_RUNS}: fewer values, points or replications", key="--vary")
    job_spec, data, spec_prov = _spec_info(spec)
    ex = data.get("experiment", {}) if isinstance(data.get("experiment"), dict) else {}
    if seed is None:  # the file's, checked as vemu run checks it (a bad one was taken as 1, or blamed on --seed)
        seed = check_seed(ex.get("seed", 1), key="experiment.seed",
                          file=spec_prov["spec"] if isinstance(job_spec, str) else None)
    seed = check_seed(seed, key="--seed")  # 1.5 was taken as 1, '7' as 7
    points = design(axes, sample, sample_seed=sample_seed)
    seeds = replication_seeds(int(seed), int(replications))
    fixed = {"host": host, "architecture": architecture, "workload": workload}
    for a in axes:
        if a.is_name and fixed[a.key] is not None:
            raise _err(a.key, f"is varied and also named ({a.key} {fixed[a.key]}): the --vary would override it at "
                              "every point; drop one")
    jobs, models = [], set()
    for p, pt in enumerate(points):
        names = dict(fixed)
        psets = list(sets)
        for a, (v, text) in zip(axes, pt):
            if a.is_name:
                names[a.key] = v
            else:
                psets += [f"{k}={text}" for k in a.keys]
        try:
            exp = load_experiment(job_spec, sets=psets, duration_s=duration_s, warmup_s=warmup_s, seed=seeds[0],
                                  **names)
        except ModelError as e:
            where = ", ".join(f"{a.key}={text}" for a, (_, text) in zip(axes, pt))
            raise ModelError(f"{e.detail} (sweep point {p}: {where})", file=_vary_blamed(e.file, axes, sets),
                             key=_vary_blamed(e.key, axes, sets)) from None
        models.update(exp.bundled)  # every bundled file the point reads, a tenant's workload included
        if p == 0:
            window0 = (exp.duration_s, exp.warmup_s)  # the window the runs use when none is given
            # a key with a '*' part writes many places, and exp.placed has no entry for it
            n_varied = sum(1 for a in axes if not a.is_name for k in a.keys if "*" not in k.split(".")[1:])
            _one_place_each(exp.placed, n_varied)
            _not_also_set(exp.placed, n_varied, sets)
            _not_also_set_wild(exp, axes, sets, n_varied)
        for r, s in enumerate(seeds):
            jobs.append(Job(names["host"], names["architecture"], names["workload"], tuple(psets), duration_s,
                            warmup_s, s, tag=(p, r), spec=job_spec, tails=True))
    options = {"command": "sweep", **spec_prov, "host": host, "architecture": architecture, "workload": workload,
               "sets": list(sets), "vary": [f"{a.key}=" + _axis_text(a) for a in axes],
               "sample": sample or "grid", "sample_seed": sample_seed if kind != "grid" else None,
               "replications": int(replications), "seed": int(seed), "seeds": seeds,
               # the window the runs used (the experiment's own, or vemu's default, when not given)
               "duration_s": duration_s if duration_s is not None else window0[0],
               "warmup_s": warmup_s if warmup_s is not None else window0[1], "points": len(points), "level": LEVEL}
    return Plan(axes, points, seeds, jobs, options, sorted(models), model_hashes(models))


def _vary_blamed(key: str | None, axes: Sequence[Axis], sets: Sequence[str]) -> str | None:
    """An error the loader blames on ``--set K`` where K is a varied key (a sweep passes its
    points' values as overrides) and no --set of the user's gives K: it is the --vary's."""
    if not key or not key.startswith("--set "):
        return key
    rest = key[len("--set "):]
    given = {str(t).split("=", 1)[0].strip() for t in sets}
    for a in axes:
        for k in ([] if a.is_name else a.keys):
            if (rest == k or rest.startswith((k + " ", k + "."))) and k not in given:
                return "--vary " + rest
    return key


def _not_also_set(placed: Sequence[tuple[str, str]], n_varied: int, sets: Sequence[str]) -> None:
    """Refuses a --set whose place a varied key writes too: the --vary wins at every point,
    while the --set went on being recorded (in the options line, a plot's title) as in force."""
    given = {str(t).split("=", 1)[0].strip() for t in sets}
    varied = {place: key for key, place in placed[len(placed) - n_varied:]} if n_varied else {}
    for key, place in placed[:len(placed) - n_varied]:
        if key in given and place in varied:
            raise _err(varied[place], f"also set by --set {key}: the --vary would override it at every point; "
                                      "drop one")


def _not_also_set_wild(exp: Any, axes: Sequence[Axis], sets: Sequence[str], n_varied: int) -> None:
    """As :func:`_not_also_set` where either side has a '*' in its key: a varied
    'architecture.paths.p.stages.*.cycles' overrode '--set architecture.paths.p.stages.0.cycles'
    at every point while the --set was recorded as in force."""
    given = {str(t).split("=", 1)[0].strip() for t in sets}
    varied_keys = {k for a in axes if not a.is_name for k in a.keys}
    plain = list(exp.placed)
    mine = [(k, p) for k, p in plain[:len(plain) - n_varied] if k in given]
    mine += [(k, p) for k, p in exp.wild if k in given and k not in varied_keys]
    theirs = {p: k for k, p in (plain[len(plain) - n_varied:] if n_varied else [])}
    theirs |= {p: k for k, p in exp.wild if k in varied_keys}
    wild_involved = {k for k, _ in exp.wild}
    by_key: dict[str, list[str]] = {}
    for key, place in mine:
        by_key.setdefault(key, []).append(place)
    for key, places in by_key.items():
        # a --set is void when the --vary overrides every place it writes (a '*' --set that
        # the --vary overrides in one place still sets the others: that is a baseline)
        if all(p in theirs for p in places) and (key in wild_involved or any(theirs[p] in wild_involved
                                                                             for p in places)):
            place = places[0]
            raise _err(theirs[place], f"also sets {place.split('.', 1)[1]}, which --set {key} sets: the --vary "
                                      "would override it at every point; drop one")


def _one_place_each(placed: Sequence[tuple[str, str]], n_varied: int) -> None:
    """Refuses two spellings of one key among the varied keys (workload.flows.0.clients and
    workload.flows.mix.clients; exit_cycles and host.params.exit_cycles): the column of the
    first would change nothing. ``placed`` is the loaded point's (override key, place) list,
    whose last ``n_varied`` entries are the varied keys (those without a ``*``)."""
    first: dict[str, str] = {}
    for key, place in placed[len(placed) - n_varied:] if n_varied else ():
        if place in first and first[place] != key:
            raise _err(key, f"and {first[place]} are one key ({place}), varied twice")
        first.setdefault(place, key)


def _axis_text(a: Axis) -> str:
    if a.is_range:
        n = f":{a.n}" if a.n is not None else ""
        lo, hi = (_number(round(x)) if a.integer else _number(x) for x in (a.lo, a.hi))  # type: ignore[arg-type]
        return f"{lo[1]}:{hi[1]}{n}" + (":log" if a.log else "")
    return ",".join(t for _, t in a.values)


def _cell(v: Any, text: str) -> Any:
    return v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else text


def tidy_rows(pl: Plan, results: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The per-run table: its columns and one dict per point × replication."""
    flows: list[str] = []
    classes: dict[str, list[str]] = {}  # a flow of several classes: its classes, in order
    kept: set[str] = set()  # the classes with percentiles (the engine kept their histograms) somewhere
    for r in results:
        flows += [f for f in r["flows"] if f not in flows]
        for f, fl in r["flows"].items():
            have = classes.setdefault(f, [])
            have += [c for c in fl.get("class_latency_us", {}) if c not in have]
            kept |= {f"{f}/{c}" for c, lat in fl.get("class_latency_us", {}).items()
                     if lat["p99"] is not None and not math.isnan(lat["p99"])}
    cats = categories(r["host_cycles"] for r in results)
    cat_cols = [f"host_cycles.{c}" for c in cats]
    # each resource's utilization: which one binds a point (a saturated link reads 1.0 where
    # the usable fraction alone made two architectures look alike)
    res: list[str] = []
    for r in results:
        res += [n for n in r["resources"] if n not in res]
    columns = [*FIXED_COLUMNS, *(a.key for a in pl.axes), "usable_fraction", "throughput_per_s",
               *(col for f in flows for col in [*(f"{f}.{m}" for m, _ in FLOW_MEASURES),
                                                *(f"{f}/{c}.{m}" for c in classes[f] for m, lat in CLASS_MEASURES
                                                  if lat != "p99" or f"{f}/{c}" in kept)]),
               *cat_cols,
               *(f"utilization.{n}" for n in res)]
    dup = sorted(c for c, k in Counter(columns).items() if k > 1)
    if dup:  # a name refused at load time reached here: one column would overwrite the other
        raise EmulatorError(f"two measures share the column name {', '.join(dup)}; rename a flow, category or resource")
    rows = []
    for job, r in zip(pl.jobs, results):
        p, rep = job.tag
        row: dict[str, Any] = {"point": p, "replication": rep, "seed": job.seed}
        for a, (v, text) in zip(pl.axes, pl.points[p]):
            row[a.key] = _cell(v, text)
        row["usable_fraction"] = r["usable_fraction"]
        row["throughput_per_s"] = r["throughput_per_s"]
        for f in flows:
            fl = r["flows"].get(f)
            for m, lat in FLOW_MEASURES:
                row[f"{f}.{m}"] = None if fl is None else fl[m] if lat is None else fl["latency_us"][lat]
            for c in classes[f]:
                cl = None if fl is None else fl.get("class_latency_us", {}).get(c)
                for m, lat in CLASS_MEASURES:
                    if lat == "p99" and f"{f}/{c}" not in kept:
                        continue
                    row[f"{f}/{c}.{m}"] = (None if cl is None else
                                           fl["classes"][c] if lat is None else cl[lat])
        for c in cats:
            row[f"host_cycles.{c}"] = r["host_cycles"].get(c, 0.0)
        for n in res:
            row[f"utilization.{n}"] = r["resources"][n]["utilization"] if n in r["resources"] else None
        rows.append(row)
    return columns, rows


Tails = Mapping[tuple[int, int], Mapping[str, Tail]]  # (point, replication) -> per flow


class RunTails(dict):  # type: ignore[type-arg]
    """(point, replication) -> each flow's latency histogram, as a sweep's DataFrame keeps
    them in ``attrs``. pandas deep-copies and compares ``attrs`` on most operations; these
    are shared, never copied, and equal only to themselves (so tables concatenate and merge,
    and a selection costs no copy of every run's histograms)."""

    def __deepcopy__(self, memo: Any) -> "RunTails":
        return self

    def __copy__(self) -> "RunTails":
        return self

    __eq__ = object.__eq__  # type: ignore[assignment]
    __ne__ = object.__ne__  # type: ignore[assignment]
    __hash__ = object.__hash__  # type: ignore[assignment]


def tails_of(pl: Plan, results: Sequence[Mapping[str, Any]]) -> RunTails:
    """Each run's latency histograms (per flow), keyed by (point, replication), from the
    results of the plan's jobs (run with ``tails``)."""
    return RunTails({job.tag: {name: tail_from_json(t) for name, t in r["latency_tails"].items()}
                     for job, r in zip(pl.jobs, results)})


def summarize(columns: Sequence[str], rows: Sequence[Mapping[str, Any]],
              tails: Tails | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Per point: the varied keys, the number of replications, and for each measure its
    mean and 95% t half-width (``MEASURE_ci95``) over every replication (empty when some
    replication did not give it a finite value). ``columns`` are the tidy table's.

    With ``tails`` (each run's latency histograms by (point, replication), :func:`tails_of`;
    every row's must be there), a percentile is
    estimated by sectioning: its value is the quantile of the point's replications'
    requests together, its half-width :func:`stats.quantile_ci`'s over them, and
    ``MEASURE_biased`` is 1 when their mean sits further from it than the half-width (the
    runs are too short for that tail). Without, the value is the mean of the replications'
    percentiles (biased low when runs are short) and ``MEASURE_biased`` is empty."""
    first = list(columns).index("usable_fraction")
    varied, measures = list(columns[len(FIXED_COLUMNS):first]), list(columns[first:])
    by_point: dict[int, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_point.setdefault(int(r["point"]), []).append(r)
    judged = {}  # percentile column -> (its flow's completions column, its quantile)
    for m in measures:
        flow, _, what = m.rpartition(".")
        if what in PERCENTILES and f"{flow}.completed" in measures:
            judged[m] = (f"{flow}.completed", PERCENTILES[what])
    out_cols = ["point", *varied, "replications",
                *(c for m in measures for c in (m, f"{m}_ci95", *((f"{m}_thin_tail", f"{m}_biased")
                                                                  if m in judged else ())))]
    out = []
    for p in sorted(by_point):
        group = by_point[p]
        row: dict[str, Any] = {"point": p, **{k: group[0][k] for k in varied}, "replications": len(group)}
        pool = None
        if tails is not None:
            pool = Pool()
            for r in group:
                pool.add(tails[(p, int(r["replication"]))], part=int(r["replication"]))
        for m in measures:
            mean, half, n = mean_ci95(r[m] for r in group)
            # a measure some replication lacks (a flow with no completion in its window) has no
            # mean over the point: one over the others would be conditioned on their luck
            row[m], row[f"{m}_ci95"] = (mean, half) if n == len(group) else (math.nan, math.nan)
            if m in judged:
                col, q = judged[m]
                # 1: some replication had too few requests beyond it (biased low)
                done = [r[col] for r in group if r[col] is not None]
                row[f"{m}_thin_tail"] = int(bool(done) and any(thin_tail(c, q) for c in done))
                row[f"{m}_biased"] = None
                if pool is not None and n == len(group):  # sectioning, as vemu run -n does
                    iv, biased = pooled_percentiles({m: np.array([r[m] for r in group], np.float64)}, pool,
                                                    level=LEVEL)
                    # with one replication there is no interval to judge it by: blank, not 0
                    row[m], row[f"{m}_biased"] = iv[m].mean, int(m in biased) if len(group) > 1 else None
                    if len(group) > 1:
                        row[f"{m}_ci95"] = iv[m].half_width
        out.append(row)
    return out_cols, out


def summary_path(out: Path | str) -> Path:
    """``sweep.csv`` → ``sweep-summary.csv`` (``-summary`` before the extension)."""
    p = Path(out)
    return p.with_name(f"{p.stem}-summary{p.suffix}")


def write(out: Path | str, pl: Plan, columns: Sequence[str], rows: Sequence[Mapping[str, Any]],
          tails: Tails | None = None) -> Path:
    """Writes the tidy CSV and its summary (whole, and as a pair: a failure leaves the old
    pair; ``tails`` as for :func:`summarize`); returns the summary's path."""
    from .provenance import atomic_write_many, csv_text, provenance

    prov = provenance(pl.options, pl.models, since=pl.model_hashes or None)
    s_cols, s_rows = summarize(columns, rows, tails)
    s_path = summary_path(out)
    exact = {a.key for a in pl.axes}  # the varied values are written exactly as they were set
    tidy = csv_text(list(columns), ([_csv(r.get(c), c in exact) for c in columns] for r in rows), prov)
    summary = csv_text(s_cols, ([_csv(r.get(c), c in exact) for c in s_cols] for r in s_rows),
                       prov | {"table": "summary"})
    atomic_write_many({out: tidy.encode("utf-8"), s_path: summary.encode("utf-8")})
    return s_path


def _csv(v: Any, exact: bool = False) -> Any:
    if v is None:
        return ""
    return repr(v) if exact and isinstance(v, float) else v


def _table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        return [dict(r) for r in rows]
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))


def sweep(spec: str | Path | Mapping[str, Any] | None = None, *, host: str | None = None,
          architecture: str | None = None, workload: str | None = None,
          vary: Mapping[str, Any] | Sequence[str], sets: Sequence[str] = (), sample: str | None = None,
          sample_seed: int = 0, replications: int = 1, seed: int | None = 1, duration_s: float | None = None,
          warmup_s: float | None = None, executor: str = "local", workers: int | None = None,
          scheduler: str | None = None, client: Any = None, cache: Any = None, progress: bool = False,
          out: Path | str | None = None, on_result: Callable[[int, dict[str, Any]], None] | None = None) -> Any:
    """Runs an experiment over a grid or sample of values and returns the tidy table.

    ``spec`` is an experiment file, an experiment as a dict, or None with ``host``,
    ``architecture`` and ``workload`` naming bundled models (any of which ``vary`` may
    supply instead). ``vary`` maps each key to its values, as a string in ``--vary`` syntax
    (``"1000:5000:5"``, ``"1e3:1e6:7:log"``, ``"xen-pv,nitro"``) or a list of values; or it is
    a list of ``"KEY=VALUES"`` strings. ``sets`` are fixed ``KEY=VALUE`` overrides.
    ``seed=None`` takes the spec's seed (default 1). ``executor``, ``workers``,
    ``scheduler``, ``client``, ``cache``, ``progress`` and ``on_result`` are those of
    :func:`emulator.runner.run_jobs` (``on_result(i, result)`` is called for each run
    computed, not for those taken from the cache). With ``out``, the tidy CSV and its
    summary are written there too.

    Returns a pandas DataFrame (one row per point × replication, the columns of the CSV,
    numbers at full precision) when pandas is importable, else a list of dicts with the same
    keys. :func:`summary` turns either into the per-point means and CI half-widths.
    """
    from .runner import run_jobs

    pl = plan(spec, host=host, architecture=architecture, workload=workload, vary=vary, sets=sets, sample=sample,
              sample_seed=sample_seed, replications=replications, seed=seed, duration_s=duration_s,
              warmup_s=warmup_s)
    results = run_jobs(pl.jobs, workers=workers, progress=progress, desc="sweep", cache=cache, on_result=on_result,
                       executor=executor, scheduler=scheduler, client=client)
    columns, rows = tidy_rows(pl, results)
    tails = tails_of(pl, results)
    if out is not None:
        write(out, pl, columns, rows, tails)
    table = _table(columns, rows)
    if not isinstance(table, list):
        table.attrs["latency_tails"] = tails  # for summary(table): percentiles by sectioning
    return table


def summary(table: Any, tails: Tails | None = None) -> Any:
    """Per-point means and 95% CI half-widths of a table :func:`sweep` returned (a
    DataFrame in, a DataFrame out; a list of dicts in, a list of dicts out). Percentiles
    are pooled over each point's replications (:func:`summarize`) when the runs' latency
    histograms are known: ``tails`` (:func:`tails_of`), or a DataFrame's
    ``attrs["latency_tails"]`` as :func:`sweep` leaves them (rows may be selected or
    reordered: each is matched by its point and replication); else they are averaged."""
    if isinstance(table, list):
        columns = list(table[0]) if table else []
        return summarize(columns, table, tails)[1]
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in table.to_dict("records")]
    cols, out = summarize(list(table.columns), rows, table.attrs.get("latency_tails") if tails is None else tails)
    return _table(cols, out)


# ----------------------------------------------------------------------------- command line

def register(subparsers: Any) -> None:
    from .cli import CACHE_HELP, duration_arg, path_arg, positive_int_arg, seed_arg, warmup_arg

    s = subparsers.add_parser(
        "sweep", help="run an experiment over a grid or sample of parameter values",
        description="Run an experiment over every combination (or a sample) of the --vary values, with "
                    "replications, and write a tidy CSV and a summary CSV with 95% confidence intervals.",
        epilog="VALUES: a,b,c (list) | LO:HI:N (linear, ends included) | LO:HI:N:log | bundled names for "
               "host/architecture/workload. Example: vemu sweep --host xeon-2017 -w cloud-mix "
               "--vary architecture=xen-pv,nitro --vary exit_cycles=1e3:1e4:4:log --replications 3. Joined keys: "
               "--vary architecture.reserve.cores+architecture.resources.dom0.cores=4:24:11")
    s.add_argument("spec", nargs="?", help="experiment file (TOML); optional when the bundled models are named")
    s.add_argument("--host", help="bundled host (replaces the file's)")
    s.add_argument("--architecture", "-a", help="bundled architecture (replaces the file's)")
    s.add_argument("--workload", "-w", help="bundled workload (replaces the file's)")
    s.add_argument("--vary", action="append", required=True, metavar="KEY=VALUES",
                   help="a key (param name, dotted key path, or host/architecture/workload) and its values; "
                        "keys joined by + take each value together; repeatable")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a fixed override at every point, as in vemu run; repeatable")
    s.add_argument("--sample", default="grid", metavar="DESIGN",
                   help="grid (default: every combination), random:N or lhs:N (Latin hypercube)")
    s.add_argument("--sample-seed", type=int, default=0, metavar="S", help="seed of the random or LHS design (default 0)")
    s.add_argument("--replications", "-r", type=positive_int_arg(MAX_RUNS), default=1, metavar="R",
                   help="runs per point; replication r of every point has the same seed (default 1)")
    s.add_argument("--seed", type=seed_arg, default=None,
                   help="the seed replications derive from (default: the file's, else 1)")
    s.add_argument("--duration", type=duration_arg, metavar="S", help="measured window in simulated seconds")
    s.add_argument("--warmup", type=warmup_arg, metavar="S", help="warm-up discarded before the window")
    s.add_argument("--out", type=path_arg, default=Path("sweep.csv"), metavar="FILE",
                   help="the tidy CSV (default sweep.csv); the summary goes beside it, -summary before the extension (dom0.csv: dom0-summary.csv)")
    s.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local process pool (default) or a Dask distributed cluster")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:8786); without it --executor dask starts a local cluster")
    s.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: every core); with --executor dask and no --scheduler, "
                        "the local cluster's")
    s.add_argument("--cache", type=path_arg, default=None, help=CACHE_HELP)
    s.add_argument("--no-cache", action="store_true", help="recompute every run (the cache is still written)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)
    register_plot(subparsers)


def integer_notes(vary: Sequence[str], sample: str | None) -> list[str]:
    """One line per range whose integer ends made its points integers that the range's real
    points are not (10:200:5:log runs 10, 21, 45, 95, 200, not 10, 21.1, 44.7, 94.6, 200):
    `vemu sweep` says so, since a float key (a link's gbps) would rather have the reals."""
    sampled = parse_sample(sample)[0] != "grid"
    notes = []
    for t in vary:
        try:
            ax = parse_vary(t, sampled=sampled)
        except ModelError:
            continue  # the sweep itself reports it
        if not (ax.is_range and ax.integer and ax.lo != ax.hi):
            continue
        lo = float(ax.lo)  # type: ignore[arg-type]
        if sampled:
            notes.append(f"note: --vary {ax.key}: integer ends, so its sampled values are integers; "
                         f"write {lo!r} as the low end for real values")
            continue
        reals = [_between(lo, float(ax.hi), k / (ax.n - 1), ax.log) for k in range(ax.n)]  # type: ignore[arg-type,operator]
        if any(abs(r - v) > 1e-9 * max(1.0, abs(r)) for r, (v, _) in zip(reals, ax.values)):
            notes.append(f"note: --vary {ax.key}: integer ends, so its points are integers "
                         f"({', '.join(x for _, x in ax.values)}); write {lo!r} as the low end for "
                         f"{', '.join(f'{r:.4g}' for r in reals)}")
    return notes


def cmd_sweep(a: argparse.Namespace) -> int:
    from .cli import UsageError, check_output_path, checked_cache, model_files

    varied = {t.split("=", 1)[0].strip() for t in a.vary}
    if a.spec is None:
        missing = [k for k in KINDS if getattr(a, k) is None and k not in varied]
        if missing:
            raise UsageError(f"vemu sweep: give an experiment file, or name (or --vary) the bundled {', '.join(missing)}")
    if a.replications < 1:
        raise UsageError("vemu sweep: --replications must be >= 1")
    if a.workers is not None and a.workers < 1:
        raise UsageError("vemu sweep: --workers must be >= 1")
    if a.scheduler and a.executor != "dask":
        raise UsageError("vemu sweep: --scheduler needs --executor dask")
    if a.scheduler is not None and not a.scheduler.strip():
        raise UsageError("vemu sweep: --scheduler '': give the scheduler's address (tcp://HOST:8786), or leave "
                         "--scheduler out to start a local cluster")
    if a.scheduler and a.workers is not None:
        raise UsageError("vemu sweep: --workers sets this machine's worker processes; a Dask cluster at --scheduler "
                         "has its own (dask worker --nworkers)")
    if a.sample_seed < 0:
        raise UsageError(f"vemu sweep: --sample-seed must be >= 0, got {a.sample_seed}")
    # where the tables go is checked before any run, not after the last
    for out in (a.out, summary_path(a.out)):
        check_output_path(out, what="vemu sweep", flag="--out", directory=False, inputs=[a.spec, *model_files()])
    if a.executor == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise UsageError("vemu sweep: --executor dask needs dask.distributed, which is not installed: "
                             "pip install 'vemu[dask]'") from None
        if a.scheduler:  # checked now, not only once some run is not in the cache
            from distributed.comm import get_address_host_port
            try:
                get_address_host_port(a.scheduler)
            except (ValueError, TypeError) as e:
                raise ModelError(f"--scheduler {a.scheduler}: not a Dask scheduler address (such as "
                                 f"tcp://HOST:8786): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    cache = checked_cache(a.cache, a.no_cache, what="vemu sweep")
    for note in integer_notes(a.vary, a.sample):
        print(note, file=sys.stderr)
    computed = []
    table = sweep(a.spec, host=a.host, architecture=a.architecture, workload=a.workload, vary=a.vary, sets=a.sets,
                  sample=a.sample, sample_seed=a.sample_seed, replications=a.replications, seed=a.seed,
                  duration_s=a.duration, warmup_s=a.warmup, executor=a.executor, workers=a.workers,
                  scheduler=a.scheduler, cache=cache, progress=not a.quiet and sys.stderr.isatty(), out=a.out,
                  on_result=lambda i, r: computed.append(i))
    n = len(table)
    points = n // a.replications
    print(f"wrote {a.out} ({points} points x {a.replications} replications; {len(computed)} runs computed, "
          f"{n - len(computed)} from the cache) and {summary_path(a.out)}")
    return 0


# ----------------------------------------------------------------------------- vemu plot

@dataclass
class Figure:
    """What ``vemu plot`` draws from a sweep summary: per group (a value of ``--by``, or
    one group) the points in x order, each with its summary row as floats."""

    x: str
    ys: list[str]
    lines: dict[str, list[tuple[Any, dict[str, float]]]]
    numeric: bool
    logx: bool
    title: str
    by: str | None = None  # the key whose values the lines are
    scattered: bool = False  # a sampled design: points, not lines (the other keys vary too)


def _float(v: str) -> float:
    try:
        return float(v) if v != "" else math.nan
    except ValueError:
        return math.nan


def _summary_options(prov: Mapping[str, str], path: Path | str) -> dict[str, Any]:
    """A summary's ``# options:`` line (what the sweep was run with), or a ModelError naming
    the file when it is not the JSON object vemu writes there (an edited line)."""
    try:
        options = json.loads(prov.get("options", "{}") or "{}")
    except ValueError:
        options = None
    ok = isinstance(options, dict) and all(isinstance(options.get(k, []), list)
                                           and all(isinstance(v, str) for v in options.get(k, []))
                                           for k in ("vary", "sets"))
    # the other keys the title reads: names and the sample kind as text, the window a number
    ok = ok and all(options.get(k) is None or isinstance(options[k], str) for k in (*KINDS, "sample"))
    ok = ok and all(options.get(k) is None or (isinstance(options[k], (int, float)) and not isinstance(options[k], bool))
                    for k in ("duration_s", "replications"))
    if not ok:
        raise ModelError("its '# options:' line is not the JSON object vemu writes there (edited?): mend it "
                         "or delete the line", file=str(path), key="# options")
    return options  # type: ignore[return-value]


def figure_of(path: Path | str, x: str, ys: Sequence[str], *, by: str | None = None,
              where: Sequence[str] = (), logx: bool | None = None) -> Figure:
    """Reads a sweep's summary (``path`` is the summary, or the tidy CSV beside which it
    lies) and selects what to draw: ``x`` and ``by`` are varied keys; every other varied
    key must be fixed by a ``KEY=VALUE`` in ``where`` (or take one value); ``ys`` are
    measures. ``logx`` None: log when the sweep's axis for ``x`` was a log range."""
    from .provenance import read_csv

    def read(path: Path) -> tuple[list[str], list[dict[str, str]], dict[str, str]]:
        try:
            return read_csv(path)
        except FileNotFoundError:
            raise ModelError("no such file", file=str(path)) from None
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise ModelError(f"cannot read it as a CSV: {e}", file=str(path)) from None

    path = Path(path)
    header, rows, prov = read(path)
    # a summary is known by its `table: summary` line, or, saved without its `#` lines (as
    # pandas writes it), by its point and replications columns
    summary = prov.get("table") == "summary" or ("point" in header and "replications" in header
                                                   and "replication" not in header)
    if not summary:
        if "replication" not in header:
            raise ModelError("not a vemu sweep table (no 'replication' or summary columns)", file=str(path))
        tidy, path = path, summary_path(path)
        if not path.is_file():
            raise ModelError(f"its summary {path} is missing; run the sweep again to write it", file=str(tidy))
        header, rows, prov = read(path)
    if "point" not in header or "replications" not in header:
        raise ModelError("not a vemu sweep summary (no 'point' and 'replications' columns)", file=str(path))
    keys = header[header.index("point") + 1:header.index("replications")]
    measures = [c for c in header if f"{c}_ci95" in header]
    for flag, k in (("--x", x), ("--by", by)):
        if k is not None and k not in keys:
            raise ModelError(f"{flag} {k}: not a varied key of this sweep; one of {', '.join(keys)}", file=str(path))
    if by is not None and by == x:
        raise ModelError(f"--by {by}: the same key as --x; give another varied key or none", file=str(path))
    for y in ys:
        if y not in measures:
            near = [m for m in measures if y in m or m.startswith(y.split(".")[0])][:8] or measures[:8]
            raise ModelError(f"--y {y}: not a measure of this sweep; e.g. {', '.join(near)}", file=str(path))
    if not rows:
        raise ModelError("it has no points (a header alone): run the sweep again to write it", file=str(path))
    for i, r in enumerate(rows):  # a summary cut short or edited by hand: one line, not a traceback
        if None in r or any(v is None for v in r.values()):
            raise ModelError(f"row {i + 1} has {len(r) - (None in r) - sum(v is None for v in r.values())} cells "
                             f"where the header has {len(header)}: the summary is cut short or was edited; "
                             "run the sweep again to write it", file=str(path))
        for y in ys:
            for c in (y, f"{y}_ci95"):
                v = _float(r[c])
                bad = (math.isnan(v) and r[c].strip().lower() not in ("", "nan")) or math.isinf(v) or (
                    c.endswith("_ci95") and v < 0)
                if bad:
                    raise ModelError(f"row {i + 1}, column {c}: '{r[c]}' is not a "
                                     + ("half-width (a number >= 0, or nan)" if c.endswith("_ci95")
                                        else "finite number (or nan)"), file=str(path))
    fixed: dict[str, str] = {}
    for w in where:
        k, sep, v = w.partition("=")
        k, v = k.strip(), v.strip()
        if not sep or k not in keys or k in (x, by):
            others = [q for q in keys if q not in (x, by)]
            raise ModelError(f"--where {w}: give KEY=VALUE for a varied key other than --x and --by"
                             f" ({', '.join(others) or 'there is none'})", file=str(path))
        if k in fixed:  # one value a key: a repeated key is not an OR
            raise ModelError(f"--where {k}: the key is given twice ({k}={fixed[k]}, {k}={v}); fix it to one value, "
                             f"or draw its values as lines with --by {k}", file=str(path))
        fixed[k] = v
    rows = [r for r in rows if all(_same_value(r[k], v) for k, v in fixed.items())]
    if not rows:
        raise ModelError(f"no point has {', '.join(f'{k}={v}' for k, v in fixed.items())}", file=str(path))
    options = _summary_options(prov, path)
    # a Latin-hypercube or random sample gives every point its own value of every key: its
    # points are drawn as they fell (a scatter against --x), the other keys varying too.
    # Without the options line (a summary saved without its # lines), a design where no
    # combination of the other keys comes twice is taken for a sample
    others = [k for k in keys if k not in (x, by) and k not in fixed]
    if "sample" in options:
        scattered = str(options.get("sample") or "grid") != "grid"
    else:
        combos = [tuple(r[k] for k in others) for r in rows]
        scattered = bool(others) and len(rows) > 1 and len(set(combos)) == len(combos)
    for k in keys:
        if k in (x, by) or k in fixed or scattered:
            continue
        values = list(dict.fromkeys(r[k] for r in rows))
        if len(values) > 1:
            raise ModelError(f"the sweep also varies {k} ({', '.join(values[:6])}{', ...' if len(values) > 6 else ''}):"
                             f" draw it with --by {k} or fix it with --where {k}=VALUE", file=str(path))
    numeric = all(not math.isnan(_float(r[x])) for r in rows)
    lines: dict[str, list[tuple[Any, dict[str, float]]]] = {}
    seen: set[str] = set()
    for r in rows:
        label = r[by] if by is not None else ""
        xv: Any = _float(r[x]) if numeric else r[x]
        # a point's number once (a sampled design may repeat values: two points at one x)
        if r["point"] in seen:
            raise ModelError(f"point {r['point']} is in the summary twice (edited, or two sweeps joined)",
                             file=str(path))
        seen.add(r["point"])
        lines.setdefault(label, []).append((xv, {c: _float(r[c]) for c in header if c not in keys}))
    if numeric:
        for pts in lines.values():
            pts.sort(key=lambda p: p[0])
    if logx and not numeric:  # asked for, but names are spread evenly: no scale to take the log of
        names = list(dict.fromkeys(v for pts in lines.values() for v, _ in pts))
        raise ModelError(f"--logx: {x} takes names ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''}), "
                         "not numbers; a log scale needs a numeric --x", file=str(path))
    if logx:  # asked for: a log axis cannot place x <= 0, so those points would vanish
        bad = sorted({v for pts in lines.values() for v, _ in pts if not v > 0})
        if bad:
            raise ModelError(f"--logx: a log-scale x needs {x} > 0, but it takes {', '.join(f'{v:g}' for v in bad)}"
                             f" here; leave out --logx to draw every point on a linear scale", file=str(path))
    for y in ys:  # a measure no point has (every run too short for it) would be an empty panel
        if not any(math.isfinite(p.get(y, math.nan)) for pts in lines.values() for _, p in pts):
            raise ModelError(f"--y {y}: no point has a value (a flow with no completion in any run: longer "
                             "windows, or another measure)", file=str(path))
    if logx is None:
        logx = any(str(v).split("=", 1)[0] == x and str(v).endswith(":log") for v in options.get("vary", []))
        logx = logx and numeric and all(v > 0 for pts in lines.values() for v, _ in pts)
    names = [f"{k} {options[k]}" for k in KINDS if options.get(k) and k not in (x, by)]
    names += [f"{k}={v}" for k, v in fixed.items()] + list(options.get("sets", []))
    window = f", {options['duration_s']} s windows" if options.get("duration_s") else ""
    spread = f"; {options.get('sample') or 'sampled'} sample, {', '.join(others)} varying too" if scattered and others else ""
    title = (f"{'; '.join(names) + ': ' if names else ''}{options.get('replications', '?')} replications a point"
             f"{window}; 95% CI bars{spread}")
    return Figure(x, list(ys), lines, numeric, bool(logx), title, by, scattered)


def _same_value(cell: str, want: str) -> bool:
    """A --where value matches a cell as text, or as the same number (1e3 and 1000)."""
    if cell == want:
        return True
    a, b = _float(cell), _float(want)
    return not math.isnan(a) and a == b


def register_plot(subparsers: Any) -> None:
    from .cli import path_arg

    s = subparsers.add_parser(
        "plot", help="draw a sweep's summary: a measure against a varied key, with 95%% CI bars",
        description="Draw a sweep's summary (the -summary CSV vemu sweep writes, or the tidy CSV beside it): "
                    "one panel per --y, one line per value of --by, 95% confidence-interval bars; writes PNG and SVG.",
        epilog="Example: vemu sweep -w cloud-mix --host xeon-2017 --vary architecture=xen-pv,kvm-virtio "
               "--vary exit_cycles=1e3:1e4:4:log -r 3 && vemu plot sweep.csv --x exit_cycles --y usable_fraction "
               "--by architecture")
    s.add_argument("table", type=path_arg, metavar="SWEEP.csv", help="a sweep's tidy CSV or its -summary CSV")
    s.add_argument("--x", required=True, metavar="KEY", help="the varied key along the x axis")
    s.add_argument("--y", action="append", required=True, metavar="MEASURE",
                   help="a measure column (usable_fraction, NAME.p99_us, host_cycles.exit, ...); repeatable")
    s.add_argument("--by", metavar="KEY", help="another varied key: one line per value")
    s.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a varied key drawn neither as --x nor --by; repeatable")
    s.add_argument("--logx", action=argparse.BooleanOptionalAction, default=None,
                   help="log-scale x (default: when the sweep's range for --x was :log)")
    s.add_argument("--out", type=path_arg, default=None, metavar="FIG.png",
                   help="the figure: FIG.png and FIG.svg are written; give FIG.png, FIG.svg or FIG (no other suffix) "
                        "(default: beside the table, SWEEP-X.png and SWEEP-X.svg)")
    s.set_defaults(func=cmd_plot)


FIGURE_SUFFIXES = (".png", ".svg")


def figure_paths(out: Path | str) -> tuple[Path, Path]:
    """The PNG and SVG that ``--out`` names: FIG.png, FIG.svg or FIG give FIG.png and
    FIG.svg (the suffix in any case); any other suffix is a ModelError."""
    out = Path(out)
    if out.suffix.lower() in FIGURE_SUFFIXES:
        out = out.with_suffix("")
    elif out.suffix:
        raise ModelError(f"'{out}' ends in {out.suffix}: the figure is written as PNG and SVG, so give FIG.png, "
                         "FIG.svg or FIG (both FIG.png and FIG.svg are written)", key="--out")
    return out.with_name(out.name + ".png"), out.with_name(out.name + ".svg")


def cmd_plot(a: argparse.Namespace) -> int:
    from .cli import check_output_path

    stem = Path(a.table).stem.removesuffix("-summary")
    # a suffix that is not PNG or SVG is refused before the table is read
    out, svg = figure_paths(a.out or Path(a.table).with_name(f"{stem}-{''.join(c if c.isalnum() else '_' for c in a.x)}.png"))
    fig = figure_of(a.table, a.x, a.y, by=a.by, where=a.where, logx=a.logx)
    for p in (out, svg):
        check_output_path(p, what="vemu plot", flag="--out", directory=False, inputs=[a.table])
    from .plot import sweep_figure

    sweep_figure(fig.lines, fig.x, fig.ys, out, numeric=fig.numeric, logx=fig.logx, title=fig.title, by=fig.by,
                 connect=not fig.scattered)
    print(f"wrote {out} and {svg}")
    return 0


__all__ = ["Axis", "Plan", "parse_vary", "joined_keys", "parse_sample", "design", "lhs_unit", "plan", "sweep",
           "summary", "summarize", "summary_path", "tails_of", "figure_of", "Figure", "replication_seeds", "mean_ci95", "register"]
