"""Comparing two architectures (or experiments) with paired replications.

Both run n replications; replication i of A and of B use the same seed, so each flow sees
the same arrivals in both, and its k-th request the same class, sizes and service draws at
every stage that stands in the same place of the workload (common random numbers: the
engine keys each draw by the request and the stage's tag, vemu.h's Randomness, so a change
of timing does not shift one side's draws onto other requests). The per-replication differences
d_i = B_i - A_i are then independent, and the 95% CI of the expected difference is
d̄ ± t_{0.975, n-1} s_d/√n (a paired-t interval; Law, *Simulation Modeling and Analysis*,
5th ed., §10.2.1). Under CRN the two runs of a pair are positively correlated, so
Var(d) = Var(A) + Var(B) - 2 Cov(A, B) is smaller than for independent runs, and the
interval narrower. A difference is *significant* when its interval excludes 0.

A percentile (p99, p99.9) is estimated by sectioning, as for :func:`emulator.stats.replicate`:
each side's value is the quantile of all its runs' requests together, with its interval
through the runs' shares of requests below it (:func:`emulator.stats.quantile_ci`), B - A
the difference of those, and that difference's half-width comes from the pairs'
linearised pooled quantiles (:func:`quantile_difference`: each run's share of requests
below its side's pooled value, through the quantile function's slope there; paired, they
cancel much of each other's noise); ``biased`` marks a percentile whose runs' own values sit
further from the pooled value than their half-width (runs too short).

Besides throughput and latency it compares where the host's cycles go: each category's
share of all host cycles (``host_cycles.CAT``, 0 on a side that charges none). ``--set-a``
and ``--set-b`` give one side its own overrides, so an architecture can be compared with
itself under one changed cost: what that one cost does, paired, category by category.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._core import ModelError
from .model import Experiment, as_experiment, bundled, check_count, check_level, check_seed, load_experiment
from .result import Pool, categories, dumps, tail_cdf
from .stats import (CYCLES, MIN_TAIL_REQUESTS, PERCENTILES, Interval, apart, mean_ci, missing, one_of, pooled_percentiles,
                    replication_seeds, run_measures, thin_tails)

DEFAULT_HOST = "xeon-2017"
DEFAULT_WORKLOAD = "cloud-mix"
MAX_REPLICATIONS = 100_000  # per side; more is a typo, and the seeds alone would take minutes


@dataclass
class Difference:
    """One measure: A's and B's CIs and the CI of B - A."""

    measure: str
    a: Interval
    b: Interval
    diff: Interval  # paired (CRN) or, for independent runs, the unpaired (Welch) interval
    paired: bool
    thin_tail: bool = False  # a percentile from fewer than MIN_TAIL_REQUESTS beyond it in some run
    biased: bool = False  # a percentile whose runs sit further from the pooled value than the half-width

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.diff.half_width)) and not self.diff.covers(0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "a": self.a.to_dict(), "b": self.b.to_dict(),
                "diff": self.diff.to_dict(), "paired": self.paired, "significant": self.significant,
                "thin_tail": self.thin_tail, "biased": self.biased}


def unpaired_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, level: float = 0.95) -> Interval:
    """CI of E[B] - E[A] from two independent samples: Welch's interval, standard error
    √(s_A²/n_A + s_B²/n_B) with the Welch–Satterthwaite degrees of freedom (Law, *Simulation
    Modeling and Analysis*, 5th ed., §10.2.2). The pooled two-sample t assumes equal
    variances, which two architectures rarely have: with 10 replications each and one
    variance 100 times the other it covers 93.7%, not 95%. The degrees of freedom are
    rounded down (conservative) for the integer-df t fallback."""
    from .stats import t_quantile

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        return Interval(float(np.mean(y) - np.mean(x)) if len(x) and len(y) else math.nan, math.nan, 0, math.nan, level)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    if se > 0:
        df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
        hw = t_quantile((1 + level) / 2, max(1, math.floor(df + 1e-9))) * se
    else:
        hw = 0.0
    # std: that of one unpaired difference B - A, √(s_A² + s_B²), beside a paired std of d_i
    return Interval(float(y.mean() - x.mean()), hw, min(len(x), len(y)),
                    math.sqrt(x.var(ddof=1) + y.var(ddof=1)), level)


@dataclass
class Comparison:
    a_name: str
    b_name: str
    seeds_a: list[int]
    seeds_b: list[int]
    differences: list[Difference]
    crn: bool
    a_sets: tuple[str, ...] = ()  # this side's own overrides (vemu compare --set-a), for the record
    b_sets: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()  # the overrides both sides got (vemu compare --set)
    # what each side ran: host, workload, window (an output must say what it compared)
    setting: dict[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> float:
        """The intervals' confidence level (every difference has the one compare was given)."""
        return self.differences[0].diff.level if self.differences else 0.95

    def to_dict(self) -> dict[str, Any]:
        # "seeds": A's runs' (and B's, under common random numbers); without CRN B's own are "seeds_b"
        return {"a": self.a_name, "b": self.b_name, "a_sets": list(self.a_sets), "b_sets": list(self.b_sets),
                "sets": list(self.sets)} | self.setting | {"replications": len(self.seeds_a), "crn": self.crn,
                "level": self.level, "seeds": self.seeds_a} | ({} if self.crn else {"seeds_b": self.seeds_b}) | {
                "measures": {d.measure: d.to_dict() for d in self.differences}}

    def difference(self, measure: str) -> Difference:
        for d in self.differences:
            if d.measure == measure:
                return d
        raise KeyError(measure)


