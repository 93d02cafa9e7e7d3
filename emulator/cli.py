"""The ``vemu`` command line.

Exit status: 0 ok, 1 a run failed, 2 bad usage or a bad model (one line on stderr, never a
traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from ._core import VERSION as ENGINE_VERSION
from ._core import EmulatorError, ModelError
from .result import MIN_TAIL_REQUESTS, SATURATED, dumps, thin_tail  # SATURATED: the sensitivity study judges alike

DEFAULT_RESULTS = Path(__file__).resolve().parent.parent / "results"

# Modules that add a subcommand: each has register(subparsers), which adds its parser and
# sets `func` (a callable taking the parsed args and returning an exit status) as default.
PLUGINS = ("emulator.theory", "emulator.compare", "emulator.sweep", "emulator.show")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (via main)
        raise UsageError(f"{self.prog}: {message}")


def _float_arg(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: '{text}'") from None


def duration_arg(text: str) -> float:
    """``--duration``: simulated seconds, at least one picosecond (the engine's time unit)."""
    from .model import MAX_DURATION_S, MIN_DURATION_S

    v = _float_arg(text)
    if not MIN_DURATION_S <= v <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"{text}: simulated seconds in (0, {MAX_DURATION_S:g}], at least "
                                         f"{MIN_DURATION_S:g} (a picosecond, the engine's time unit)")
    return v


def warmup_arg(text: str) -> float:
    """``--warmup``: simulated seconds, 0 or more."""
    from .model import MAX_DURATION_S

    v = _float_arg(text)
    if not 0 <= v <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"{text}: simulated seconds in [0, {MAX_DURATION_S:g}]")
    return v


def seed_arg(text: str) -> int:
    """``--seed``: an integer in [0, 2**64)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
    if not 0 <= v < 2**64:
        raise argparse.ArgumentTypeError(f"{text}: an integer in [0, 2**64)")
    return v


def positive_int_arg(hi: int) -> Any:
    """An argparse type: an integer in [1, hi]."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
        if not 1 <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text}: an integer in [1, {hi}]")
        return v
    return parse


def warmup_or_auto_arg(text: str) -> float | str:
    """``vemu run --warmup``: simulated seconds, or ``auto`` (MSER-5 on a pilot run)."""
    return "auto" if text == "auto" else warmup_arg(text)


def add_run_options(p: argparse.ArgumentParser, *, auto_warmup: bool = False) -> None:
    """The options every command that runs one experiment shares: overrides, window, seed.
    The numbers are checked as they are parsed, so an error names the flag (not the file)."""
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (NAME=VALUE) or any key (architecture.reserve.cores=4; a '*' stands "
                        "for every key or list item: 'architecture.paths.*.stages.*.batch=1'); repeatable")
    p.add_argument("--duration", type=duration_arg, metavar="S", help="measured window in simulated seconds")
    if auto_warmup:
        p.add_argument("--warmup", type=warmup_or_auto_arg, metavar="S|auto",
                       help="warm-up discarded before the window; 'auto': chosen by MSER-5 on a pilot run from "
                            "empty as long as the default warm-up and the window together")
    else:
        p.add_argument("--warmup", type=warmup_arg, metavar="S", help="warm-up discarded before the window")
    p.add_argument("--seed", type=seed_arg, help="random seed (default: the file's, else 1)")


