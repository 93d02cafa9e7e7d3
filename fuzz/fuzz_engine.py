#!/usr/bin/env python3
"""Coverage-guided fuzzing of the C engine with atheris (libFuzzer for Python).

Each input is decoded into an engine spec (emulator._core.Spec): resources, queue
classes, stages, classes and flows with indices usually in range and sometimes not, and
numbers usually ordinary and sometimes NaN, infinite, negative or huge. Raw integers the
Spec cannot express (a distribution kind of 7, an arrival mode of -3, draw_bytes of 2) are
then written straight into the C structs. The spec is created, run in bounded chunks of
events, its statistics and trace read back, and destroyed.

The oracle: every outcome is a clean run or a negative status with a message. A crash
(segfault, abort, a sanitizer report when built with them) or a hang (libFuzzer's
-timeout) is a bug. Work per input is bounded by max_events, so a hang can only be a loop
inside one event.

    pip install atheris
    python3 fuzz/fuzz_engine.py -max_total_time=60 -timeout=10 -rss_limit_mb=4096 [corpus_dir]
    python3 fuzz/fuzz_engine.py -runs=100000 -print_final_stats=1

The C code is compiled by gcc without libFuzzer's coverage instrumentation, so the
guidance comes from the Python side: the decoder and ``_feedback``, which branches on the
engine's status and message so that reaching a new validation check in C is new coverage.
"""

from __future__ import annotations

import math
import sys

import atheris

import numpy  # noqa: F401  (imported first so that it is not instrumented)

with atheris.instrument_imports():
    from emulator import _core
    from emulator._core import Engine, NativeError, Spec, ffi, lib

U32 = 2**32 - 1
KINDS = ("fixed", "exp", "lognormal", "uniform")
SPECIAL = (0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e18, 1.0000001e18, 1e300, 5e-324,
           4294967295.0, 4294967296.0, 0.5773502691896258, 0.5773502691896259)
MAX_EVENTS = 5_000
CHUNKS = 3


class Decoder:
    """Bytes to values. An exhausted input reads as zeros, and zero always means the
    ordinary case, so short inputs decode to mostly valid specs and the fuzzer spends its
    bytes on the edges."""

    def __init__(self, data: bytes):
        self.f = atheris.FuzzedDataProvider(data)

    def small(self, lo: int, hi: int) -> int:
        return self.f.ConsumeIntInRange(lo, hi)

    def edge(self) -> bool:
        return self.f.ConsumeIntInRange(0, 15) >= 13

    def u32(self, lo: int, hi: int) -> int:
        """Usually in [lo, hi], sometimes just past hi or anywhere in the uint32 range."""
        if self.edge():
            return self.f.PickValueInList([hi + 1 if hi < U32 else U32, self.f.ConsumeIntInRange(0, U32), 0])
        return self.f.ConsumeIntInRange(lo, hi)

    def i32(self, lo: int, hi: int) -> int:
        if self.edge():
            return self.f.PickValueInList([hi + 1, lo - 1, self.f.ConsumeIntInRange(-(2**31), 2**31 - 1)])
        return self.f.ConsumeIntInRange(lo, hi)

    def num(self, lo: float, hi: float) -> float:
        if self.edge():
            return self.f.PickValueInList(list(SPECIAL) + [self.f.ConsumeFloat()])
        return lo + (hi - lo) * self.f.ConsumeProbability()

    def dist(self, lo: float, hi: float) -> tuple[str, float, float]:
        return (self.f.PickValueInList(list(KINDS)), self.num(lo, hi), self.num(0.0, 0.5))