def compare(a: Experiment, b: Experiment, n: int | None = None, *, seed0: int | None = None,
            workers: int | None = None, duration_s: float | None = None, warmup_s: float | None = None,
            crn: bool = True, level: float = 0.95, cache: Any = None, replications: int | None = None,
            seed: int | None = None) -> Comparison:
    """Runs A and B n times each. With ``crn`` (the default) pair i uses one seed for both
    and the difference's CI is the paired-t interval; without, B gets its own seeds and the
    CI is the two-sample interval (to show what CRN buys). ``duration_s`` and ``warmup_s``
    override each run's window; a ``warmup_s`` left None keeps the experiment's own warm-up
    (``vemu compare --duration D`` loads the experiments with D, so theirs is a tenth of D
    unless a file sets it: load them with ``duration_s=`` for the same runs). ``replications``
    and ``seed`` are other names for ``n`` and ``seed0``, as a sweep has them."""
    (n, n_name), (seed0, seed_name) = one_of(n, replications, ("n", "replications")), one_of(seed0, seed, ("seed0", "seed"))
    if n is None:
        raise ModelError("need n (or replications), an integer of at least 2", key="n")
    n = check_count(n, key=n_name, lo=2, hi=MAX_REPLICATIONS)
    a, b = as_experiment(a, key="a"), as_experiment(b, key="b")
    level = check_level(level)
    seed0 = a.seed if seed0 is None else check_seed(seed0, key=seed_name)
    seeds_a = replication_seeds(seed0, n)
    seeds_b = seeds_a if crn else replication_seeds(seed0 + 0x9E3779B9, n)
    rows, (pool_a, pool_b) = run_measures([(a, s, duration_s, warmup_s) for s in seeds_a]
                                          + [(b, s, duration_s, warmup_s) for s in seeds_b],
                                          workers=workers, groups=[0] * n + [1] * n, cache=cache)
    ra, rb = rows[:n], rows[n:]
    # every measure both sides report, then the host-cycle categories either side charged
    # (0 where a side charged none: tenant first, as every run reports it)
    keys = [k for k in ra[0] if k in rb[0] and not k.startswith(CYCLES)]
    keys += [CYCLES + cat for cat in categories([k[len(CYCLES):] for k in r if k.startswith(CYCLES)] for r in ra + rb)]
    sa = {k: np.array([r.get(k, missing(k)) for r in ra], np.float64) for k in keys}
    sb = {k: np.array([r.get(k, missing(k)) for r in rb], np.float64) for k in keys}
    thin = thin_tails(sa) | thin_tails(sb)
    # a percentile's A and B are each side's requests pooled (sectioning), and B - A the
    # difference of those, its width from the pairs' linearised pooled quantiles
    pa, biased_a = pooled_percentiles(sa, pool_a, level=level)
    pb, biased_b = pooled_percentiles(sb, pool_b, level=level)
    diffs = []
    for k in keys:
        if k.endswith(".completed") and not k.startswith(CYCLES):  # only to judge the percentiles by
            continue
        xa, xb = sa[k], sb[k]
        if crn:  # A, B and B - A over the same pairs (both finite), so that diff = B - A exactly
            both = np.isfinite(xa) & np.isfinite(xb)
            xa, xb = xa[both], xb[both]
        d = mean_ci(xb - xa, level=level) if crn else unpaired_ci(xa, xb, level=level)
        ia, ib, biased = mean_ci(xa, level=level), mean_ci(xb, level=level), False
        if k in pa and k in pb:
            name, _, suffix = k.rpartition(".")
            pooled = pb[k].mean - pa[k].mean
            biased = k in biased_a or k in biased_b or apart(d.mean, pooled, d.half_width)
            lin = quantile_difference(pool_a, pool_b, name, PERCENTILES[suffix], n, crn=crn, level=level)
            # the width from the runs' own percentiles is the fallback (no runs kept apart)
            d = lin if lin is not None else Interval(pooled, d.half_width, d.n, d.std, level)
            ia, ib = pa[k], pb[k]
        diffs.append(Difference(k, ia, ib, d, crn, k in thin, biased))
    setting = {"host": {"a": a.host.name, "b": b.host.name}, "workload": {"a": a.workload.name, "b": b.workload.name},
               "duration_s": {"a": a.duration_s if duration_s is None else duration_s,
                              "b": b.duration_s if duration_s is None else duration_s},
               "warmup_s": {"a": a.warmup_s if warmup_s is None else warmup_s,
                            "b": b.warmup_s if warmup_s is None else warmup_s}}
    for k in setting:  # one value when both sides ran the same
        if setting[k]["a"] == setting[k]["b"]:
            setting[k] = setting[k]["a"]
    return Comparison(_name(a), _name(b), seeds_a, seeds_b, diffs, crn, setting=setting)