CACHE_HELP = ("cache folder (default: $VEMU_CACHE, else .vemu-cache beside the emulator package, i.e. in the "
              "checkout vemu was installed from with pip -e, whatever the current folder)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vemu", description="Emulate where a server's cycles go under virtualization.")
    p.add_argument("--version", action="version", version=f"vemu {__version__} (engine {ENGINE_VERSION})")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="run one experiment")
    r.add_argument("spec", nargs="?", help="experiment file (TOML); optional when --host/--architecture/--workload name bundled models")
    r.add_argument("--host", help="bundled host (replaces the file's)")
    r.add_argument("--architecture", "-a", help="bundled architecture (replaces the file's)")
    r.add_argument("--workload", "-w", help="bundled workload (replaces the file's)")
    add_run_options(r, auto_warmup=True)
    r.add_argument("--replications", "-n", type=positive_int_arg(MAX_RUN_REPLICATIONS), default=None, metavar="N",
                   help="N independent replications (seeds derived from --seed): each measure's mean and 95%% t "
                        "interval")
    r.add_argument("--batches", type=positive_int_arg(MAX_BATCHES), default=None, metavar="B",
                   help="one long run cut into B batches: each measure's batch-means 95%% interval, and whether "
                        "the batches are too short (their means correlated)")
    r.add_argument("--workers", type=positive_int_arg(1024), default=None,
                   help="worker processes for --replications (default: every core)")
    r.add_argument("--cache", type=path_arg, default=None,
                   help="with --replications: " + CACHE_HELP + " (each replication is kept as it finishes)")
    r.add_argument("--no-cache", action="store_true", help="with --replications: neither read nor write the cache")
    r.add_argument("--json", action="store_true", help="print the result as one JSON object")
    r.add_argument("--stages", action="store_true", help="also print the per-stage table")
    r.add_argument("--trace", type=int, default=0, metavar="N",
                   help="also print the path of the requests numbered below N, stage by stage, and of the "
                        "work each forks (for teaching; a forked request is numbered when it is set off, from the "
                        "run's one counter, so its number may be far above N)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    sub.add_parser("list", help="list the bundled hosts, architectures and workloads")

    rp = sub.add_parser("reproduce", help="regenerate the headline results and figures")
    rp.add_argument("--quick", action="store_true", help="shorter runs (same ordering, wider noise)")
    rp.add_argument("--out", type=path_arg, default=DEFAULT_RESULTS, help=f"output folder (default {DEFAULT_RESULTS})")
    rp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    rp.add_argument("--workers", type=int, default=None, help="worker processes (default: every core)")
    rp.add_argument("--only", action="append", default=[], metavar="STUDY",
                    help="run only this study (headline, validation, sensitivity, figures); repeatable")
    rp.add_argument("--no-cache", action="store_true", help="recompute every run (the cache is still written)")
    rp.add_argument("--cache", type=path_arg, default=None, help=CACHE_HELP)
    b = sub.add_parser("bench", help="engine speed: tandem-3 in vemu, hand-written C and SimPy")
    b.add_argument("--requests", type=int, default=10_000_000, help="tandem-3 requests per run (default 10M)")
    b.add_argument("--repeats", type=int, default=3, help="runs per tool; the median is kept (default 3)")
    b.add_argument("--out", type=path_arg, default=None, help="also write the table as CSV (e.g. results/bench.csv)")
    import importlib

    for mod in PLUGINS:
        importlib.import_module(mod).register(sub)
    return p


def _progress(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=1000, unit="‰", leave=False, mininterval=0.5, delay=2.0, file=sys.stderr)

    def update(frac: float) -> None:
        bar.update(int(frac * 1000) - bar.n)

    update.close = bar.close  # type: ignore[attr-defined]
    return update


def cmd_run(a: argparse.Namespace) -> int:
    from .model import load_experiment
    from .simulation import Simulation

    if a.spec is None and not (a.host and a.architecture and a.workload):
        raise UsageError("vemu run: give an experiment file, or all of --host, --architecture and --workload")
    if not 0 <= a.trace <= 10_000:
        raise UsageError("vemu run: --trace must be between 0 and 10000 requests")
    if a.replications is not None and a.batches is not None:
        raise UsageError("vemu run: --replications and --batches are two ways to an interval; give one")
    many = a.replications is not None or a.batches is not None
    if many and (a.trace or a.stages):
        raise UsageError("vemu run: --trace and --stages show one run; drop them with --replications or --batches")
    if a.replications == 1 or a.batches == 1:
        raise UsageError("vemu run: an interval needs at least 2 replications or batches")
    if a.replications is None:
        flags = [f for f, on in (("--cache", a.cache is not None), ("--no-cache", a.no_cache),
                                 ("--workers", a.workers is not None)) if on]
        if flags:
            raise UsageError(f"vemu run: {' and '.join(flags)} only appl{'ies' if len(flags) == 1 else 'y'} with "
                             "--replications N; "
                             "one run (or --batches) is never cached and runs in this process")
    auto = a.warmup == "auto"
    exp = load_experiment(a.spec, host=a.host, architecture=a.architecture, workload=a.workload, sets=a.sets,
                          duration_s=a.duration, warmup_s=None if auto else a.warmup, seed=a.seed)
    choice = None
    if auto:
        from dataclasses import replace

        from .stats import choose_warmup

        choice = choose_warmup(exp)
        if not choice.converged:
            print(f"vemu run: warning: {_warmup_note(choice)}", file=sys.stderr)
        exp = replace(exp, warmup_s=choice.warmup_s)
    if many:
        return _run_intervals(a, exp, choice)
    prog = _progress(a.quiet or a.json)
    try:
        res = Simulation(exp, trace_requests=a.trace).run(progress=prog)
    finally:
        if prog is not None:
            prog.close()
    if a.json:
        d = res.to_dict()
        if choice is not None:
            d["warmup_choice"] = _warmup_dict(choice)
        if a.stages:
            d["stages"] = res.stages()
        if a.trace:
            d["trace"] = trace_records(res)
            d["trace_lost"] = int(res.trace_lost)
        print(dumps(d))
    else:
        if choice is not None:
            print(_warmup_note(choice))
        print(format_result(res.to_dict(), res.stages() if a.stages else None, throttle_hold(res)))
        if a.trace:
            print(format_trace(res))
    return 0


MAX_RUN_REPLICATIONS = 100_000
MAX_BATCHES = 1_000
WINDOWS_PER_BATCH = 10


def _warmup_dict(w: Any) -> dict[str, Any]:
    return {"rule": "MSER-5", "warmup_s": w.warmup_s, "measure": w.measure, "window_s": w.window_s,
            "windows": len(w.series), "converged": w.converged}


def _warmup_note(w: Any) -> str:
    pilot = len(w.series) * w.window_s
    note = (f"warm-up {w.warmup_s:.6g} s, chosen by MSER-5 on {w.measure} over a {pilot:.6g} s pilot run from empty "
            f"({len(w.series)} windows)")
    if not w.converged:
        why = (f"only {w.judged} of its windows had a request complete, too few to judge" if w.judged < 10 else
               "it reached its limit (half the pilot), so the run may still be in its transient")
        note += f"; {why}: give a longer --duration or a fixed --warmup"
    elif w.warmup_s == 0:
        # a run from empty has a transient; near saturation MSER-5 often reads it as noise
        # (at rho 0.9 it cut nothing in 58% of 5 ms pilots, and the mean read 2% low)
        note += ("; it cut nothing, although the pilot started empty: near saturation MSER-5 can take the "
                 "transient for noise, so compare with a fixed --warmup")
    return note


def _run_intervals(a: argparse.Namespace, exp: Any, choice: Any) -> int:
    """``vemu run --replications N`` or ``--batches B``: every measure's 95% interval."""
    from . import stats
    from .compare import _g

    head = {"architecture": exp.architecture.name, "host": exp.host.name, "workload": exp.workload.name,
            "duration_s": exp.duration_s, "warmup_s": exp.warmup_s}
    if choice is not None:
        head["warmup_choice"] = _warmup_dict(choice)
    if a.replications is not None:
        # --no-cache: none at all here (a folder that cannot be written must not stop a run)
        cache = None if a.no_cache else checked_cache(a.cache, False, what="vemu run")
        reps = stats.replicate(exp, a.replications, workers=a.workers, cache=cache)
        thin = reps.thin_tails
        rows = [(k, iv, None, k in thin, False, k in reps.biased) for k, iv in reps.intervals.items()
                if not k.endswith(".completed")]
        # "seed" as a single run's --json has it (the seed given; each run's own are "seeds")
        d = head | {"method": "replications", "seed": exp.seed, "seed0": exp.seed} | reps.to_dict()
        title = (f"{a.replications} independent replications (seeds derived from {exp.seed}), each "
                 f"{exp.duration_s:g} s measured after {exp.warmup_s:g} s warm-up")
    else:
        bms = stats.long_run(exp, n_batches=a.batches, windows_per_batch=WINDOWS_PER_BATCH)
        rows = [(k, bm.interval, bm.lag1, bm.thin_tail, bm.correlated, bm.biased) for k, bm in bms.items()]
        d = head | {"method": "batch means", "seed": exp.seed, "batches": a.batches,
                    "measures": {k: bm.to_dict() for k, bm in bms.items()}}
        title = (f"one run of {exp.duration_s:g} s after {exp.warmup_s:g} s warm-up (seed {exp.seed}), "
                 f"{a.batches} batches")
    if a.json:
        print(dumps(d))
        return 0
    out = [f"{head['architecture']} on {head['host']} running {head['workload']}: {title}; 95% t intervals"]
    if choice is not None:
        out.append(_warmup_note(choice))
    batch = a.batches is not None

    def width(iv: Any) -> str:  # a percentile's interval is not symmetric about it: its two sides
        return (_g(iv.half_width) if iv.low is None or not math.isfinite(iv.half_width)
                else f"-{iv.mean - iv.lo:.3g}/+{iv.hi - iv.mean:.3g}")

    w = max([11] + [len(width(r[1])) for r in rows])
    out += ["", f"{'measure':<34} {'mean':>12} {'± 95%':>{w}} {'n':>6}" + (f" {'lag-1':>6}" if batch else "")]
    for k, iv, lag1, thin, correlated, biased in rows:
        flags = (" *" if thin else "") + (" correlated" if correlated else "") + (" biased" if biased else "")
        lag = f" {lag1:>6.2f}" if batch else ""
        out.append(f"{k[:34]:<34} {_g(iv.mean):>12} {width(iv):>{w}} {iv.n:>6}{lag}{flags}")
    unit = "batch" if batch else "run"
    if any(r[3] for r in rows):
        out += ["", f"* some {unit} had fewer than {MIN_TAIL_REQUESTS} requests beyond this "
                    "percentile: its estimate is biased low and the interval covers less than 95%; run longer "
                    "(--duration)"]
    if any(r[4] for r in rows):
        out += ["", "correlated: the batch means' lag-1 autocorrelation fails a 5% test of independence, so the "
                    "interval is too narrow; use fewer batches or a longer --duration"]
    if any(r[5] for r in rows):
        whole = "the whole run's" if batch else "all the runs' latencies together"
        out += ["", f"biased: each {unit}'s own percentile sits further from {whole} than the interval is wide, "
                    f"so a {unit} is too short for this percentile (a short stretch's tail quantile is biased "
                    f"low); the estimate shown is {whole} (sectioning), but give a longer --duration"]
    from .stats import MIN_LAG1_BATCHES

    if batch and a.batches < MIN_LAG1_BATCHES:
        out += ["", f"lag-1: with fewer than {MIN_LAG1_BATCHES} batches their independence cannot be tested "
                    "(no `correlated` flag is possible); use more batches to judge it"]
    if any(r[1].n < (a.batches or a.replications) for r in rows):
        out += ["", "n below the count asked for: some batches or runs had no value for that measure "
                    "(no request completed); the interval rests on the others"]
    print("\n".join(out))
    return 0


def trace_records(res: Any) -> list[dict[str, Any]]:
    """The trace as ``vemu run --json --trace N`` gives it: one record per stage a traced
    request finished (or was dropped at), in the order they happened; times in µs on the run's
    clock (from its start, warm-up included)."""
    from ._core import NO_PARENT

    info, flows = res.compiled.stages, res.compiled.flows
    cpu = {r.name for r in res.compiled.resources if r.kind == "cpu"}
    out = []
    for rec in res.trace if res.trace is not None else ():
        g = info[int(rec["stage"])]
        parent = int(rec["parent"])
        out.append({
            "request": int(rec["request"]), "parent": None if parent == NO_PARENT else parent,
            "flow": flows[int(rec["flow"])], "class": g.request_class, "stage": g.name, "resource": g.resource,
            # a link's or a device's time is not cycles of any category (as the text trace's '-')
            "account": g.category if g.resource in cpu else None, "dropped": bool(rec["dropped"]),
            "batch": int(rec["batch"]),
            **{f"{k}_us": int(rec[k]) / 1e6 for k in ("enter", "start", "end", "leave")},
            "woke_us": int(rec["wake"]) / 1e6, "preempted_us": int(rec["preempted"]) / 1e6,
        })
    return out


def format_trace(res: Any) -> str:
    """Each traced request's path: every stage with its resource, category, the time spent
    waiting, in service and in a pure delay (microseconds from the request's birth)."""
    from ._core import NO_PARENT

    tr, info, flows = res.trace, res.compiled.stages, res.compiled.flows
    cpu = {r.name for r in res.compiled.resources if r.kind == "cpu"}
    out = [f"\nthe first requests, stage by stage (times in µs; t0 = the request's first stage, or for "
           f"one forked, that of the request that forked it"
           + (f"; {res.trace_lost} stage records not kept: the trace buffer was full" if res.trace_lost else "")
           + ")"]
    if tr is None or len(tr) == 0:
        return out[0] + "\n  (no request finished a stage during the run)"
    ends = {first + n - 1 for first, n, *_ in res.compiled.spec.classes}  # each class's last stage
    # the resource column as wide as its longest name (a tenant's vcpu@victim whole)
    won = max([10] + [len(str(info[int(rec["stage"])].resource or "-")) for rec in tr])
    by_req: dict[int, list[Any]] = {}
    for rec in tr:
        by_req.setdefault(int(rec["request"]), []).append(rec)
    def after_parent(rid: int) -> tuple[int, int]:  # a detached request right after the one that forked it
        parent = int(by_req[rid][0]["parent"])
        return (parent if parent != NO_PARENT else rid, rid)

    t0s: dict[int, int] = {}
    for rid in sorted(by_req, key=after_parent):
        recs = by_req[rid]
        parent = int(recs[0]["parent"])
        t0 = t0s.get(parent, int(recs[0]["enter"]))  # a detached request: on its parent's clock
        t0s[rid] = t0
        g0 = info[int(recs[0]["stage"])]
        origin = f"  (forked by request {parent})" if parent != NO_PARENT else ""
        out.append(f"request {rid}  flow {flows[int(recs[0]['flow'])]}  class {g0.request_class}{origin}")
        out.append(f"  {'t0+':>9} {'wait':>8} {'service':>9} {'delay':>8}  {'on':<{won}} {'account':<10} stage")
        for rec in recs:
            g = info[int(rec["stage"])]
            enter, start, end, leave = (int(rec[k]) for k in ("enter", "start", "end", "leave"))
            held = int(rec["preempted"])  # suspended within start..end: wait, not service
            note = "  DROPPED (queue full)" if rec["dropped"] else (f"  (batch of {rec['batch']})" if rec["batch"] > 1 else "")
            if rec["wake"]:
                note += f"  ({int(rec['wake']) / 1e6:.3f} of the wait: the core waking)"
            if held:
                note += f"  ({held / 1e6:.3f} of the wait: preempted)"
            out.append(f"  {(enter - t0) / 1e6:>9.3f} {(start - enter + held) / 1e6:>8.3f} {(end - start - held) / 1e6:>9.3f} "
                       f"{(leave - end) / 1e6:>8.3f}  {str(g.resource or '-'):<{won}} "
                       f"{(g.category if g.resource in cpu else '-')[:10]:<10} {g.name}{note}")
        last, born = int(recs[-1]["leave"]), int(recs[0]["enter"])
        if not recs[-1]["dropped"] and int(recs[-1]["stage"]) not in ends:
            lost = " (or its later records beyond the trace's capacity)" if res.trace_lost else ""
            out.append(f"  {'':>9} unfinished at the end of the run{lost}: {len(recs)} stage{'s' * (len(recs) != 1)} done by "
                       f"{(last - t0) / 1e6:.3f}")
        elif born != t0:
            out.append(f"  {'':>9} done at {(last - t0) / 1e6:.3f}, {(last - born) / 1e6:.3f} µs after the fork, "
                       f"in {len(recs)} stages")
        else:
            out.append(f"  {'':>9} total {(last - t0) / 1e6:.3f} µs in {len(recs)} stages")
    return "\n".join(out)


def check_output_path(path: Path | str, *, what: str, flag: str, directory: bool,
                      inputs: Sequence[Path | str | None] = ()) -> None:
    """Refuses, before any run, an output path that cannot be written: empty, the wrong
    kind (a file where a folder goes or the reverse), under something that is not a
    writable folder, or a name the file system refuses (too long, with the temporary name
    a result is first written under), or one of the command's ``inputs`` (a sweep's
    experiment file, a plot's table: a result written over it would destroy what made it).
    Missing folders are fine (they are made)."""
    try:
        _check_output_path(str(path), what=what, flag=flag, directory=directory)
        for src in inputs:
            if src is not None and _same_file(path, src):
                raise UsageError(f"{what}: {flag} {path}: is {src}, an input of this command; give another path")
    except OSError as e:  # from probing the path itself: a name too long, say
        raise UsageError(f"{what}: {flag} {path}: {(e.strerror or str(e)).lower()}") from None


def _same_file(a: Path | str, b: Path | str) -> bool:
    """Whether two paths name one file (through links; both must exist to be one)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def model_files() -> list[Path]:
    """Every file of the model tree (the bundled models, sources.toml, sensitivity.toml):
    inputs no result may be written over."""
    from .model import MODELS_DIR

    return sorted(p for p in MODELS_DIR.rglob("*.toml") if p.is_file())


def _check_output_path(text: str, *, what: str, flag: str, directory: bool) -> None:
    if not text.strip() or (not directory and Path(text).name in ("", ".", "..")):
        raise UsageError(f"{what}: {flag} '{text}': give a {'folder' if directory else 'file'} path")
    p = Path(text)
    if p.is_symlink():  # written through (provenance.atomic_write_many): check where it leads
        try:
            p = p.resolve(strict=False)
        except (RuntimeError, OSError):  # a loop of links
            raise UsageError(f"{what}: {flag} {text}: a symbolic link that leads nowhere (a loop)") from None
    if p.exists():
        if directory and not p.is_dir():
            raise UsageError(f"{what}: {flag} {text}: exists and is not a folder")
        if not directory and p.is_dir():
            raise UsageError(f"{what}: {flag} {text}: is a folder; give a file path")
        if not directory and not p.is_file():  # a device, FIFO or socket: never replaced by a result
            raise UsageError(f"{what}: {flag} {text}: exists and is not a regular file; give a file path")
    parent = p if directory and p.exists() else p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what}: {flag} {text}: {parent} is not a folder")
    import tempfile

    try:  # the one sure test of writability (permissions, read-only or virtual file systems),
        # a file under the temporary name provenance.atomic_write_many gives it first
        named = {} if directory else {"prefix": f".{p.name}.", "suffix": ".tmp"}
        with tempfile.NamedTemporaryFile(dir=parent, **named):
            pass
    except OSError as e:
        raise UsageError(f"{what}: {flag} {text}: cannot write in {parent}: {e.strerror or e}") from None


def checked_cache(folder: Path | None, no_cache: bool, *, what: str) -> Any:
    """The runner.Cache a command uses (``--cache``, else $VEMU_CACHE, else .vemu-cache),
    its folder checked before any run: a cache that cannot be written would fail only
    after the first run finished, and lose it."""
    from .runner import DEFAULT_CACHE, Cache

    if folder is not None:
        flag = "--cache"
    elif "VEMU_CACHE" in os.environ:
        flag = "$VEMU_CACHE"
        if not os.environ["VEMU_CACHE"].strip():
            raise UsageError(f"{what}: $VEMU_CACHE is set but empty: give the cache's folder, or unset it for "
                             "the default (.vemu-cache beside the package)")
    else:
        flag = "the default cache"
    check_output_path(folder or DEFAULT_CACHE, what=what, flag=flag, directory=True)
    return Cache(folder or DEFAULT_CACHE, read=not no_cache)


def path_arg(text: str) -> Path:
    """An argparse type for an output path: not empty (Path('') would be the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def throttle_hold(res: Any) -> str | None:
    """Where a throttled stage holds the requests: the throttled stage (all of its
    classes' passes together) at which the most requests wait on average (by Little's law,
    wait summed over the window / window), when that is most of the waiting on its
    resource; None otherwise. A throttle serves a batch per gap, so a flow held there piles
    up on a resource that is itself mostly idle (one interrupt vector for a whole guest)."""
    spec, st = res.compiled.spec, res.stats
    window_ps = res.duration_s * 1e12
    if window_ps <= 0:
        return None
    per: dict[str, dict[str, Any]] = {}
    on_res: dict[str, float] = {}
    for i, g in enumerate(res.compiled.stages):
        q = spec.stages[i][0]
        if g.resource is None or q < 0:
            continue
        waiting = float(st["stage_wait_sum"][i]) / window_ps
        on_res[g.resource] = on_res.get(g.resource, 0.0) + waiting
        _ri, _prio, cap, gap, *_ = spec.qclasses[q]
        if gap <= 0:
            continue
        e = per.setdefault(g.where, {"name": g.name, "resource": g.resource, "waiting": 0.0, "gap_us": gap / 1e6,
                                     "cap": cap, "done": 0, "services": 0})
        e["waiting"] += waiting
        e["done"] += int(st["stage_completed"][i])
        e["services"] += int(st["stage_served"][i])
    if not per:
        return None
    where, e = max(per.items(), key=lambda kv: kv[1]["waiting"])
    if e["waiting"] < 1 or e["waiting"] < 0.5 * on_res[e["resource"]]:
        return None
    batch = f"{e['done'] / e['services']:.3g} of at most {e['cap']} per service" if e["services"] else "no service"
    return (f"held at a throttle: {e['waiting']:.3g} requests wait on average at '{e['name']}' "
            f"({where.rpartition('/')[2]}, one service per {e['gap_us']:g} us, {batch}), most of the waiting on "
            f"{e['resource']}: the throttle, not the resource's speed, sets the throughput there")


STAGE_NAME_MAX = 72  # the widest stage name --stages prints whole


def format_result(d: dict[str, Any], stages: list[dict[str, Any]] | None = None, hold: str | None = None) -> str:
    out = []
    out.append(f"{d['architecture']} on {d['host']} running {d['workload']}   "
               f"(seed {d['seed']}, {d['duration_s']:g} s measured after {d['warmup_s']:g} s warm-up)")
    out.append("")
    out.append(f"usable fraction  {d['usable_fraction']:.4f}   (host cycles doing tenant work)")
    rv = d["reserve"]
    out.append(f"sold to tenants  {rv['vcpu_share']:.1%} of threads, {rv['memory_share']:.1%} of memory "
               f"(reserve: {rv['cores']} cores, {rv['memory_gib']:g} GiB)")
    out.append("")
    out.append("host cycles by category")
    for cat, frac in d["host_cycles"].items():
        bar = "#" * int(round(frac * 50))
        out.append(f"  {cat:<14} {frac:7.2%}  {bar}")
    out.append("")
    out.append(f"{'flow':<16} {'done/s':>12} {'dropped':>8} {'mean us':>10} {'p50':>9}  {'p99':>9}  {'p99.9':>9} ")
    thin = False
    for name, f in d["flows"].items():
        lat = f["latency_us"]
        # a percentile resting on too few requests beyond it is marked (one that is missing is not)
        cells = [_n(lat[k], 9) + ("*" if k in f["thin_tail"] and lat[k] == lat[k] else " ")
                 for k in ("p50", "p99", "p999")]
        thin |= any(c.endswith("*") for c in cells)
        out.append(f"{name:<16} {f['throughput_per_s']:>12.5g} {f['dropped']:>8} {_n(lat['mean'])} {' '.join(cells)}")
        for cname, clat in f.get("class_latency_us", {}).items():  # a flow of several classes: each one's
            n = f["classes"][cname]
            cells = [_n(clat[k], 9) + ("*" if thin_tail(n, q) and clat[k] == clat[k] else " ")
                     for k, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))]
            thin |= any(c.endswith("*") for c in cells)
            label = f"  {cname}"
            out.append(f"{label:<16} {n / d['duration_s']:>12.5g} {'':>8} {_n(clat['mean'])} {' '.join(cells)}")
    if thin:
        out.append(f"* fewer than {MIN_TAIL_REQUESTS} requests beyond this percentile in the window: biased low; "
                   "run longer (--duration)")
    for name, f in d["flows"].items():
        off = little_gap(f)
        if off is not None and abs(off) > LITTLE_TOLERANCE:
            out.append(f"! {name}: Little's law is off by {off:+.0%} (done/s x mean = "
                       f"{f['throughput_per_s'] * f['latency_us']['mean'] * 1e-6:.4g} in flight, measured "
                       f"{f['mean_in_flight']:.4g}): the window is not much longer than a request's time in the "
                       "system, so requests straddling its edges skew every figure; run longer (--duration)")
    out.append("")
    sleeps = any("wakeups" in r for r in d["resources"].values())  # the host has idle states
    preempts = any("preemptions" in r for r in d["resources"].values())  # a stage preempts

    def per_s(r: dict[str, Any], key: str, shown: bool) -> str:
        return "" if not shown else f" {r[key] / d['duration_s']:>11.5g}" if key in r else f" {'-':>11}"

    out.append(f"{'resource':<14} {'kind':<7} {'units':>6} {'util':>7} {'mean queue':>11} {'dropped':>8}"
               + (f" {'wake-ups/s':>11}" if sleeps else "") + (f" {'preempts/s':>11}" if preempts else ""))
    for name, r in d["resources"].items():
        host = "" if r["on_host"] or r["kind"] != "cpu" else " (off-host)"
        out.append(f"{name:<14} {r['kind']:<7} {r['units']:>6} {r['utilization']:>7.1%} {r['mean_queue']:>11.3g} "
                   f"{r['dropped']:>8}{per_s(r, 'wakeups', sleeps)}{per_s(r, 'preemptions', preempts)}{host}")
    for name, r in d["resources"].items():  # which state the wake-ups left (the host's idle states)
        by = r.get("wakeups_by_state")
        if by and r["wakeups"]:
            out.append(f"{name} woke from: " + ", ".join(f"{st} {n / r['wakeups']:.1%}" for st, n in by.items())
                       + f" of {r['wakeups']:,} wake-ups")
    out.append(_bound(d["resources"], closed=any(f.get("closed") and not f["background"] for f in d["flows"].values())))
    if hold is not None and not out[-1].startswith("bound by"):
        out.append(hold)
    if stages:
        # a column for the part of the wait spent suspended, where a stage was preempted
        held = any(s.get("mean_preempted_us", 0) > 0 for s in stages if s["completed"])
        won = max([8] + [len(str(s["resource"] or "-")) for s in stages if s["completed"]])  # vcpu@victim whole

        def label(s: dict[str, Any]) -> str:  # each pass of a stage after the first says which
            return s["stage"] if s.get("visit", 1) == 1 else f"{s['stage']} #{s['visit']}"

        # the stage's name whole (they tell the interrupt stages apart), up to a limit
        wname = min(STAGE_NAME_MAX, max([5] + [len(label(s)) for s in stages if s["completed"]]))
        out.append("")
        out.append(f"{'flow/class':<22} {'step':<10} {'stage':<{wname}} {'on':<{won}} {'account':<10} {'wait us':>9} "
                   + (f"{'suspended':>9} " if held else "") + f"{'svc us':>9} {'delay us':>9} {'batch':>6}")
        repeats = False
        for s in stages:
            if not s["completed"]:
                continue
            # each pass of a stage a request makes more than once (a step's `count`, a path
            # walked twice) is a row: its later passes wait differently (the first showed
            # alone, and the rows summed short of the latency)
            name = label(s)
            if len(name) > wname:  # cut inside the name, keeping a pass's '#k'
                tail = "" if s.get("visit", 1) == 1 else f" #{s['visit']}"
                name = s["stage"][:wname - len(tail) - 1] + "~" + tail
            repeats |= s.get("visit", 1) > 1
            # cycles are charged to an account on a cpu only: a link's or a disk's busy time is no host cycle
            out.append(f"{(s['flow'] + '/' + s['class'])[:22]:<22} {s['step'][:10]:<10} {name:<{wname}} "
                       f"{str(s['resource'] or '-'):<{won}} {(s['account'] or '-')[:10]:<10} "
                       f"{_n(s['mean_wait_us'], 9)} "
                       + (f"{_n(s.get('mean_preempted_us', 0.0), 9)} " if held else "")
                       + f"{_n(s['mean_service_us'], 9)} {_n(s['delay_us'], 9)} "
                       f"{_n(s['completed'] / s['services'] if s['services'] else math.nan, 6)}")
        if repeats:
            out.append("#k: the stage's k-th pass by a request of its class (a step's count, or a path walked "
                       "twice).")
        out.append("batch: requests per service begun at the stage. A batch that gathers several classes from "
                   "one queue counts as a service of the class whose request led it, so one class's ratio can "
                   "pass the stage's cap while the queue's does not; services that straddle the window's edges "
                   "move a ratio off whole numbers.")
    out.append("")
    out.append(f"{d['events']:,} events in {d['wall_s']:.2f} s wall")
    return "\n".join(out)