def decode(data: bytes) -> tuple[Spec, list[tuple[str, int, str, int]], int, int]:
    d = Decoder(data)
    nr, nq = d.small(1, 3) if not d.edge() else 0, d.small(1, 4) if not d.edge() else 0
    ns, nc, nf = (d.small(1, 6) if not d.edge() else 0), (d.small(1, 4) if not d.edge() else 0), d.small(1, 3) if not d.edge() else 0
    ncat = d.u32(1, 4) if not d.edge() else d.small(0, 300)
    def idle_states() -> tuple[tuple[int, int], ...]:
        """Idle states: usually a few with growing residencies up to 1 ms, sometimes out of
        order, negative or past the limit."""
        out, res = [], 0
        for _ in range(d.small(1, 4) if not d.edge() else d.small(0, 70)):
            res = res + d.small(0, 10**8) if not d.edge() else d.f.PickValueInList([-1, 0, _core.LIMITS["gap_ps"] + 1])
            out.append((d.small(0, 10**8) if not d.edge() else d.f.PickValueInList([-1, 2**63 - 1]), res))
        return tuple(out)

    def sleep() -> tuple[object, ...]:
        """Nothing, idle states and their wake category, or those and a poll before sleeping."""
        if not d.f.ConsumeBool():
            return ()
        out: tuple[object, ...] = (idle_states(), d.u32(0, max(0, ncat - 1)))
        if d.f.ConsumeBool():
            out += (d.small(0, 10**9) if not d.edge() else d.f.PickValueInList([-1, _core.LIMITS["gap_ps"] + 1]),
                    d.u32(0, max(0, ncat - 1)))
        return out

    resources = [(d.u32(1, 4), d.f.ConsumeIntInRange(-(2**63), 2**63 - 1) if d.edge() else d.small(-1, 8)) + sleep()
                 for _ in range(nr)]
    qclasses = [(d.u32(0, max(0, nr - 1)), d.i32(-2, 2), d.u32(1, 4),
                 d.f.PickValueInList([-1, _core.LIMITS["gap_ps"] + 1, 2**63 - 1]) if d.edge()
                 else d.small(0, 1) * d.small(1, 10**8),  # gap: none, up to 100 us, or past the limit
                 d.u32(0, 2)) for _ in range(nq)]  # preempt: 0, 1 or (invalid) 2
    def paged() -> tuple:  # sometimes work per page: (ps per page, page bytes, unpaged bytes) after fork 0
        return (0, (d.num(0, 1e7), d.num(1, 8192), d.num(0, 256))) if d.f.ConsumeBool() else ()

    def lanes(i: int, row: tuple) -> tuple:  # sometimes lanes (valid where the qclasses agree), after tags
        if not d.f.ConsumeBool():
            return row
        return row + (() if len(row) > 7 else (0, None)) + ((i, i), d.u32(0, 4) if not d.edge() else U32)
    stages = [lanes(i, (d.i32(-1, nq - 1), d.u32(0, max(0, ncat - 1)), d.dist(0, 1e7), d.num(0, 1e3),
                        d.dist(0, 1e6), d.f.ConsumeBool(), d.dist(0, 1e4)) + paged()) for i in range(ns)]
    classes = [(d.u32(0, max(0, ns - 1)), d.u32(1, max(1, ns)), d.num(0.01, 10)) for _ in range(nc)]
    flows = [(d.f.ConsumeBool(), d.dist(1e5, 1e9), d.u32(1, 8), d.dist(0, 1e9), d.u32(0, max(0, nc - 1)),
              d.u32(1, max(1, nc))) for _ in range(nf)]
    # pools and traces are allocated whole at creation: keep them small, or past the limit
    pool = d.small(64, 320) if not d.edge() else d.f.PickValueInList([0, _core.LIMITS["pool"] + 1, U32])
    trace_req = d.small(0, 16) if not d.edge() else U32
    trace_cap = d.small(0, 256) if not d.edge() else d.f.PickValueInList([_core.LIMITS["trace"] + 1, U32])
    spec = Spec(resources, qclasses, stages, classes, flows, ncat, pool, trace_req, trace_cap)
    # raw integers no Spec can hold: (array, index, field, value)
    pokes = []
    for _ in range(d.small(1, 2) if d.edge() else 0):
        which = d.f.PickValueInList(["stage.work", "stage.delay", "stage.bytes", "stage.draw", "flow.arrival",
                                     "flow.inter", "flow.think", "resource.idle_first", "resource.n_idle", "resource.poll"])
        pokes.append((which, d.small(0, 6), "", d.i32(-1, 5)))
    until = d.f.ConsumeIntInRange(-(2**63), 2**63 - 1) if d.edge() else d.small(10**6, 10**10)
    seed = d.f.ConsumeIntInRange(0, 2**64 - 1)
    return spec, pokes, until, seed