def quantile_difference(pool_a: Pool, pool_b: Pool, name: str, q: float, n: int, *, crn: bool = True,
                        level: float = 0.95) -> Interval | None:
    """B - A for flow ``name``'s q-quantile: the difference of the two sides' pooled
    quantiles, its interval from the runs' linearised quantiles. Each side's pooled quantile
    Q moves with its runs' fractions F_i of requests at or below Q as Q + g (q - F_i), g the
    slope of its quantile function there (its pooled quantiles at q ± the fraction interval's
    half-width, as :func:`emulator.stats.quantile_ci` reads them); with common random
    numbers pair i's two terms are differenced and the pairs' t interval taken (their
    correlation is what CRN buys), without them Welch's interval of the two sides' terms.
    The difference of the runs' own percentiles, which this replaces, is each run's own
    (short-run, biased low) tail: its spread was 1.7x narrower than the pooled difference's
    and its interval covered an M/M/1 pair's p99 difference in 82% and p99.9's in 48% of 300
    sets of ten 20 ms runs at rho 0.9 (a review's measurement). None when either side kept
    fewer than 2 runs apart (part keys: A's runs 0..n-1, B's n..2n-1, as :func:`compare` adds them)."""
    qa, qb = pool_a.quantile(name, q), pool_b.quantile(name, q)
    if not (math.isfinite(qa) and math.isfinite(qb)):
        return None
    parts_a, parts_b = pool_a.parts.get(name, {}), pool_b.parts.get(name, {})
    def frac(part: Any, x_us: float) -> float:  # (bucket indices, counts, its max)
        return tail_cdf(part[0], part[1], x_us * 1e6, part[2])

    fa = np.array([frac(parts_a[i], qa) if i in parts_a else math.nan for i in range(n)])
    fb = np.array([frac(parts_b[n + i], qb) if n + i in parts_b else math.nan for i in range(n)])

    def slope(pool: Pool, f: np.ndarray) -> float:
        iv = mean_ci(f, level=level)
        h = iv.half_width if math.isfinite(iv.half_width) else 0.0
        lo, hi = max(q - h, 0.0), min(q + h, 1.0)
        return 0.0 if hi <= lo else (pool.quantile(name, hi) - pool.quantile(name, lo)) / (hi - lo)

    za, zb = slope(pool_a, fa) * (q - fa), slope(pool_b, fb) * (q - fb)
    if crn:
        both = np.isfinite(za) & np.isfinite(zb)
        if both.sum() < 2:
            return None
        iv = mean_ci(np.sort(zb[both] - za[both]), level=level)
    else:
        if np.isfinite(za).sum() < 2 or np.isfinite(zb).sum() < 2:
            return None
        iv = unpaired_ci(za[np.isfinite(za)], zb[np.isfinite(zb)], level=level)
    return Interval(qb - qa, iv.half_width, iv.n, iv.std, level)


