"""Running many independent experiments: a process pool, a result cache, clean interrupts.

A :class:`Job` names an experiment (bundled host, architecture, workload, overrides,
window, seed). Jobs are independent and each has its own seed, so the results are the same
whatever the number of workers or the order they finish in.

The cache keeps each finished job's result, keyed by a hash of everything that decides it:
the resolved model data (after overrides), the window, the seed, the versions of vemu and
its engine, and a hash of the code itself (engine binary and Python sources). A run that is killed and started again recomputes only what was not
finished, and — since results are stored as exact JSON (floats round-trip) — writes
byte-identical outputs. Each entry carries a checksum of its payload; an entry that does
not parse or does not match is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from ._core import VERSION as ENGINE_VERSION
from .model import load_experiment
from .provenance import atomic_write_text
from .simulation import Simulation

DEFAULT_CACHE = Path(os.environ.get("VEMU_CACHE", Path(__file__).resolve().parent.parent / ".vemu-cache"))


@dataclass(frozen=True)
class Job:
    """One run, small enough to send to a worker process.

    ``host``/``architecture``/``workload`` name bundled models (None: take them from
    ``spec``, an experiment file path); ``sets`` are KEY=VALUE overrides."""

    host: str | None
    architecture: str | None
    workload: str | None
    sets: tuple[str, ...]
    duration_s: float | None
    warmup_s: float | None
    seed: int
    tag: Any = None
    spec: str | None = None

    def experiment(self) -> Any:
        return load_experiment(self.spec, host=self.host, architecture=self.architecture, workload=self.workload,
                               sets=self.sets, duration_s=self.duration_s, warmup_s=self.warmup_s, seed=self.seed)


def run_job(job: Job) -> dict[str, Any]:
    """Runs one job; the result dict has no wall-clock fields (it must be reproducible)."""
    d = Simulation(job.experiment()).run().to_dict()
    d.pop("wall_s", None)
    d["sets"] = list(job.sets)
    d = json.loads(json.dumps(d))  # plain JSON types, exactly as the cache returns them
    d["tag"] = job.tag
    return d


_CODE_HASH: str | None = None


def code_hash() -> str:
    """A hash of the code that computes results: the engine binary and the Python package.
    Changing either changes every cache key, so a cache never serves stale physics."""
    global _CODE_HASH
    if _CODE_HASH is None:
        from . import _native

        h = hashlib.sha256(Path(_native.__file__).read_bytes())
        pkg = Path(__file__).resolve().parent
        for p in sorted(pkg.rglob("*.py")):
            h.update(p.relative_to(pkg).as_posix().encode())
            h.update(p.read_bytes())
        _CODE_HASH = h.hexdigest()
    return _CODE_HASH


def job_key(job: Job) -> str:
    """The cache key: resolved model data, window, seed and versions (not the tag)."""
    exp = job.experiment()
    blob = json.dumps({"spec": exp.digest(full=True), "seed": job.seed, "vemu": __version__,
                       "engine": ENGINE_VERSION, "code": code_hash()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    """Finished results on disk, one JSON file per key, written atomically."""

    def __init__(self, root: Path | str = DEFAULT_CACHE):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self._path(key)
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
            payload = entry["payload"]
            if entry.get("key") != key or entry.get("sha256") != _digest(payload):
                raise ValueError("checksum mismatch")
            return payload
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            try:  # corrupt: drop it, it will be recomputed
                p.unlink()
            except OSError:
                pass
            return None

    def put(self, key: str, payload: dict[str, Any]) -> None:
        atomic_write_text(self._path(key), json.dumps({"key": key, "sha256": _digest(payload), "payload": payload}))


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C and SIGTERM (sent to the whole process group by a terminal or
    a job controller) to the parent, which stops them itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run_jobs(jobs: Sequence[Job], *, workers: int | None = None, progress: bool = False, desc: str = "runs",
             cache: Cache | None = None, on_result: Callable[[int, dict[str, Any]], None] | None = None
             ) -> list[dict[str, Any]]:
    """Runs jobs (cached ones are not rerun) and returns their results in job order.

    ``workers`` defaults to every core; 1 runs in this process. On Ctrl-C the workers are
    stopped and KeyboardInterrupt propagates; every result finished before it is cached.
    """
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    keys: list[str | None] = [None] * len(jobs)
    todo = []
    for i, j in enumerate(jobs):
        if cache is not None:
            keys[i] = job_key(j)
            hit = cache.get(keys[i])  # type: ignore[arg-type]
            if hit is not None:
                hit["tag"] = j.tag
                results[i] = hit
                continue
        todo.append(i)
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc=desc, leave=False, delay=2.0)

    def done(i: int, r: dict[str, Any]) -> None:
        results[i] = r
        if cache is not None:
            cache.put(keys[i], r)  # type: ignore[arg-type]
        if on_result is not None:
            on_result(i, r)
        if bar is not None:
            bar.update()

    workers = min(len(todo), workers if workers is not None else (os.cpu_count() or 1))
    try:
        if workers <= 1:
            for i in todo:
                done(i, run_job(jobs[i]))
        elif todo:
            pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
            try:
                pending: dict[Future[dict[str, Any]], int] = {pool.submit(run_job, jobs[i]): i for i in todo}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        done(pending.pop(f), f.result())
            except BaseException:
                procs = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for p in procs:
                    p.kill()
                raise
            pool.shutdown()
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


__all__ = ["Job", "Cache", "run_job", "run_jobs", "job_key"]
