"""Many runs: process pool, result cache, resume after a kill, clean interrupts."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator._core import EmulatorError, ModelError, NativeError
from emulator.runner import Cache, Job, job_key, run_jobs

JOBS = [Job("xeon-2017", a, "cloud-mix", (), 0.003, 0.001, 5, tag=a) for a in ("xen-pv", "nitro", "sriov", "emulated")]


def test_cached_results_equal_fresh_ones(tmp_path):
    cache = Cache(tmp_path)
    fresh = run_jobs(JOBS, workers=1)
    first = run_jobs(JOBS, workers=2, cache=cache)
    again = run_jobs(JOBS, workers=2, cache=cache)
    assert fresh == first == again
    assert len(list(tmp_path.rglob("*.json"))) == len(JOBS)


def test_a_killed_run_resumes_with_identical_results(tmp_path):
    cache = Cache(tmp_path)
    run_jobs(JOBS[:2], workers=1, cache=cache)  # "killed" after two of four
    computed = []
    resumed = run_jobs(JOBS, workers=1, cache=cache, on_result=lambda i, r: computed.append(i))
    assert computed == [2, 3]  # only the missing ones ran
    assert resumed == run_jobs(JOBS, workers=1)


def test_a_corrupt_entry_is_detected_and_redone(tmp_path):
    cache = Cache(tmp_path)
    good = run_jobs(JOBS[:1], workers=1, cache=cache)
    (entry,) = tmp_path.rglob("*.json")
    data = json.loads(entry.read_text())
    data["payload"]["usable_fraction"] = 0.5  # silently wrong: the checksum catches it
    entry.write_text(json.dumps(data))
    computed = []
    again = run_jobs(JOBS[:1], workers=1, cache=cache, on_result=lambda i, r: computed.append(i))
    assert computed == [0] and again == good
    for junk in ("{ truncated", "[" * 200_000):  # half-written; nested past the JSON parser's depth
        entry.write_text(junk)
        computed.clear()
        assert run_jobs(JOBS[:1], workers=1, cache=cache, on_result=lambda i, r: computed.append(i)) == good
        assert computed == [0]


def test_the_key_follows_the_model_data_and_the_seed():
    base = JOBS[0]
    assert job_key(base) == job_key(Job(*[getattr(base, f) for f in ("host", "architecture", "workload", "sets",
                                                                       "duration_s", "warmup_s", "seed")], tag="x"))
    assert job_key(base) != job_key(Job(base.host, base.architecture, base.workload, ("exit_cycles=1600",),
                                        base.duration_s, base.warmup_s, base.seed))
    assert job_key(base) != job_key(Job(base.host, base.architecture, base.workload, (), base.duration_s,
                                        base.warmup_s, base.seed + 1))


def test_reproduce_outputs_are_byte_identical_from_cache(tmp_path):
    from emulator.experiments.headline import reproduce
    cache = Cache(tmp_path / "cache")
    reproduce(tmp_path / "a", quick=True, workers=2, cache=cache)
    reproduce(tmp_path / "b", quick=True, workers=1, cache=cache)
    reproduce(tmp_path / "c", quick=True, workers=2, cache=None)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "headline.csv" in names and "headline.png" in names
    for n in names:
        a = (tmp_path / "a" / n).read_bytes()
        assert a == (tmp_path / "b" / n).read_bytes() == (tmp_path / "c" / n).read_bytes(), n
    # the I/O sweep's provenance gives its own windows (one per intensity), not the headline's
    from emulator.experiments.headline import SWEEP_WORK_QUICK, sweep_window
    from emulator.provenance import read_csv
    _, _, prov = read_csv(tmp_path / "a" / "usable-vs-io.csv")
    opts = json.loads(prov["options"])
    assert opts["duration_s"] == [[w, sweep_window(w, quick=True)[0]] for w in SWEEP_WORK_QUICK]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_reproduce_exits_130_and_leaves_no_partial_file(tmp_path, sig):
    env = dict(os.environ, VEMU_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "emulator.cli", "reproduce", "--only", "headline", "--out", str(out),
                          "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    # wait until the runs are under way (the cache folder appears with the first result)
    # or the process ends; then interrupt the whole process group as a terminal would
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and not (tmp_path / "cache").exists():
        time.sleep(0.05)
    if p.poll() is None:
        os.killpg(p.pid, sig)
    _, err = p.communicate(timeout=60)
    if p.returncode == 0:
        pytest.skip("the run finished before it could be interrupted")
    assert p.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "vemu: interrupted"
    leftovers = [q.name for q in tmp_path.rglob("*") if q.name.endswith(".tmp")]
    assert not leftovers
    for f in out.glob("*.csv") if out.exists() else []:
        assert f.read_text().count("\n") > 3  # whole files only


def test_workers_are_capped_at_the_jobs_and_the_cores():
    from emulator.runner import usable_workers

    cores = len(os.sched_getaffinity(0))
    assert usable_workers(100_000, 4) == min(4, cores)  # `--workers 100000` once forked 100,000
    assert usable_workers(None, 10_000) == cores
    assert usable_workers(1, 10) == 1 and usable_workers(3, 0) == 1


_ORPHAN = """
import sys, time
from emulator.runner import pool_run
def slow(x):
    time.sleep(60)