def _name(e: Experiment) -> str:
    return e.architecture.name if e.file == "<experiment>" else f"{e.file}"


def _label(which: str, sets: Sequence[str]) -> str:
    """A side's name as the table shows it: the architecture or file, and its own --set-a/-b."""
    return which + (f" with {', '.join(sets)}" if sets else "")


def _same(x: str, y: str) -> bool:
    """Whether two A/B arguments name one experiment: one bundled name, or one file."""
    if x == y:
        return True
    px, py = Path(x), Path(y)
    return px.is_file() and py.is_file() and px.resolve() == py.resolve()


def _side(side: str, which: str, a: argparse.Namespace, own_sets: Sequence[str]) -> Experiment:
    """One side's experiment; an error in it says which side (a --set both take may fit
    only one: netback_rx_cycles is xen-pv's, not nitro's)."""
    try:
        return _load(which, a, own_sets)
    except ModelError as e:
        raise ModelError(f"{side} ({_label(which, own_sets)}): {e}") from None


def _load(which: str, a: argparse.Namespace, own_sets: Sequence[str] = ()) -> Experiment:
    kw: dict[str, Any] = {"sets": [*a.sets, *own_sets], "duration_s": a.duration, "warmup_s": a.warmup,
                          "seed": a.seed}
    if which in bundled("architecture"):
        return load_experiment(host=a.host or DEFAULT_HOST, architecture=which,
                               workload=a.workload or DEFAULT_WORKLOAD, **kw)
    if Path(which).is_file():
        return load_experiment(which, host=a.host, workload=a.workload, **kw)
    raise ModelError(f"'{which}' is neither a bundled architecture ({', '.join(bundled('architecture'))}) "
                     "nor an experiment file")


def _level(level: float) -> str:
    """0.95 as '95%', 0.999 as '99.9%'."""
    return f"{level * 100:.10g}%"


def _g(x: float) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.5g}"


def format_comparison(c: Comparison) -> str:
    out = [f"B - A with B = {_label(c.b_name, c.b_sets)}, A = {_label(c.a_name, c.a_sets)}: "
           + (f"{len(c.seeds_a)} paired replications (common random numbers), {_level(c.level)} t intervals"
              if c.crn else f"{len(c.seeds_a)} independent replications of each (no common random numbers), "
                            f"{_level(c.level)} Welch intervals")]
    if c.setting:
        def one(v: Any, fmt: str = "{}") -> str:
            return fmt.format(v) if not isinstance(v, dict) else f"A {fmt.format(v['a'])}, B {fmt.format(v['b'])}"
        both = ", ".join(f"{k} {one(c.setting[k])}" for k in ("host", "workload"))
        out.append(f"on {both}; each {one(c.setting['duration_s'], '{:g}')} s after "
                   f"{one(c.setting['warmup_s'], '{:g}')} s warm-up" + (f"; both with {' '.join(c.sets)}" if c.sets else ""))
    out.append("")
    pm = f"± {_level(c.level)}"
    out.append(f"{'measure':<28} {'A':>12} {'B':>12} {'B - A':>12} {pm:>11} {'rel':>8}  significant")
    prev = ""
    for d in c.differences:
        if d.measure.startswith(CYCLES) and not prev.startswith(CYCLES):
            out += ["", "where the host's cycles go: each category's fraction of all host cycles (they sum to 1)"]
        prev = d.measure
        rel = d.diff.mean / d.a.mean if d.a.mean not in (0.0,) and math.isfinite(d.a.mean) else math.nan
        rel_s = f"{rel:>+8.2%}" if math.isfinite(rel) else f"{'-':>8}"
        sig = ("yes" if d.significant else "no") + (" *" if d.thin_tail else "") + (" biased" if d.biased else "")
        out.append(f"{d.measure[:28]:<28} {_g(d.a.mean):>12} {_g(d.b.mean):>12} {_g(d.diff.mean):>12} "
                   f"{_g(d.diff.half_width):>11} {rel_s}  {sig}")
    if any(d.thin_tail for d in c.differences):
        out += ["", f"* some run had fewer than {MIN_TAIL_REQUESTS} requests beyond this percentile: its estimate "
                    f"is biased low and the interval covers less than {_level(c.level)}; run longer (--duration)"]
    if any(d.biased for d in c.differences):
        out += ["", "biased: a side's runs each read this percentile further from all its runs' latencies together "
                    "than the interval is wide, so a run is too short for it (a short run's tail quantile is biased "
                    "low); A and B shown are each side's runs pooled (sectioning), but give a longer --duration"]
    return "\n".join(out)


