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

Jobs run on a local process pool by default, or on a Dask distributed cluster
(``executor="dask"``, the optional extra ``vemu[dask]``): each job is one task keyed by its
cache key, results are cached as they arrive, and a worker whose code or bundled models
differ from the client's refuses to run rather than fill the cache with other physics.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import __version__
from ._core import VERSION as ENGINE_VERSION
from ._core import EmulatorError, ModelError, NativeError
from .model import load_experiment
from .result import tail_to_json
from .provenance import atomic_write_text
from .simulation import Simulation

DEFAULT_CACHE = Path(os.environ.get("VEMU_CACHE", Path(__file__).resolve().parent.parent / ".vemu-cache"))


@dataclass(frozen=True)
class Job:
    """One run, small enough to send to a worker process.

    ``host``/``architecture``/``workload`` name bundled models (None: take them from
    ``spec``, an experiment file path, or an experiment as plain data: a dict makes the
    Job unhashable, nothing else); ``sets`` are KEY=VALUE overrides."""

    host: str | None
    architecture: str | None
    workload: str | None
    sets: tuple[str, ...]
    duration_s: float | None
    warmup_s: float | None
    seed: int
    tag: Any = None
    spec: str | Mapping[str, Any] | None = None
    stages: bool = False  # also return the per-stage table (Result.stages()) as "stages"
    tails: bool = False  # also return each flow's latency histogram (Result.tails()) as "latency_tails"

    def experiment(self) -> Any:
        return load_experiment(self.spec, host=self.host, architecture=self.architecture, workload=self.workload,
                               sets=self.sets, duration_s=self.duration_s, warmup_s=self.warmup_s, seed=self.seed)


def run_job(job: Job) -> dict[str, Any]:
    """Runs one job; the result dict has no wall-clock fields (it must be reproducible)."""
    return _run(job, job.experiment())


def _run(job: Job, exp: Any) -> dict[str, Any]:
    res = Simulation(exp).run()
    d = res.to_dict()
    d.pop("wall_s", None)
    if job.stages:
        d["stages"] = res.stages()
    if job.tails:
        d["latency_tails"] = {name: tail_to_json(t) for name, t in res.tails().items()}
    d["sets"] = list(job.sets)
    d = json.loads(json.dumps(d))  # plain JSON types, exactly as the cache returns them
    d["tag"] = job.tag
    return d


_CODE_HASH: str | None = None


def code_hash() -> str:
    """A hash of the code that computes results: the engine binary, the C library it links
    dynamically (its libm's exp, log and cos draw every random time) and the Python
    package. Changing any changes every cache key, so a cache never serves stale physics."""
    global _CODE_HASH
    if _CODE_HASH is None:
        import platform

        from . import _native

        h = hashlib.sha256(Path(_native.__file__).read_bytes())
        h.update(" ".join(platform.libc_ver()).encode())
        pkg = Path(__file__).resolve().parent
        for p in sorted(pkg.rglob("*.py")):
            h.update(p.relative_to(pkg).as_posix().encode())
            h.update(p.read_bytes())
        _CODE_HASH = h.hexdigest()
    return _CODE_HASH


def job_key(job: Job) -> str:
    """The cache key: resolved model data, window, seed and versions (not the tag).

    The seed is the one the run uses: ``job.seed``, or the experiment file's when the job
    leaves it to the file (``seed=None``), exactly as the window is the resolved one. A job
    asking for the stage table (``stages``) or the latency histograms (``tails``) has a key
    of its own: its result has more in it."""
    return _key(job, job.experiment())