# Little's law (mean in flight = throughput x mean time in the system) holds over any long
# window; on the bundled runs it holds to 0.1%. Off by more than this, the window is short
# against the requests' own time (a 10 ms window of 6 ms requests was off by 50%).
LITTLE_TOLERANCE = 0.05


def little_gap(f: dict[str, Any]) -> float | None:
    """(throughput x mean latency - mean in flight) / mean in flight for a flow's requests,
    or None where it says nothing (a background flow, no completion, under one in flight, or
    drops: a dropped request was in flight but has no latency, so the law cannot close)."""
    lat = f["latency_us"]["mean"]
    if f.get("background") or not f["completed"] or lat != lat or f["mean_in_flight"] < 1 or f["dropped"]:
        return None
    return f["throughput_per_s"] * lat * 1e-6 / f["mean_in_flight"] - 1


def _pct(u: float) -> str:
    """A utilization as the table prints it; one that rounds up to the threshold without
    reaching it gets a second decimal (97.96% is not 98.0%)."""
    return f"{u:.1%}" if u >= SATURATED or round(u * 1000) < SATURATED * 1000 else f"{math.floor(u * 10000) / 100:.2f}%"


def _bound(resources: dict[str, dict[str, Any]], *, closed: bool = False) -> str:
    """One line saying what sets the throughput: the saturated resources, busiest first, or
    that none is (the offered load does), with the busiest resource for reference. With none
    saturated in a closed loop (``closed``: an open flow's queues are its arrivals' chance,
    and its offered load does set its throughput), resources where more requests wait on
    average than they have units are named:
    work that arrives in bursts (an interrupt window's packets) leaves them idle between
    bursts, but a closed loop's requests pile up there (emulated on xeon-2023: vCPUs 95.7%
    busy with 589 waiting read as "the offered load sets the throughput")."""
    ranked = sorted(((n, r) for n, r in resources.items() if math.isfinite(r["utilization"])),
                    key=lambda kv: -kv[1]["utilization"])
    if not ranked:
        return "no resources"
    full = [(n, r) for n, r in ranked if r["utilization"] >= SATURATED]
    if not full:
        piled = [(n, r) for n, r in ranked if closed and r["utilization"] > 0 and r["mean_queue"] >= max(1, r["units"])]
        if piled:
            return ("no resource saturated, but requests pile up at " + ", ".join(
                f"{n} ({_pct(r['utilization'])} busy, {r['mean_queue']:.3g} waiting on average for its "
                f"{r['units']} unit{'s' if r['units'] != 1 else ''})" for n, r in piled)
                + ": busy in bursts, idle between them, they set the throughput")
        n, r = ranked[0]
        return f"no resource saturated (busiest: {n} at {_pct(r['utilization'])}): the offered load sets the throughput"
    rest = [(n, r) for n, r in ranked if r["utilization"] < SATURATED]
    what = ", ".join(f"{n} ({_pct(r['utilization'])} busy, {r['mean_queue']:.3g} waiting on average)" for n, r in full)
    nxt = f"; next busiest: {rest[0][0]} at {_pct(rest[0][1]['utilization'])}" if rest else ""
    return f"bound by {what}{nxt}"


