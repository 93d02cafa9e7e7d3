"""``vemu bench``: the engine's speed beside its reference peers, in one run.

Tandem-3 (../shared/bench/tandem.toml: Poisson arrivals through three exponential FIFO
stations) runs as a whole process in three ways: vemu, the hand-written C reference
(../shared/bench/tandem_c.c, compiled here with gcc -O2) and SimPy (when installed).
Each is timed from outside its process (start-up included), several times, and the
median is reported with its peak resident memory. Ratios taken in one run on one machine
are what count: absolute figures move with the machine's load.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .provenance import provenance, write_csv

ROOT = Path(__file__).resolve().parent.parent
SHARED_BENCH = Path(os.environ.get("VEMU_SHARED_BENCH", ROOT.parent / "shared" / "bench"))
THEORY_MS = 5.6385  # Jackson: sum s/(1 - lambda s) for s = 0.5, 0.7, 0.9 ms, lambda = 0.8/ms
MIN_REQUESTS = 1000  # the fewest requests a run is timed over (vemu bench --requests)
TANDEM_RATE = 800.0  # tandem-3's arrivals per second: a run of n requests lasts n / 800 s
MAX_REPEATS = 99

# the vemu side of the benchmark, run as its own process
_VEMU_CHILD = r"""
import sys, time
from emulator.model import load_experiment
from emulator.simulation import Simulation
n = int(sys.argv[1]); spec = sys.argv[2]
exp = load_experiment(spec, duration_s=n / 800.0, warmup_s=0.0, seed=1)  # TANDEM_RATE
r = Simulation(exp).run(chunk_events=1 << 24)
d = r.to_dict()
f = d["flows"]["jobs"]
print(f"vemu requests={f['completed']} events={d['events']} mean_sojourn={f['latency_us']['mean'] / 1000:.4f}")
"""


# Linux folds the high-water RSS of the memory a process had before exec (for a child of
# fork or vfork, its parent's, hundreds of MiB here once numpy and matplotlib are loaded) into
# the ru_maxrss its parent reads, so a child is started through this small launcher: exec'd
# itself, it forks the child from its own ~1 MiB image and reports the child's ru_maxrss.
_LAUNCHER_C = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 125;
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) { execvp(argv[1], argv + 1); _exit(127); }
    int st; struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return 126;
    fprintf(stderr, "\n" RSS_KEY "%ld\n", ru.ru_maxrss);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
"""
_RSS_KEY = "vemu-bench-child-peak-rss-kib="
_launcher: str | None = None  # the compiled launcher while bench() runs; None: ru_maxrss as read


def _compile(cc: str, src: Path, exe: Path, *flags: str) -> str:
    """Compiles ``src`` with ``cc -O2`` into ``exe``; returns its path, or raises RuntimeError
    with the compiler's last line."""
    cp = subprocess.run([cc, "-O2", *flags, "-o", str(exe), str(src), "-lm"], capture_output=True, text=True)
    if cp.returncode != 0:
        last = (cp.stderr.strip().splitlines() or [f"status {cp.returncode}"])[-1]
        raise RuntimeError(f"{cc} could not compile {src}: {last}")
    return str(exe)


def build_launcher(folder: Path, cc: str) -> str:
    """Compiles the launcher into ``folder``; returns its path."""
    src = folder / "peak_rss.c"
    src.write_text(_LAUNCHER_C, encoding="utf-8")
    return _compile(cc, src, folder / "peak_rss", f'-DRSS_KEY="{_RSS_KEY}"')