def cmd_compare(a: argparse.Namespace) -> int:
    from .cli import UsageError, checked_cache

    if not 2 <= a.replications <= MAX_REPLICATIONS:
        raise UsageError(f"vemu compare: --replications must be in [2, {MAX_REPLICATIONS}], got {a.replications}")
    if a.workers is not None and a.workers < 1:
        raise UsageError(f"vemu compare: --workers must be >= 1, got {a.workers}")
    # both loaded first: a misspelt --host is named as such, not taken for "the same"
    ea, eb = (_side(side, which, a, sets) for side, which, sets in (("A", a.a, a.sets_a), ("B", a.b, a.sets_b)))
    # the same model data after every override (overrides apply in order: 1000 then 3000 is
    # not 3000 then 1000, though the two lists sort alike) and the same window
    if ea.digest(full=True) == eb.digest(full=True):
        same = (f"{_label(a.a, a.sets_a)}" if _same(a.a, a.b) and a.sets_a == a.sets_b else
                f"{_label(a.a, a.sets_a)} and {_label(a.b, a.sets_b)} give the same model data")
        raise UsageError(f"vemu compare: A and B are the same experiment ({same}); to see what "
                         "one change does, give it to one side: --set-b KEY=VALUE (or --set-a)")
    # --no-cache: none at all here (a folder that cannot be written must not stop a comparison)
    cache = None if a.no_cache else checked_cache(a.cache, False, what="vemu compare")
    c = compare(ea, eb, a.replications, seed0=a.seed if a.seed is not None else ea.seed, workers=a.workers,
                cache=cache)
    c.a_sets, c.b_sets, c.sets = tuple(a.sets_a), tuple(a.sets_b), tuple(a.sets)
    if a.json:
        print(dumps(c.to_dict()))
    else:
        print(format_comparison(c))
    return 0


def register(subparsers: Any) -> None:
    from .cli import CACHE_HELP, duration_arg, path_arg, seed_arg, warmup_arg

    p = subparsers.add_parser("compare", help="B - A with paired replications under common random numbers")
    p.add_argument("a", metavar="A", help="bundled architecture name or experiment file")
    p.add_argument("b", metavar="B", help="bundled architecture name or experiment file")
    p.add_argument("--host", help=f"bundled host (default {DEFAULT_HOST} for architecture names)")
    p.add_argument("--workload", "-w", help=f"bundled workload (default {DEFAULT_WORKLOAD} for architecture names)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param or any key, for both; repeatable")
    p.add_argument("--set-a", dest="sets_a", action="append", default=[], metavar="KEY=VALUE",
                   help="override for A only (after --set); repeatable")
    p.add_argument("--set-b", dest="sets_b", action="append", default=[], metavar="KEY=VALUE",
                   help="override for B only (after --set); repeatable: `vemu compare kvm-virtio kvm-virtio --set-b "
                        "exit_cycles=3100` is what one cost does, paired")
    p.add_argument("--replications", "-n", type=int, default=10, help="paired replications (default 10)")
    p.add_argument("--duration", type=duration_arg, metavar="S", help="measured window per replication")
    p.add_argument("--warmup", type=warmup_arg, metavar="S", help="warm-up per replication")
    p.add_argument("--seed", type=seed_arg, help="seed0 from which the replication seeds derive (default 1)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--cache", type=path_arg, default=None, help=CACHE_HELP)
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_compare)