pool_run(slow, [1, 2], 2, lambda i, r: None)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="PR_SET_PDEATHSIG is Linux's; two workers need two cores")
def test_workers_die_with_a_parent_killed_hard():
    # workers ignore SIGINT and SIGTERM (the parent stops them); a parent killed with
    # SIGKILL (or by the OOM killer) cannot, so each worker asks the kernel to kill it then
    p = subprocess.Popen([sys.executable, "-c", _ORPHAN], start_new_session=True)
    deadline = time.monotonic() + 30
    kids: list[int] = []
    while time.monotonic() < deadline and len(kids) < 2:
        time.sleep(0.1)
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    assert len(kids) >= 2, kids
    time.sleep(0.5)  # past the workers' initializer
    p.kill()
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    alive = kids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [k for k in kids if os.path.exists(f"/proc/{k}") and "Z" not in _state(k)]
    for k in alive:  # leave no orphan behind, pass or fail
        os.kill(k, signal.SIGKILL)
    assert not alive, alive


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_a_pool_started_by_a_forkserver_runs():
    # Python 3.14 starts Linux pools from a forkserver: a worker's parent is then not the
    # process that made the pool, and the parent check must not turn every worker away
    code = ("import multiprocessing as mp; mp.set_start_method('forkserver')\n"
            "from emulator.runner import pool_run\n"
            "out = {}\n"
            "pool_run(abs, [-1, -2, -3], 2, out.__setitem__)\n"
            "assert out == {0: 1, 1: 2, 2: 3}, out\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def _overload_jobs(tmp_path):
    # one queue offered 5x what it serves: the pool of 262,144 requests is exhausted at 66 ms
    spec = tmp_path / "over.toml"
    spec.write_text((Path(__file__).parent.parent / "examples" / "heavy-load.toml").read_text())
    return [Job(None, None, None, (f"workload.flows.requests.rate_per_s={r}",), 0.2, 0.0, 1, spec=str(spec), tag=i)
            for i, r in enumerate(("5e5", "5e6"))]


def test_errors_cross_process_boundaries_whole():
    # a worker's error is pickled to the parent: NativeError's two arguments broke that (the
    # pool died as "BrokenProcessPool"); ModelError keeps its file and key
    for e in (NativeError(-3, "request pool exhausted"), ModelError("bad", file="f.toml", key="a.b")):
        r = pickle.loads(pickle.dumps(e))
        assert type(r) is type(e) and str(r) == str(e) and r.__dict__ == e.__dict__


def test_a_run_failing_on_a_worker_says_which_run(tmp_path):
    for workers in (1, 2):
        with pytest.raises(EmulatorError, match=r"request pool .* exhausted.*\(in the run of .*over\.toml with "
                                                 r"workload\.flows\.requests\.rate_per_s=5e6, seed 1\)$"):
            run_jobs(_overload_jobs(tmp_path), workers=workers)


def test_a_run_failing_on_a_dask_worker_is_one_line_not_a_worker_traceback(tmp_path, capfd):
    pytest.importorskip("distributed")
    with pytest.raises(EmulatorError, match=r"exhausted.*\(in the run of .*over\.toml with .*=5e6, seed 1\)$"):
        run_jobs(_overload_jobs(tmp_path), executor="dask", workers=2)
    assert "Traceback" not in capfd.readouterr().err


def test_a_cache_may_be_given_as_its_folder(tmp_path):
    # sweep(..., cache="folder") died in a worker: "'str' object has no attribute 'get'"
    from emulator import sweep as sw
    spec = {"host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
            "architecture": {"name": "a", "paths": {"p": {"stages": [{"on": "vcpu", "cycles": 1000}]}}},
            "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 1e5,
                                                 "steps": [{"path": "p"}]}]},
            "experiment": {"duration_s": 0.001, "warmup_s": 0.0001}}
    vary = {"workload.flows.f.rate_per_s": "1e5,2e5"}
    first = sw.sweep(spec, vary=vary, workers=1, cache=str(tmp_path / "c"))
    assert len(list((tmp_path / "c").rglob("*.json"))) == 2
    ran = []
    again = sw.sweep(spec, vary=vary, workers=1, cache=tmp_path / "c", on_result=lambda i, r: ran.append(i))
    def records(t):  # a DataFrame when pandas is there, else a list of rows
        return t.to_dict("records") if hasattr(t, "to_dict") else list(t)
    assert ran == [] and records(again) == records(first)
    with pytest.raises(TypeError, match="cache must be"):
        run_jobs(JOBS[:1], workers=1, cache=3)


