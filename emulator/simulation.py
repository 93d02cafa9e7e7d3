"""Running an experiment: warm up, reset the statistics, measure, collect.

The engine runs in chunks of events so that Python can show progress and honour Ctrl-C
between them; the chunk size never changes the results (the engine's state carries over
exactly). A chunk that ends without the clock moving means requests are looping in zero
time (a closed flow whose every stage and think time is zero), which is reported rather
than spun on forever.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ._core import STATUS_EFULL, Engine, EmulatorError, ModelError, NativeError, Stalled
from .model import (PS_PER_S, Compiled, Experiment, as_experiment, check_count, check_seed, check_window,
                    compile_experiment, load_experiment)
from .result import Result

DEFAULT_CHUNK_EVENTS = 1 << 22
# events at one instant before a run is declared stuck: at least STALL_EVENTS, and
# STALL_PER_REQUEST per request the pool holds (4M closed clients issuing at t = 0 make ~6
# events each there, legitimately); a loop in zero time makes events without end.
# STALL_PROBE more events at that instant, comparing drops before and after, tell a
# client's retry of a dropped request from requests whose stages take no time.
STALL_EVENTS = 20_000_000
STALL_PER_REQUEST = 64
STALL_PROBE = 1_000_000


class Simulation:
    """An experiment made ready to run (compiled once, run with any seed)."""

    def __init__(self, experiment: Experiment, *, trace_requests: int = 0, pool_size: int | None = None):
        experiment = as_experiment(experiment)  # a path or a table is loaded
        self.experiment = experiment
        self.compiled: Compiled = compile_experiment(experiment, trace_requests=trace_requests, pool_size=pool_size)

    def run(
        self,
        *,
        seed: int | None = None,
        duration_s: float | None = None,
        warmup_s: float | None = None,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        progress: Callable[[float], None] | None = None,
    ) -> Result:
        """Runs warm-up then the measured window; ``progress`` gets the fraction done."""
        e = self.experiment
        seed = e.seed if seed is None else seed
        seed = check_seed(seed)
        duration = e.duration_s if duration_s is None else duration_s
        warmup = e.warmup_s if warmup_s is None else warmup_s
        check_window(duration, warmup)
        chunk_events = check_count(chunk_events, key="chunk_events", hi=2**62)
        t0 = time.perf_counter()
        warm_ps = round(warmup * PS_PER_S)
        end_ps = warm_ps + round(duration * PS_PER_S)
        with Engine(self.compiled.spec, seed=seed) as eng:
            eng.set_stall_limit(self.stall_limit)
            if warm_ps > 0:  # with none, the window is [0, end]: what happens at t = 0 counts
                self.advance(eng, warm_ps, end_ps, chunk_events, progress)
                eng.reset_stats()
            self.advance(eng, end_ps, end_ps, chunk_events, progress)
            stats = eng.stats()
            trace, lost = eng.trace() if self.compiled.spec.trace_requests else (None, 0)
            events = eng.events
        return Result(e, self.compiled, stats, seed, (end_ps - warm_ps) / PS_PER_S, warm_ps / PS_PER_S,
                      events, time.perf_counter() - t0, trace, lost)

    def _looping_flow(self) -> int | None:
        """The closed flow that does not think whose requests can loop in zero time: one with a
        class whose every stage takes no time (no work, bytes or delay), else the first closed
        flow that does not think, else None."""
        spec = self.compiled.spec

        def instant(cls: int) -> bool:
            first, n, _ = spec.classes[cls]
            return all(row[2][1] == 0 and row[3] == 0 and row[4][1] == 0 for row in spec.stages[first:first + n])

        looping = [i for i, f in enumerate(spec.flows) if f[0] and f[3][1] == 0]
        for i in looping:
            first, n = spec.flows[i][4:6]
            if any(instant(c) for c in range(first, first + n)):
                return i
        return looping[0] if looping else None

    @property
    def stall_limit(self) -> int:
        """Events at one instant after which a run is stuck (see STALL_EVENTS)."""
        return max(STALL_EVENTS, STALL_PER_REQUEST * int(self.compiled.spec.pool_size))

    def advance(self, eng: Engine, until: int, end: int, chunk: int, progress: Callable[[float], None] | None) -> None:
        """Runs an engine made from this simulation to `until` (ps) in chunks of events,
        reporting progress as a fraction of `end`; turns a full pool and a clock that
        stopped into EmulatorErrors. The engine counts the events at one instant itself,
        so whether a run is stuck does not depend on the chunks."""
        while True:
            try:
                reached = eng.run(until, chunk)
            except Stalled as st:
                self._probe_stall(eng, until, st.at_ps)
                continue
            except NativeError as err:
                if err.status == STATUS_EFULL:
                    raise EmulatorError(f"{err}. The offered load exceeds what {self.experiment.architecture.name} "
                                        "can serve (an open flow's queue grew without bound)") from None
                raise
            if progress is not None and end > 0:
                progress(min(1.0, eng.now_ps / end))
            if reached:
                return

    def _probe_stall(self, eng: Engine, until: int, at: int) -> None:
        """After the stall limit: STALL_PROBE more events at that instant. A burst that ends
        within them goes on (the limit is back for the next instant); else the ModelError."""
        st = eng.stats()
        drops = (st["resource_dropped"].copy(), st["flow_dropped"].copy())
        limit = self.stall_limit
        eng.set_stall_limit(limit + STALL_PROBE)
        try:
            eng.run(until, STALL_PROBE + 1)
        except Stalled:
            self._raise_stalled(eng, at, limit + STALL_PROBE, drops)
        finally:
            eng.set_stall_limit(limit)

    def _raise_stalled(self, eng: Engine, at: int, stalled: int, drops: Any) -> None:
        """The ModelError for a clock stuck at ``at`` (ps) for ``stalled`` events: a closed
        client that does not think re-issuing a request dropped at a full queue at once, or
        requests whose stages take no time."""
        spec = self.compiled.spec
        st = eng.stats()
        grew = [i for i in range(len(spec.resources)) if st["resource_dropped"][i] > drops[0][i]]
        thinkless = [i for i, f in enumerate(spec.flows)
                     if f[0] and f[3][1] == 0 and st["flow_dropped"][i] > drops[1][i]]
        if grew and thinkless:
            fi = thinkless[0]
            file, key = self.compiled.flow_where[fi]
            name = self.compiled.resources[grew[0]].name
            raise ModelError(f"dropped requests are re-issued in zero time (time stopped at {at / PS_PER_S:.6f} s "
                             f"for {stalled:,} events): a closed flow's client that does not think asks again "
                             f"at once when its request is dropped at the full queue of '{name}', which no one "
                             f"leaves at that instant; give think_us (a back-off) or '{name}' a capacity with "
                             "room for every client", file=file, key=key + ".think_us")
        fi = self._looping_flow()
        file, key = self.compiled.flow_where[fi] if fi is not None else (None, None)
        raise ModelError(f"requests loop in zero time (time stopped at {at / PS_PER_S:.6f} s for "
                         f"{stalled:,} events): a closed flow that does not think and a request of it "
                         "whose stages all take no time; give think_us or the stages some time",
                         file=file, key=key and key + ".think_us")


def run(spec: str | Path | Mapping[str, Any] | None = None, **kwargs: Any) -> Result:
    """Loads and runs an experiment in one call: ``run("exp.toml", seed=3)`` or
    ``run(host="xeon-2017", architecture="nitro", workload="web")``."""
    load_keys = ("host", "architecture", "workload", "sets", "duration_s", "warmup_s", "seed")
    sim_keys = ("trace_requests", "pool_size")
    run_keys = ("chunk_events", "progress")
    unknown = sorted(set(kwargs) - set(load_keys + sim_keys + run_keys))
    if unknown:  # a misspelt seed= or duration_s= was silently dropped
        raise TypeError(f"run() got unexpected keyword argument(s) {', '.join(unknown)}; it takes "
                        f"{', '.join(load_keys + sim_keys + run_keys)}")
    exp = load_experiment(spec, **{k: v for k, v in kwargs.items() if k in load_keys})
    sim = Simulation(exp, **{k: v for k, v in kwargs.items() if k in sim_keys})
    return sim.run(**{k: v for k, v in kwargs.items() if k in run_keys})