def _key(job: Job, exp: Any) -> str:
    blob = json.dumps({"spec": exp.digest(full=True), "seed": exp.seed, "vemu": __version__,
                       "engine": ENGINE_VERSION, "code": code_hash()} | ({"stages": True} if job.stages else {})
                      | ({"tails": True} if job.tails else {}),
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    """Finished results on disk, one JSON file per key, written atomically.

    ``read=False`` makes a cache that is written but never read (``--no-cache``: every run
    is recomputed, and the new results still refresh the cache)."""

    def __init__(self, root: Path | str = DEFAULT_CACHE, *, read: bool = True):
        self.root = Path(root)
        self.read = read

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.read:
            return None
        p = self._path(key)
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
            payload = entry["payload"]
            if entry.get("key") != key or entry.get("sha256") != _digest(payload):
                raise ValueError("checksum mismatch")
            return payload
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            try:  # corrupt (or nested past the parser's depth): drop it, it will be recomputed
                p.unlink()
            except OSError:
                pass
            return None

    def put(self, key: str, payload: dict[str, Any]) -> None:
        atomic_write_text(self._path(key), json.dumps({"key": key, "sha256": _digest(payload), "payload": payload}))


def as_cache(cache: Any) -> Cache | None:
    """A Cache from what an API caller gives: None, a Cache, or its folder (str or Path; a
    folder was taken for a Cache and failed in a worker with "'str' object has no
    attribute 'get'")."""
    if cache is None or isinstance(cache, Cache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return Cache(cache)
    raise TypeError(f"cache must be a runner.Cache, a folder or None, not {type(cache).__name__}")


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _ignore_sigint(parent: int | None = None) -> None:
    """Workers leave Ctrl-C and SIGTERM (sent to the whole process group by a terminal or
    a job controller) to the parent, which stops them itself. They are started with both
    blocked (see run_jobs), so one arriving before this runs stays pending and is dropped
    here instead of reaching the parent's handler in a half-started worker. On Linux a
    worker also asks to be killed when its parent dies, however it dies (kill -9, the OOM
    killer), since nothing else would stop a worker that ignores the stop signals."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if parent is not None and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the parent's stop is all there is
            pass
        if os.getppid() != parent:  # it died before the request took effect
            os._exit(1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def usable_workers(asked: int | None, jobs: int) -> int:
    """How many local worker processes to start: as many as asked (default: every core
    this process may run on), but never more than the jobs or the cores, since more only
    costs memory (each is a whole interpreter) and the results are the same bits anyway."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(jobs, cores, asked if asked is not None else cores))


def pool_run(fn: Callable[[Any], Any], items: Sequence[Any], workers: int | None,
             done: Callable[[int, Any], None]) -> None:
    """Runs ``fn`` on every item, calling ``done(i, result)`` here as each finishes: in this
    process when :func:`usable_workers` allows only one worker, else on a pool of them. On
    Ctrl-C or SIGTERM (or any error, ``done``'s included) the workers are killed at once and
    the exception propagates: a pool's own shutdown would first finish every run queued.
    Workers are forked while the items are submitted, with the stop signals blocked, so
    each starts with them blocked until it ignores them."""
    n = usable_workers(workers, len(items))
    if n <= 1:
        for i, x in enumerate(items):
            done(i, fn(x))
        return
    import multiprocessing

    # the parent check needs workers forked from this process (not from a forkserver's)
    forked = multiprocessing.get_start_method() == "fork"
    before = _children() if forked else set()  # for the orphan sweep below, which only forks need
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    pool = ProcessPoolExecutor(max_workers=n, initializer=_ignore_sigint,
                               initargs=(os.getpid() if forked else None,))
    # a bounded window of runs in flight: wait() walks every future it is given, so with all
    # N submitted at once the loop cost O(N²) (100,000 runs: 514 s on 2 workers, 6 s on one)
    window = max(4 * n, 64)
    queue = iter(enumerate(items))
    pending: dict[Future[Any], int] = {}

    def fill() -> None:  # under the stop signals' mask: a worker forked now starts with them blocked
        for i, x in itertools.islice(queue, window - len(pending)):
            pending[pool.submit(fn, x)] = i

    try:
        try:
            fill()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a pending stop is raised here
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            failed: BaseException | None = None
            # every run that finished is handed on (and cached) before a failed one's error is
            # raised: a batch's other results were dropped with it
            for f in sorted(finished, key=pending.__getitem__):
                i = pending.pop(f)
                try:
                    out = f.result()
                except BrokenProcessPool:  # not vemu's doing: a signal, or the out-of-memory killer
                    failed = failed or EmulatorError(
                        "a worker process died (killed by a signal or the out-of-memory killer); the runs that "
                        "finished are kept in the cache, if one is used: run again to go on from them")
                    continue
                except BaseException as e:
                    failed = failed or e
                    continue
                done(i, out)
            if failed is not None:
                raise failed
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                fill()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    except BaseException as e:
        procs = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.kill()
        # the signal mask holds for this thread only: in a process with other threads (a
        # notebook's kernel) a Ctrl-C can land while a worker is being forked, after the
        # fork and before the pool lists it; it would sleep on for the whole session (6 of
        # 150 interrupts of replicate(workers=2) with a timer thread did so). Only then, and
        # only forks of this very interpreter: another thread's subprocess, or the resource
        # tracker and forkserver multiprocessing starts, are not the pool's to kill
        if forked and isinstance(e, (KeyboardInterrupt, SystemExit)):
            listed = {p.pid for p in procs}
            for pid in _children() - before - listed:
                if _same_program(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                    except OSError:  # gone, or reaped by multiprocessing meanwhile
                        pass
        _forget_manager(manager)
        raise
    pool.shutdown()


def _same_program(pid: int) -> bool:
    """Whether process ``pid`` runs this interpreter with this command line (a fork of this
    process that has not exec'd); False when that cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f, open("/proc/self/cmdline", "rb") as g:
            return f.read() == g.read() and os.readlink(f"/proc/{pid}/exe") == os.readlink("/proc/self/exe")
    except OSError:
        return False


def _children() -> set[int]:
    """This process's children (Linux: every thread's /proc children list; elsewhere none)."""
    out: set[int] = set()
    try:
        for t in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{t}/children") as f:
                out.update(int(x) for x in f.read().split())
    except (OSError, ValueError):  # not Linux, or a thread gone meanwhile: what was read
        pass
    return out


def _forget_manager(manager: threading.Thread | None) -> None:
    """After the workers were killed: let the pool's manager thread see them gone, and take
    it off concurrent.futures' exit hook, which would otherwise join it, and wake it through
    a pipe it may have closed, as the interpreter exits: a Ctrl-C printed "Exception ignored
    in <module 'threading'>" and a traceback after "vemu: interrupted" in about one run in
    four (Python 3.11's hook: a KeyboardInterrupt in its join, or a write to the closed pipe)."""
    if manager is None:
        return
    try:
        manager.join(timeout=5.0)
    except BaseException:  # a second Ctrl-C: nothing more to wait for
        pass
    try:
        from concurrent.futures import process

        process._threads_wakeups.pop(manager, None)  # type: ignore[attr-defined]
    except (ImportError, AttributeError):  # pragma: no cover - another Python's internals
        pass


def run_jobs(jobs: Sequence[Job], *, workers: int | None = None, progress: bool = False, desc: str = "runs",
             cache: Cache | None = None, on_result: Callable[[int, dict[str, Any]], None] | None = None,
             executor: str = "local", scheduler: str | None = None, client: Any = None
             ) -> list[dict[str, Any]]:
    """Runs jobs (cached ones are not rerun) and returns their results in job order.

    ``executor="local"`` (the default): a process pool here; ``workers`` defaults to every
    core, 1 runs in this process. ``executor="dask"``: the jobs go to a Dask distributed
    cluster, through ``client`` (a ``distributed.Client``) or else a client connected to
    ``scheduler`` (an address such as ``tcp://10.0.0.1:8786``; None starts a local cluster);
    see :func:`_run_dask`. Results are the same, bit for bit, whichever executor runs them.

    On Ctrl-C the workers are stopped (dask: the tasks are cancelled) and KeyboardInterrupt
    propagates; every result finished before it is cached.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    cache = as_cache(cache)
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    bar = None

    def done(i: int, key: str | None, r: dict[str, Any], hit: bool) -> None:
        results[i] = r
        if not hit:
            if cache is not None:
                cache.put(key, r)  # type: ignore[arg-type]
            if on_result is not None:
                on_result(i, r)
        if bar is not None:
            bar.update()

    try:
        if executor == "dask":
            # the cluster is sent only what the cache lacks, each task keyed by its cache key
            keys: list[str | None] = [None] * len(jobs)
            todo = []
            for i, j in enumerate(jobs):
                keys[i] = job_key(j) if cache is not None else None
                hit = cache.get(keys[i]) if cache is not None else None  # type: ignore[arg-type]
                if hit is not None:
                    results[i] = _own(hit, j)
                else:
                    todo.append(i)
            bar = _bar(progress, len(todo), desc)
            if todo:
                _run_dask(jobs, todo, keys, lambda i, r: done(i, keys[i], r, False), scheduler=scheduler, client=client,
                          workers=workers)
        else:
            # each worker loads its job once, for both the cache key and the run, and looks
            # the key up itself: the parent does no per-job work but store what comes back
            bar = _bar(progress, len(jobs), desc)
            pool_run(partial(_fetch_or_run, cache=cache), jobs, workers, lambda i, kr: done(i, *kr))
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


def describe(job: Job) -> str:
    """Which run a job is, in a line: its models or file, its overrides and its seed."""
    names = "/".join(x for x in (job.host, job.architecture, job.workload) if x)
    what = names or (str(job.spec) if isinstance(job.spec, (str, os.PathLike)) else "an inline experiment")
    sets = f" with {' '.join(job.sets)}" if job.sets else ""
    return f"{what}{sets}, seed {job.seed}"


def in_job(e: EmulatorError, job: Job) -> EmulatorError:
    """``e`` saying which run it came from (a sweep's failure named no point)."""
    ctx = f" (in the run of {describe(job)})"
    if isinstance(e, ModelError):
        return ModelError(e.detail + ctx, file=e.file, key=e.key)
    if isinstance(e, NativeError):
        return NativeError(e.status, str(e) + ctx)
    return EmulatorError(str(e) + ctx)


def _fetch_or_run(job: Job, cache: Cache | None) -> tuple[str | None, dict[str, Any], bool]:
    """One job on a local worker: its cache key (None without a cache), its result, and
    whether that came from the cache."""
    try:
        return _fetch_or_run_(job, cache)
    except EmulatorError as e:
        raise in_job(e, job) from None


def _fetch_or_run_(job: Job, cache: Cache | None) -> tuple[str | None, dict[str, Any], bool]:
    exp = job.experiment()
    key = _key(job, exp) if cache is not None else None
    hit = cache.get(key) if key is not None else None  # type: ignore[union-attr]
    if hit is not None:
        return key, _own(hit, job), True
    return key, _run(job, exp), False


def _own(hit: dict[str, Any], job: Job) -> dict[str, Any]:
    """A cached result as ``job`` would have computed it: the entry may come from another
    job with the same key (the same overrides spelt otherwise), so what the job itself adds
    to a result (see :func:`run_job`) is its own."""
    hit["sets"] = list(job.sets)
    hit["tag"] = job.tag
    return hit


def _bar(progress: bool, total: int, desc: str) -> Any:
    if not (progress and total):
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=False, delay=2.0)


EXECUTORS = ("local", "dask")


def run_job_checked(job: Job, key: str) -> dict[str, Any]:
    """:func:`run_job` on a remote worker, refusing to run unless the worker computes the
    same :func:`job_key` as the client: same vemu and engine versions, same code, same
    bundled model data. A worker with other code would otherwise put its results in the
    client's cache under the client's key."""
    try:
        mine = job_key(job)
        if mine != key:
            import socket
            raise EmulatorError(f"worker {socket.gethostname()} (pid {os.getpid()}) computes another cache key for "
                                "this run: its vemu code, engine or bundled models differ from the client's; install "
                                "the same revision on every worker")
        return run_job(job)
    except EmulatorError as e:
        # returned, not raised: a task that raises has distributed log its traceback on the
        # worker; the client raises it, one line, as a local run would
        return {ERROR_KEY: e}


ERROR_KEY = "__vemu_error__"


def _portable(job: Job) -> Job:
    """The job with its experiment file read here, so workers need not share a filesystem."""
    if isinstance(job.spec, (str, os.PathLike)):
        from .model import read_toml
        return replace(job, spec=read_toml(job.spec))  # type: ignore[arg-type]
    return job


def _run_dask(jobs: Sequence[Job], todo: Sequence[int], keys: list[str | None],
              done: Callable[[int, dict[str, Any]], None], *, scheduler: str | None, client: Any,
              workers: int | None = None) -> None:
    """Runs ``jobs[todo]`` as tasks of a Dask distributed cluster.

    Each task is keyed by its :func:`job_key`, so identical jobs are one task, and the
    scheduler may keep or share a result it already holds. Results are gathered as they
    complete and handed to ``done`` (which stores them in the cache) at once, so a killed
    sweep keeps everything that came back. Workers need vemu installed at the same revision
    (checked by :func:`run_job_checked`), not the experiment files (they are sent as data).
    A local cluster (no ``scheduler`` or ``client``) has ``workers`` single-threaded worker
    processes (default: every core, at most one per task).
    """
    try:
        import distributed
    except ImportError:
        raise ImportError("the dask executor needs dask.distributed: pip install 'vemu[dask]'") from None
    own = client is None
    if own:
        try:
            if scheduler:
                client = distributed.Client(scheduler)
            else:
                # a local cluster's worker processes start with SIGINT ignored (inherited
                # across fork and exec; a blocked mask is not: multiprocessing's spawn clears
                # it), so a terminal's Ctrl-C, sent to the whole process group, stops this
                # process only: it cancels the tasks and closes the cluster, instead of every
                # worker printing its own traceback while the client waits for them (up to a
                # minute). The price: a Ctrl-C during the cluster's start (a second or more)
                # is not seen, and the run goes on until the next one. A SIGTERM meanwhile is
                # recorded and raised once the cluster is up, then closed (raised mid-start it
                # left a half-built cluster whose exit hook printed a traceback). Their logs
                # (read from the environment they inherit) keep to errors: their warnings
                # would say only that tasks were cancelled.
                main = threading.current_thread() is threading.main_thread()
                term: list[int] = []
                if main:
                    on_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
                    on_term = signal.signal(signal.SIGTERM, lambda signum, frame: term.append(signum))
                env = os.environ.get("DASK_LOGGING__DISTRIBUTED")
                os.environ["DASK_LOGGING__DISTRIBUTED"] = env or "error"
                try:
                    client = distributed.Client(processes=True, n_workers=usable_workers(workers, len(todo)),
                                                threads_per_worker=1)
                finally:
                    if env is None:
                        del os.environ["DASK_LOGGING__DISTRIBUTED"]
                    if main:
                        signal.signal(signal.SIGINT, on_int)
                        signal.signal(signal.SIGTERM, on_term)
                        try:
                            # the SIGTERM held meanwhile, to the handler it was held from (just
                            # restored): the command line's raises KeyboardInterrupt, SIG_DFL ends
                            # the process, an ignored one stays ignored
                            if term and on_term is not signal.SIG_IGN:
                                signal.raise_signal(signal.SIGTERM)
                        except BaseException:
                            if client is not None:
                                client.close()
                            raise
        except (OSError, TimeoutError) as e:
            where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
            raise EmulatorError(f"cannot reach {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        except (ValueError, TypeError) as e:  # not an address Dask can parse
            if not scheduler:
                raise
            raise ModelError(f"--scheduler {scheduler}: not a Dask scheduler address (such as tcp://HOST:8786): "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    futures: dict[Any, list[int]] = {}
    # distributed's sync() can log a NameError traceback from its event loop's thread when a
    # Ctrl-C lands while it waits (its cancel callback); the run's own errors come back
    # through the futures, so the loop's callback log is kept quiet while they run
    import logging

    loop_log = logging.getLogger("tornado.application")
    level = loop_log.level
    loop_log.setLevel(logging.CRITICAL)
    try:
        by_key: dict[str, list[int]] = {}
        for i in todo:
            k = keys[i] if keys[i] is not None else job_key(jobs[i])
            keys[i] = k
            by_key.setdefault(k, []).append(i)
        for k, idx in by_key.items():
            f = client.submit(run_job_checked, _portable(jobs[idx[0]]), k, key=f"vemu-run-{k}")
            futures[f] = idx
        for f in distributed.as_completed(list(futures)):
            r = f.result()
            if ERROR_KEY in r:  # named here, where the job still has its file's name
                raise in_job(r[ERROR_KEY], jobs[futures[f][0]])
            for i in futures.pop(f):
                done(i, _own(dict(r), jobs[i]))
    except BaseException:
        if futures:
            try:
                client.cancel(list(futures))
            except Exception:  # the cluster may be gone; nothing left to cancel then
                pass
        raise
    finally:
        stop: BaseException | None = None
        if own:
            # a Ctrl-C during the close makes distributed log the cancelled close as an error,
            # a traceback: this run says "interrupted" itself
            quiet = [lg for name, lg in logging.root.manager.loggerDict.items()
                     if name.split(".")[0] == "distributed" and isinstance(lg, logging.Logger) and not lg.disabled]
            for lg in quiet:
                lg.disabled = True
            try:
                client.close(timeout=10)
            except KeyboardInterrupt as e:  # Ctrl-C while the cluster closes: stop without waiting
                stop = e
                _abandon(client)
            except BaseException:  # a cluster already gone: nothing more to close
                pass
            for lg in quiet:  # back on, interrupted or not: a notebook's later Dask errors must show
                lg.disabled = False
        loop_log.setLevel(level)
        if stop is not None:
            # the results that came back are in the cache; this run stops here (a Ctrl-C
            # swallowed at this point let a sweep write its files and exit 0 after Dask's
            # own close, retried from Client.__del__, waited its 60 s)
            raise stop


def _abandon(client: Any) -> None:
    """Leaves a Dask client whose close was interrupted, marked closed so that
    Client.__del__ does not wait for it again (up to 60 s); a local cluster's worker
    processes go with this process."""
    try:
        client.status = "closed"
        client._loop_runner.stop()
    except Exception:  # a distributed without these: its own __del__ then closes as it can
        pass


__all__ = ["Job", "Cache", "run_job", "run_job_checked", "run_jobs", "job_key", "EXECUTORS"]