def _poke(m: object, spec: Spec, pokes: list[tuple[str, int, str, int]]) -> None:
    for which, i, _, v in pokes:
        arr, field = which.split(".")
        if arr == "resource" and i < len(spec.resources):
            setattr(m.resources[i], field, v & 0xFFFFFFFF)  # type: ignore[attr-defined]
        elif arr == "stage" and i < len(spec.stages):
            g = m.stages[i]  # type: ignore[attr-defined]
            if field == "draw":
                g.draw_bytes = v
            else:
                getattr(g, field).kind = v
        elif arr == "flow" and i < len(spec.flows):
            f = m.flows[i]  # type: ignore[attr-defined]
            if field == "arrival":
                f.arrival = v
            else:
                (f.interarrival if field == "inter" else f.think).kind = v


def _feedback(msg: str) -> None:
    """Distinct branches per engine message, so atheris sees C validation paths as coverage."""
    if "resource" in msg:
        if "units" in msg:
            return
        if "out of range" in msg:
            return
    elif "idle state" in msg:
        if "residency" in msg:
            return
    elif "qclass" in msg:
        if "batch" in msg:
            return
        if "gap" in msg:
            return
        if "preempt" in msg:
            return
    elif "stage" in msg:
        if "work" in msg:
            return
        if "delay" in msg:
            return
        if "bytes" in msg:
            return
        if "per_byte" in msg:
            return
        if "per_page" in msg:
            return
        if "page_bytes" in msg:
            return
        if "category" in msg:
            return
    elif "class" in msg:
        if "weight" in msg:
            return
    elif "flow" in msg:
        if "interarrival" in msg:
            return
        if "think" in msg:
            return
        if "clients" in msg:
            return
        if "arrival" in msg:
            return
    elif "pool" in msg:
        return
    elif "trace" in msg:
        return
    elif "categories" in msg:
        return
    elif "time" in msg:
        return


def TestOneInput(data: bytes) -> None:
    try:
        spec, pokes, until, seed = decode(data)
    except (ValueError, OverflowError):  # a value cffi cannot place in its C field
        return
    try:
        m, keep = _core._build(spec)
    except OverflowError:
        return
    _poke(m, spec, pokes)
    out = ffi.new("vemu_sim **")
    err = ffi.new("char[]", 512)
    status = lib.vemu_sim_create(m, seed, out, err, 512)
    del keep
    if status < 0:
        msg = ffi.string(err).decode()
        if not msg or out[0] != ffi.NULL:
            raise AssertionError(f"status {status} with message {msg!r} and sim {out[0]}")
        _feedback(msg)
        return
    assert status == 0 and out[0] != ffi.NULL
    eng = Engine.__new__(Engine)
    eng.spec = spec
    eng._sim = ffi.gc(out[0], lib.vemu_sim_destroy)
    with eng:
        for _ in range(CHUNKS):
            try:
                done = eng.run(until, MAX_EVENTS)
            except NativeError as e:
                if e.status >= 0 or not str(e):
                    raise
                _feedback(str(e))
                try:  # a failed sim stays failed
                    eng.run(until, 1)
                except NativeError as e2:
                    assert e2.status < 0
                else:
                    raise AssertionError("a failed sim ran again")
                break
            if done:
                if eng.now_ps != until:
                    raise AssertionError(f"run returned OK at {eng.now_ps}, not {until}")
                break
        s = eng.stats()
        created = int(s["flow_created"].sum())
        ended = int(s["flow_completed"].sum() + s["flow_dropped"].sum() + s["flow_in_flight"].sum())
        if created != ended:
            raise AssertionError(f"conservation: created {created} != completed + dropped + in flight {ended}")
        eng.trace()
        eng.reset_stats()
        eng.stats()


for _f in (decode, _poke, _feedback, TestOneInput, Decoder.small, Decoder.u32, Decoder.i32, Decoder.num, Decoder.dist):
    atheris.instrument_func(_f)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