def _peak_rss(cmd: list[str], name: str = "") -> tuple[float, int, str]:
    """Runs cmd; returns (wall seconds, peak RSS in KiB of that process, stdout): through the
    launcher when there is one (the child's own memory, ~1 MiB of the launcher's at most),
    else ru_maxrss as wait4 gives it (which includes this process's size: an upper bound)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([_launcher, *cmd] if _launcher else cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out = p.stdout.read() if p.stdout else ""
    err = p.stderr.read() if p.stderr else ""
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    rss = int(ru.ru_maxrss)
    if _launcher:
        head, sep, tail = err.rpartition(_RSS_KEY)
        if sep:
            err, rss = head, int(tail.split()[0])
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{name or cmd[0]} failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
    return wall, rss, out


def _field(out: str, key: str) -> float:
    for tok in out.split():
        if tok.startswith(key + "="):
            return float(tok.split("=", 1)[1])
    return float("nan")


def machine() -> str:
    model = ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.processor()} x{os.cpu_count()}, {platform.system()} {platform.release()}"


def bench(*, requests: int = 10_000_000, simpy_requests: int = 200_000, repeats: int = 3,
          out: Path | None = None, quiet: bool = False) -> list[dict[str, Any]]:
    global _launcher
    cc = shutil.which("gcc") or shutil.which("cc")
    with tempfile.TemporaryDirectory() as tmp:
        _launcher = build_launcher(Path(tmp), cc) if cc else None
        try:
            return _bench(requests=requests, simpy_requests=simpy_requests, repeats=repeats, out=out,
                          quiet=quiet, cc=cc, folder=Path(tmp))
        finally:
            _launcher = None


def _bench(*, requests: int, simpy_requests: int, repeats: int, out: Path | None, quiet: bool,
           cc: str | None, folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    spec = SHARED_BENCH / "tandem.toml"
    if not spec.is_file():
        raise FileNotFoundError(f"{spec}: the tandem-3 reference model is missing (set VEMU_SHARED_BENCH)")
    from .model import load_experiment

    load_experiment(spec)  # a bad model is a ModelError here, one line, not a child's failure

    def say(msg: str) -> None:  # the table is the command's output
        if not quiet:
            print(msg, flush=True)

    def measure(name: str, cmd: list[str], n: int) -> None:
        walls, rss, outs = [], [], []
        for _ in range(repeats):
            w, m, o = _peak_rss(cmd, name)
            walls.append(w)
            rss.append(m)
            outs.append(o)
        wall = statistics.median(walls)
        o = outs[walls.index(wall)] if wall in walls else outs[0]
        done = _field(o, "requests") or n
        events = _field(o, "events")
        if events != events:  # nan: ciw/simpy print events~
            events = 4 * done
        row = {"tool": name, "requests": int(done), "events": int(events), "wall_s": wall,
               "requests_per_s": done / wall, "events_per_s": events / wall, "peak_rss_mib": max(rss) / 1024,
               "mean_sojourn_ms": _field(o, "mean_sojourn"), "repeats": repeats}
        rows.append(row)
        say(f"{name:<8} {row['requests_per_s']:>12,.0f} req/s {row['events_per_s']:>13,.0f} ev/s "
            f"{row['wall_s']:7.2f} s  {row['peak_rss_mib']:6.1f} MiB  sojourn {row['mean_sojourn_ms']:.4f} ms")

    say(f"tandem-3, {requests:,} requests, median of {repeats}, whole process (theory {THEORY_MS} ms)")
    if not cc:
        say("(no C compiler: peak RSS as the kernel reports it, which includes this process's own size)")
    measure("vemu", [sys.executable, "-c", _VEMU_CHILD, str(requests), str(spec)], requests)
    if cc:
        exe = _compile(cc, SHARED_BENCH / "tandem_c.c", folder / "tandem_c")
        measure("hand-C", [exe, str(requests)], requests)
    else:
        say("hand-C   skipped: no C compiler")
    try:
        import simpy  # noqa: F401
        measure("simpy", [sys.executable, str(SHARED_BENCH / "tandem_simpy.py"), str(simpy_requests)], simpy_requests)
    except ImportError:
        say("simpy    skipped: not installed (pip install simpy)")
    by = {r["tool"]: r for r in rows}
    v = by["vemu"]
    for other in ("hand-C", "simpy"):
        if other in by:
            say(f"vemu / {other:<6} = {ratio_text(v['requests_per_s'] / by[other]['requests_per_s'])}x")

    # memory must not grow with run length: the same model at 1/20 of the requests (at
    # least MIN_REQUESTS), compared only when that is at most half of --requests
    small = max(MIN_REQUESTS, requests // 20)
    extra: dict[str, Any] = {"memory": None}
    if 2 * small <= requests:
        _, small_rss, _ = _peak_rss([sys.executable, "-c", _VEMU_CHILD, str(small), str(spec)])
        extra["memory"] = {"requests_small": small, "peak_rss_small_mib": small_rss / 1024,
                           "requests_large": requests, "peak_rss_large_mib": v["peak_rss_mib"],
                           "growth_mib": v["peak_rss_mib"] - small_rss / 1024}
        say(f"memory   {small:,} requests: {small_rss / 1024:.1f} MiB; {requests:,}: {v['peak_rss_mib']:.1f} MiB "
            f"(growth {extra['memory']['growth_mib']:+.1f} MiB)")
    else:
        say(f"memory   not compared: {requests:,} requests leave no run of at most half as many "
            f"(at least {MIN_REQUESTS:,}); give --requests >= {2 * MIN_REQUESTS:,}")
    extra["overhead_ms"] = python_overhead_ms()
    say(f"python   load + compile + run 1 ms + collect: {extra['overhead_ms']:.2f} ms (median of 21)")
    extra["headline"] = headline_speed(say)
    extra["pool"] = pool_speedup(say)
    for r in rows:
        r["vemu_ratio"] = v["requests_per_s"] / r["requests_per_s"]
    if out is not None:
        header = list(rows[0])
        body = [[r[k] for k in header] for r in rows]
        prov = provenance({"requests": requests, "simpy_requests": simpy_requests, "repeats": repeats}) | {
            "bench_inputs": bench_inputs(), "compiler": compiler_version(cc), "bench_machine": machine(), **({"memory": extra["memory"]} if extra["memory"] else {}),
            "python_overhead_ms": round(extra["overhead_ms"], 3), "headline_workloads": extra["headline"],
            "process_pool": extra["pool"]}
        write_csv(out, header, body, prov)
    return rows


def bench_inputs() -> dict[str, str]:
    """sha256 (12 hex digits) of each file the tools ran, keyed by its path: the model and
    the peers' sources live outside the repository (``VEMU_SHARED_BENCH``), so a table says
    which ones it timed."""
    out = {}
    for name in ("tandem.toml", "tandem_c.c", "tandem_simpy.py"):
        p = SHARED_BENCH / name
        out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()[:12] if p.is_file() else "missing"
    return out


def compiler_version(cc: str | None) -> str:
    """The first line of ``cc --version`` (the hand-written C's speed is its compiler's)."""
    if not cc:
        return "none"
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return f"{cc} (version unknown)"
    return out.splitlines()[0] if out.strip() else f"{cc} (version unknown)"


def ratio_text(r: float, digits: int = 2) -> str:
    """``r`` with ``digits`` significant digits and no exponent (0.13, 0.0084, 5.4, 54);
    a ratio of 100 or more as a whole number (1,234)."""
    if not math.isfinite(r) or r <= 0:
        return str(r) if r != 0 else "0"
    if r >= 10 ** digits:
        return f"{r:,.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(r)))
    return f"{r:.{decimals}f}"


def python_overhead_ms(n: int = 21) -> float:
    """Median wall time of a small run end to end in this process: load the tandem model,
    compile it, run 1 ms of simulated time, collect the result dict."""
    from .model import load_experiment
    from .simulation import Simulation

    spec = SHARED_BENCH / "tandem.toml"
    times = []
    for _ in range(n):
        t = time.perf_counter()
        Simulation(load_experiment(spec, duration_s=0.001, warmup_s=0.0)).run().to_dict()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def headline_speed(say: Any, duration_s: float = 0.05) -> dict[str, dict[str, float]]:
    """Events and requests per second of the engine on the headline workload."""
    from .model import load_experiment
    from .simulation import Simulation

    out = {}
    for a in ("bare-metal", "xen-pv", "nitro"):
        exp = load_experiment(host="xeon-2017", architecture=a, workload="cloud-mix", duration_s=duration_s,
                              warmup_s=0.005)
        t = time.perf_counter()
        r = Simulation(exp).run()
        wall = time.perf_counter() - t
        done = sum(f["completed"] for f in r.to_dict()["flows"].values())
        out[a] = {"events_per_s": round(r.events / wall), "requests_per_s": round(done / wall), "wall_s": round(wall, 3)}
        say(f"cloud-mix {a:<11} {out[a]['requests_per_s']:>12,} req/s {out[a]['events_per_s']:>13,} ev/s")
    return out


def pool_speedup(say: Any) -> dict[str, float]:
    """Eight headline runs serially and on a pool of every core: the speed-up, and whether
    the results are identical."""
    from .experiments.headline import ARCHITECTURES
    from .runner import Job, run_jobs

    jobs = [Job("xeon-2017", a, "cloud-mix", (), 0.15, 0.01, 1, tag=a) for a in ARCHITECTURES[:8]]
    t = time.perf_counter()
    serial = run_jobs(jobs, workers=1)
    t_serial = time.perf_counter() - t
    t = time.perf_counter()
    pooled = run_jobs(jobs)
    t_pool = time.perf_counter() - t
    same = serial == pooled
    from .runner import usable_workers

    res = {"workers": usable_workers(None, len(jobs)), "serial_s": round(t_serial, 3), "pool_s": round(t_pool, 3),
           "speedup": round(t_serial / t_pool, 3), "identical": same}
    say(f"pool     8 headline runs: serial {t_serial:.2f} s, {res['workers']} workers {t_pool:.2f} s, "
        f"speed-up {res['speedup']:.2f}x, identical results: {same}")
    return res