def test_a_ctrl_c_while_the_dask_cluster_closes_stops_the_run(tmp_path, monkeypatch):
    # Every result was back and cached; a Ctrl-C landed in client.close(). It was swallowed:
    # the sweep wrote its files and exited 0, after Client.__del__ retried the close and
    # waited its 60 s. Now the interrupt goes on (exit 130, no files), the results stay in
    # the cache, and the client is marked closed so that nothing waits for it again.
    distributed = pytest.importorskip("distributed")

    class Future:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    class FakeClient:
        made: list = []

        def __init__(self, *a, **kw):
            self.status = "running"
            self._loop_runner = type("L", (), {"stop": lambda self: None})()
            FakeClient.made.append(self)

        def submit(self, fn, *args, key=None):
            return Future(fn(*args))

        def cancel(self, futures):
            pass

        def close(self, timeout=None):
            self.status = "closing"
            raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "Client", FakeClient)
    monkeypatch.setattr(distributed, "as_completed", lambda fs: iter(fs))
    cache = Cache(tmp_path / "c")
    jobs = [Job("xeon-2017", "nitro", "kv-cache", (), 0.0005, 0.0001, s) for s in (1, 2)]
    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, executor="dask", workers=1, cache=cache)
    assert FakeClient.made[0].status == "closed"
    assert len(list((tmp_path / "c").rglob("*.json"))) == 2  # what came back is kept
    import logging  # distributed's logging, quiet while the close ran, is back on for what follows
    assert not [n for n, lg in logging.root.manager.loggerDict.items()
                if n.split(".")[0] == "distributed" and isinstance(lg, logging.Logger) and lg.disabled]


