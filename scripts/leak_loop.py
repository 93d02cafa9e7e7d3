#!/usr/bin/env python3
"""Create, run and destroy engines in a loop, through every exit path, and check that the
heap does not grow: a sim leaked per iteration would be at least its histograms (59 KB
per flow), so N iterations would add megabytes.

Exit status 0 when heap growth over the measured iterations stays under the threshold,
1 otherwise. Under AddressSanitizer the heap is read with
``__sanitizer_get_current_allocated_bytes``; otherwise with mallinfo2 (glibc). Used by
scripts/sanitize.sh (with LeakSanitizer also watching) and scripts/valgrind.sh.

    python3 scripts/leak_loop.py [ITERATIONS]          # default 300
    python3 scripts/leak_loop.py --leak 50             # a deliberate leak: must fail
"""

from __future__ import annotations

import ctypes
import gc
import sys

from emulator._core import Engine, NativeError, Spec, _build, ffi, lib
from emulator.model import load_experiment
from emulator.simulation import Simulation

NONE = ("fixed", 0.0, 0.0)


def _heap_bytes() -> int:
    proc = ctypes.CDLL(None)
    try:
        f = proc.__sanitizer_get_current_allocated_bytes
        f.restype = ctypes.c_size_t
        return int(f())
    except AttributeError:
        pass

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    m = proc.mallinfo2
    m.restype = Mallinfo2
    info = m()
    return int(info.uordblks + info.hblkhd)


def _spec(*, pool: int = 64, trace: int = 0) -> Spec:
    stages = [(0, 0, ("exp", 1e6, 0.0), 1.0, NONE, True, ("lognormal", 500.0, 0.5)),
              (-1, 1, NONE, 0.0, ("exp", 2e5, 0.0), False, NONE),
              (1, 1, ("uniform", 3e5, 0.5), 0.0, NONE, False, NONE)]
    # resource 0 sleeps (two idle states: its per-unit arrays are allocated and freed too)
    return Spec(resources=[(2, 8, ((100_000, 100_000), (2_000_000, 5_000_000)), 1, 300_000, 0), (1, -1)],
                qclasses=[(0, 0, 1), (1, 1, 4)], stages=stages,
                classes=[(0, 3, 1.0), (1, 2, 2.0)],
                flows=[(False, ("exp", 8e5, 0.0), 0, NONE, 0, 2), (True, NONE, 4, ("exp", 1e6, 0.0), 1, 1)],
                n_categories=2, pool_size=pool, trace_requests=trace, trace_capacity=trace * 3)


def one_round(exp_bundled: object, exp_inline: object) -> None:
    # the Python layer, end to end
    for exp in (exp_bundled, exp_inline):
        Simulation(exp, trace_requests=5).run(duration_s=0.0005, warmup_s=0.0001)  # type: ignore[arg-type]
    # a clean run with a context manager, traces and a stats reset
    with Engine(_spec(trace=10), seed=3) as eng:
        eng.run(10**9, 10**5)
        eng.reset_stats()
        eng.run(2 * 10**9, 10**5)
        eng.stats()
        eng.trace()
    # rejected at creation (nothing may be left allocated)
    try:
        Engine(_spec(pool=0), seed=1)
    except NativeError:
        pass
    # failed while running: pool exhausted, then time out of range
    far = Spec([], [], [(-1, 0, NONE, 0.0, ("lognormal", 1e18, 1e6), False, NONE)], [(0, 1, 1.0)],
               [(True, NONE, 1, NONE, 0, 1)], 1, 1)  # delays past the clock's end: held there
    for spec, until in ((_spec(pool=5), 10**12), (far, 2**63 - 2)):
        eng = Engine(spec, seed=2)
        try:
            eng.run(until, 10**6)
        except NativeError:
            pass
        eng.close()
    # never closed: freed by the ffi.gc backstop when collected
    eng = Engine(_spec(), seed=4)
    eng.run(10**8, 1000)
    del eng


def leak_one() -> None:
    """A deliberate leak (the check must catch it): a sim created and never destroyed."""
    m, keep = _build(_spec())
    raw = ffi.new("vemu_sim **")
    err = ffi.new("char[]", 256)
    assert lib.vemu_sim_create(m, 1, raw, err, 256) == 0


def main(argv: list[str]) -> int:
    leak = "--leak" in argv
    args = [a for a in argv if a != "--leak"]
    n = int(args[0]) if args else 300
    exp_b = load_experiment(None, host="xeon-2017", architecture="xen-pv", workload="web")
    exp_i = load_experiment({
        "host": {"name": "h", "cores": 2, "ghz": 1.0, "memory_gib": 1},
        "architecture": {"name": "a", "paths": {"p": {"stages": [{"on": "vcpu", "cycles": {"dist": "exp", "mean": 5e4}}]}}},
        "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 20000,
                                             "steps": [{"path": "p", "bytes": 100}]}]},
    })
    warm = max(5, n // 10)
    for _ in range(warm):
        one_round(exp_b, exp_i)
    gc.collect()
    before = _heap_bytes()
    for _ in range(n - warm):
        one_round(exp_b, exp_i)
        if leak:
            leak_one()
    gc.collect()
    grown = _heap_bytes() - before
    limit = 2 << 20  # 2 MiB over hundreds of iterations; a leaked sim is >= 60 KB
    print(f"leak_loop: {n} iterations ({n - warm} measured), heap grew {grown} bytes (limit {limit})")
    return 0 if grown < limit else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