def _n(x: float, w: int = 10) -> str:
    return f"{'-':>{w}}" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:>{w}.4g}"


def cmd_list(a: argparse.Namespace) -> int:
    from .model import bundled, load

    for kind in ("host", "architecture", "workload"):
        print(f"{kind}s:")
        for name in bundled(kind):
            try:
                m = load(kind, name)
                print(f"  {name:<16} {m.summary}")
            except ModelError as e:
                print(f"  {name:<16} (invalid: {e})")
        print()
    return 0


def cmd_reproduce(a: argparse.Namespace) -> int:
    from .experiments import STUDIES, reproduce_all

    bad = [s for s in a.only if s not in STUDIES]
    if bad:
        raise UsageError(f"vemu reproduce: --only {bad[0]}: not a study; one of {', '.join(STUDIES)}")
    if a.workers is not None and a.workers < 1:
        raise UsageError("vemu reproduce: --workers must be >= 1")
    check_output_path(a.out, what="vemu reproduce", flag="--out", directory=True)
    cache = checked_cache(a.cache, a.no_cache, what="vemu reproduce")
    summaries = reproduce_all(a.out, quick=a.quick, workers=a.workers, progress=not a.quiet and sys.stderr.isatty(),
                              cache=cache, only=tuple(a.only))
    head = summaries.get("headline", {}).get("headline") if isinstance(summaries.get("headline"), dict) else None
    if head:
        print("usable fraction of the host (xeon-2017, cloud-mix, saturated):")
        for arch, v in sorted(head.items(), key=lambda kv: -kv[1]["usable_fraction"]):
            bar = "#" * round(v["usable_fraction"] * 40)
            print(f"  {arch:<14} {v['usable_fraction']:6.3f}  {bar}")
    for name, summ in summaries.items():
        if isinstance(summ, dict) and "within" in summ:
            print(f"{name}: {summ['within']}/{summ['total']} rows within their published ranges")
        checks = summ.get("checks") if isinstance(summ, dict) else None
        if checks:
            failed = [k for k, v in checks.items() if not v]
            print(f"{name}: {len(checks) - len(failed)}/{len(checks)} expectations hold"
                  + (f"; not: {'; '.join(failed)}" if failed else ""))
    print(f"wrote {a.out}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from .bench import MAX_REPEATS, MIN_REQUESTS, TANDEM_RATE, bench
    from .model import MAX_DURATION_S

    most = int(MAX_DURATION_S * TANDEM_RATE)  # tandem-3's longest run the engine takes
    if not MIN_REQUESTS <= a.requests <= most:
        raise UsageError(f"vemu bench: --requests must be in [{MIN_REQUESTS}, {most}], got {a.requests}")
    if not 1 <= a.repeats <= MAX_REPEATS:
        raise UsageError(f"vemu bench: --repeats must be in [1, {MAX_REPEATS}], got {a.repeats}")
    if a.out is not None:
        from .bench import SHARED_BENCH

        check_output_path(a.out, what="vemu bench", flag="--out", directory=False,
                          inputs=[SHARED_BENCH / n for n in ("tandem.toml", "tandem_c.c", "tandem_simpy.py")])
    try:
        bench(requests=a.requests, repeats=a.repeats, out=a.out)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"vemu: bench failed: {e}", file=sys.stderr)
        return 1
    return 0


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _say(message: str) -> None:
    """An error, as one line on stderr: a newline inside a key, a value or a file name
    (all of which come from the user) is shown escaped, as \\n, and a line of thousands of
    characters (a huge value quoted) keeps its two ends."""
    # every character str.splitlines() breaks at, each as its escape (\x0b, \u2028, ...)
    line = "".join(c if c not in _LINE_BREAKS else repr(c)[1:-1] for c in message)
    if len(line) > 1000:  # a value of thousands of characters quoted in it: keep both ends
        line = f"{line[:600]} ...({len(line) - 900} characters)... {line[-300:]}"
    print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    try:
        signal.signal(signal.SIGTERM, _sigterm)  # stop like Ctrl-C: clean message, exit 130
    except ValueError:  # not the main thread
        pass
    try:
        parser = _parser()
        a = parser.parse_args(argv)
        if a.command is None:
            sub = next(x for x in parser._actions if isinstance(x, argparse._SubParsersAction))
            raise UsageError(f"vemu: a command is required ({', '.join(sub.choices)}); see vemu --help")
        builtin = {"run": cmd_run, "list": cmd_list, "reproduce": cmd_reproduce, "bench": cmd_bench}
        func = builtin.get(a.command) or getattr(a, "func")
        return int(func(a))
    except UsageError as e:
        _say(str(e))
        return 2
    except ModelError as e:
        _say(f"vemu: {e}")
        return 2
    except EmulatorError as e:
        _say(f"vemu: run failed: {e}")
        return 1
    except KeyboardInterrupt:
        print("vemu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as e:  # writing results or reading a file outside the model loader
        _say(f"vemu: {str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}")
        return 1
    except Exception as e:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("VEMU_TRACEBACK"):
            raise
        print(f"vemu: internal error (please report it; VEMU_TRACEBACK=1 shows where): {type(e).__name__}: "
              f"{str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # `python -m emulator.cli` runs this file as __main__, a second copy of the module: the
    # commands raise emulator.cli's UsageError, so run emulator.cli's main, not this copy's
    from emulator.cli import main as _main

    sys.exit(_main())