def test_a_sigterm_while_the_dask_cluster_starts_stops_the_run_once_it_is_up(tmp_path, monkeypatch):
    # A SIGTERM raised in the middle of building the local cluster left it half-built, and
    # distributed's exit hook printed a traceback. It is now held until the cluster is up,
    # then raised (as the command line's SIGTERM handler would: an interrupt), the cluster
    # closed, and no task submitted.
    import os
    import signal

    distributed = pytest.importorskip("distributed")

    class FakeClient:
        made: list = []

        def __init__(self, *a, **kw):
            os.kill(os.getpid(), signal.SIGTERM)  # a job controller's stop, mid-start
            self.closed = False
            self.submitted = 0
            FakeClient.made.append(self)

        def submit(self, *a, **kw):
            self.submitted += 1

        def close(self, timeout=None):
            self.closed = True

    def stop(signum, frame):
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "Client", FakeClient)
    old = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_jobs([Job("xeon-2017", "nitro", "kv-cache", (), 0.0005, 0.0001, 1)], executor="dask", workers=1,
                     cache=Cache(tmp_path / "c"))
        assert signal.getsignal(signal.SIGTERM) is stop and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, old)
    [c] = FakeClient.made
    assert c.closed and c.submitted == 0
    # a SIGTERM this process ignores stays ignored: the run goes on to submit its tasks
    class Proceeded(Exception):
        pass

    def submit(self, *a, **kw):
        raise Proceeded

    monkeypatch.setattr(FakeClient, "submit", submit)
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with pytest.raises(Proceeded):
            run_jobs([Job("xeon-2017", "nitro", "kv-cache", (), 0.0005, 0.0001, 1)], executor="dask", workers=1,
                     cache=Cache(tmp_path / "c2"))
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, old)


def test_a_worker_forked_as_ctrl_c_lands_is_not_left_behind(monkeypatch):
    # In a process with other threads (a notebook's kernel) the blocked signal mask holds for
    # one thread only, and a Ctrl-C could land after a worker's fork and before the pool
    # listed it: that worker slept on for the session (6 of 150 timed interrupts). Here the
    # pool's submit forks a child it never lists, then is interrupted.
    import concurrent.futures
    from emulator import runner

    forked = []
    real_submit = concurrent.futures.ProcessPoolExecutor.submit

    def submit(self, fn, *args, **kwargs):
        if not forked:
            pid = os.fork()
            if pid == 0:  # the child a fork left behind: it would sleep for a long time
                time.sleep(300)
                os._exit(0)
            forked.append(pid)
            raise KeyboardInterrupt
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures.ProcessPoolExecutor, "submit", submit)
    with pytest.raises(KeyboardInterrupt):
        runner.pool_run(abs, [1, 2, 3, 4], 2, lambda i, r: None)
    assert forked and forked[0] not in runner._children()
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(forked[0], os.WNOHANG)


def _fails(x):
    raise ValueError(f"run {x} failed")


def test_a_failed_pool_kills_only_its_own(tmp_path):
    # The orphan sweep after an interrupt must not reach a child another thread started (it
    # was killed and reaped, its Popen reading exit status 0), nor multiprocessing's own
    # helpers; and a worker's error is no interrupt at all.
    import threading
    from emulator import runner

    other = []
    t = threading.Timer(0.05, lambda: other.append(subprocess.Popen(["sleep", "30"])))
    t.start()

    with pytest.raises(ValueError, match="failed"):
        runner.pool_run(_slow_fail, [1, 2, 3, 4], 2, lambda i, r: None)
    t.join()
    try:
        assert other and other[0].poll() is None  # still running
    finally:
        for p in other:
            p.kill()
            p.wait()


def _slow_fail(x):
    time.sleep(0.3)
    return _fails(x)


def test_failed_pools_under_the_forkserver_leave_the_next_one_working():
    # the first failed pool's orphan sweep killed the forkserver and resource tracker: the
    # next pool died of "ChildProcessError: No child processes"
    script = (
        "import multiprocessing as mp\n"
        "mp.set_start_method('forkserver')\n"
        "from emulator import runner\n"
        "import tests.test_runner as t\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        runner.pool_run(t._fails, [1, 2, 3], 2, lambda i, r: None)\n"
        "    except ValueError as e:\n"
        "        print('ok', e)\n")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.stdout.count("ok run") == 2, out.stderr[-2000:]


def _die(x):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would


def test_a_worker_killed_from_outside_is_said_plainly_not_as_a_vemu_bug(monkeypatch):
    # BrokenProcessPool reached the command line as "internal error (please report it)".
    # Two workers whatever the machine: with one usable core the items would run in this
    # process, and _die would kill pytest itself
    from emulator import runner
    from emulator._core import EmulatorError

    monkeypatch.setattr(runner, "usable_workers", lambda asked, jobs: 2)
    with pytest.raises(EmulatorError, match="a worker process died .* run again"):
        runner.pool_run(_die, [1, 2, 3], 2, lambda i, out: None)
