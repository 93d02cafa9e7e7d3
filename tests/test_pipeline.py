"""The results pipeline: cache keys that follow what a run uses, cached results equal to
fresh ones, result files readable like any other, and percentile bars flagged when a
run's tail behind them is thin."""

import math
import os

import pytest

from emulator.experiments import figures as F
from emulator.provenance import atomic_write_text, read_csv
from emulator.runner import Cache, Job, job_key, run_jobs
from emulator.stats import MIN_TAIL_REQUESTS


def _spec(seed):
    return {"experiment": {"host": "xeon-2017", "architecture": "xen-pv", "workload": "cloud-mix", "seed": seed,
                           "duration_s": 0.002, "warmup_s": 0.0005}}


def test_the_key_follows_the_seed_an_experiment_file_gives():
    # a job that leaves the seed to its experiment (seed=None) runs with the file's seed,
    # so the key must change with it, as it does with the file's window
    a = Job(None, None, None, (), None, None, None, spec=_spec(3))
    b = Job(None, None, None, (), None, None, None, spec=_spec(4))
    assert job_key(a) != job_key(b)
    # and it is the key of the same run with the seed given explicitly
    assert job_key(a) == job_key(Job(None, None, None, (), None, None, 3, spec=_spec(3)))


def test_a_job_leaving_the_seed_to_its_file_gets_its_own_result_from_the_cache(tmp_path):
    cache = Cache(tmp_path)
    a = Job(None, None, None, (), None, None, None, spec=_spec(3))
    b = Job(None, None, None, (), None, None, None, spec=_spec(4))
    run_jobs([a], workers=1, cache=cache)
    got = run_jobs([b], workers=1, cache=cache)[0]
    assert got["seed"] == 4
    assert got == run_jobs([b], workers=1)[0]


def test_a_cache_hit_carries_the_jobs_own_overrides(tmp_path):
    # the same override spelt two ways is one run (one key); the result of each job still
    # says what that job asked for, from the cache as when computed
    cache = Cache(tmp_path)
    a = Job("xeon-2017", "xen-pv", "cloud-mix", ("exit_cycles=1600",), 0.002, 0.0005, 1, tag="a")
    b = Job("xeon-2017", "xen-pv", "cloud-mix", ("host.params.exit_cycles=1600",), 0.002, 0.0005, 1, tag="b")
    assert job_key(a) == job_key(b)
    run_jobs([a], workers=1, cache=cache)
    computed = []
    hit = run_jobs([b], workers=1, cache=cache, on_result=lambda i, r: computed.append(i))[0]
    assert computed == []  # from the cache
    assert hit == run_jobs([b], workers=1)[0]
    assert hit["sets"] == ["host.params.exit_cycles=1600"] and hit["tag"] == "b"


def test_result_files_get_the_usual_mode(tmp_path):
    # written through a temporary file (mkstemp: 0600), a result must still end up with the
    # mode open() gives a new file: 0666 less the umask
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.csv", "x\n")
        atomic_write_text(tmp_path / "a.csv", "y\n")  # over an existing file, too
        os.umask(0o027)
        atomic_write_text(tmp_path / "b.csv", "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.csv").stat().st_mode & 0o777 == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _fake(arch, x, completed, p99):
    return {"tag": (arch, x), "flows": {"mix": {"completed": completed, "latency_us": {"p99": p99}}}}


def test_percentile_bars_are_flagged_when_a_run_has_a_thin_tail():
    need = MIN_TAIL_REQUESTS * 100  # a p99 needs 1,000 completions per run
    res = [_fake("a", 1, need, 10.0), _fake("a", 1, need + 5, 11.0),     # every run has 10 beyond
           _fake("a", 2, need, 10.0), _fake("a", 2, need - 1, 12.0),     # one run has fewer
           _fake("a", 3, 0, math.nan), _fake("a", 3, 5000, 12.0)]        # one run has none
    rows = F._ci_rows(res, lambda r: r["tag"], {"p99_us": lambda r: r["flows"]["mix"]["latency_us"]["p99"]},
                      tails={"p99_us": (lambda r: r["flows"]["mix"]["completed"], 0.99)})
    flags = {r["key"][1]: r["p99_us_thin_tail"] for r in rows}
    assert flags == {1: 0, 2: 1, 3: 1}
    assert F.thin_tail(10_000, 0.999) is False and F.thin_tail(9_999, 0.999) is True
    assert F.thin_tail(62_000, 0.9999) is True  # the full latency CDF's last quantile
    assert F.thin_tail(62_000, 0.001) is False
    assert F.thin_tail(5_000, 0.001) is True  # a low quantile: 5 requests below it, too few


def test_thin_points_are_written_and_drawn(tmp_path):
    from emulator import plot
    from emulator.provenance import write_csv

    header = ["architecture", "load", "offered_per_s", "replications", "throughput_per_s", "throughput_per_s_ci",
              "p99_us", "p99_us_ci", "p99_us_thin_tail"]
    rows = [["nitro", 0.1, 2e5, 2, 2e5, 1e3, 100.0, 5.0, 0], ["nitro", 0.5, 1e6, 2, 1e6, 1e4, 120.0, 50.0, 1]]
    write_csv(tmp_path / "hockey.csv", header, rows, {"test": True})
    plot.hockey(tmp_path / "hockey.csv", tmp_path / "hockey.png")
    assert (tmp_path / "hockey.png").stat().st_size > 0
    _, got, _ = read_csv(tmp_path / "hockey.csv")
    assert [r["p99_us_thin_tail"] for r in got] == ["0", "1"]


def test_the_c_library_is_part_of_the_code_hash(monkeypatch) -> None:
    # the engine links libm dynamically: a C library upgrade may change exp/log/cos in the
    # last bit, so it must change every cache key
    import platform

    from emulator import runner

    monkeypatch.setattr(runner, "_CODE_HASH", None)
    before = runner.code_hash()
    monkeypatch.setattr(runner, "_CODE_HASH", None)
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: ("glibc", "9.99"))
    assert runner.code_hash() != before


def test_a_figure_point_refuses_a_replication_without_a_value():
    # mean_ci skips non-finite values; a figure row must not then claim all its replications
    rows = [{"k": 1, "v": 1.0}, {"k": 1, "v": float("nan")}, {"k": 2, "v": 2.0}, {"k": 2, "v": 3.0}]
    import pytest

    with pytest.raises(RuntimeError, match=r"figure point 1: v is not a finite number in 1 of its 2"):
        F._ci_rows(rows, lambda r: r["k"], {"v": lambda r: r["v"]})
    ok = F._ci_rows(rows[2:], lambda r: r["k"], {"v": lambda r: r["v"]})
    assert ok[0]["replications"] == 2 and ok[0]["v"] == 2.5


def test_a_job_asking_for_stages_gets_them_under_its_own_cache_key(tmp_path):
    # the per-stage table is extra output: a cached result without it must never be served
    # to a job that asks for it (and the reverse), so the flag is part of the key
    from emulator.runner import run_job

    plain = Job("xeon-2017", "nitro", "kv-cache", (), 0.001, 0.0002, 3)
    staged = Job("xeon-2017", "nitro", "kv-cache", (), 0.001, 0.0002, 3, stages=True)
    assert job_key(plain) != job_key(staged)
    cache = Cache(tmp_path)
    a, b = run_jobs([plain, staged], workers=1, cache=cache)
    assert "stages" not in a and {s["stage"] for s in b["stages"]} >= {"wire (receive)"}
    assert all({"mean_wait_us", "mean_service_us", "delay_us"} <= set(s) for s in b["stages"])
    a2, b2 = run_jobs([plain, staged], workers=1, cache=cache)  # both from the cache, each its own
    assert "stages" not in a2 and b2["stages"] == b["stages"]


def test_a_pair_of_result_files_is_replaced_together_or_not_at_all(tmp_path):
    # a sweep's CSV and its summary: when the second cannot be written (here its folder is
    # a file; on a full disk the write fails), neither is replaced, no temporary is left,
    # and the error names the file
    import pytest

    from emulator.provenance import atomic_write_many

    (tmp_path / "s.csv").write_text("old\n")
    (tmp_path / "blocker").write_text("a file where a folder should be\n")
    with pytest.raises(OSError) as e:
        atomic_write_many({tmp_path / "s.csv": b"new\n", tmp_path / "blocker" / "s-summary.csv": b"new\n"})
    assert "blocker" in str(e.value.filename)
    assert (tmp_path / "s.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "s.csv"]
    atomic_write_many({tmp_path / "s.csv": b"new\n", tmp_path / "t.csv": b"new\n"})
    assert (tmp_path / "s.csv").read_text() == (tmp_path / "t.csv").read_text() == "new\n"


def test_drawing_leaves_the_callers_matplotlib_alone(tmp_path):
    # emulator.plot chose the Agg backend on import and drew with pyplot: in a notebook
    # (%matplotlib inline) the user's own figures stopped showing. Now nothing global moves.
    import subprocess
    import sys
    from pathlib import Path
    RESULTS = Path(__file__).resolve().parent.parent / "results"
    code = ("import matplotlib; matplotlib.use('pdf'); import matplotlib.pyplot as plt\n"
            "salt = matplotlib.rcParams['svg.hashsalt']\n"
            "import emulator.plot as p\n"
            f"p.headline({str(RESULTS / 'headline.csv')!r}, {str(tmp_path / 'h.png')!r})\n"
            "assert matplotlib.get_backend() == 'pdf', matplotlib.get_backend()\n"
            "assert plt.get_fignums() == [] and matplotlib.rcParams['svg.hashsalt'] == salt\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "h.svg").exists()


def test_a_results_dict_is_the_callers_to_change():
    # to_dict() handed out its cache: editing what it returned changed the next to_dict(),
    # to_json() and the replication measures read from it
    from emulator.model import load_experiment
    from emulator.simulation import Simulation
    from emulator.stats import measures
    r = Simulation(load_experiment(host="xeon-2017", architecture="nitro", workload="kv-cache",
                                   duration_s=0.0005)).run()
    want = r.to_dict()
    d = r.to_dict()
    d["usable_fraction"] = 123.0
    d["flows"].clear()
    assert r.to_dict() == want and '"usable_fraction": 123' not in r.to_json()
    assert measures(r)["usable_fraction"] == want["usable_fraction"]


def test_the_api_names_a_wrong_argument():
    # from a notebook these were bare TypeErrors, ZeroDivisionErrors, cffi's "an integer is
    # required", AttributeError on a path, a string read a character at a time, a KeyError
    # from a figure given another figure's CSV
    import math
    from pathlib import Path

    import pytest

    from emulator import plot, stats
    from emulator._core import ModelError
    from emulator.compare import compare
    from emulator.model import load_experiment
    from emulator.simulation import Simulation
    from emulator.sweep import sweep
    root = Path(__file__).resolve().parent.parent
    heavy = str(root / "examples" / "heavy-load.toml")
    exp = load_experiment(heavy, duration_s=0.001)
    vary = {"workload.flows.0.rate_per_s": [1e5]}
    for call, key in [
        (lambda: stats.replicate(exp, 3.0), "n:"), (lambda: stats.replicate(exp, 2, seed0=1.7), "seed0:"),
        (lambda: stats.replicate(exp, 2, level=0), "level:"), (lambda: stats.long_run(exp, n_batches=0), "n_batches:"),
        (lambda: stats.long_run(exp, warmup_s=math.nan), "warmup_s"), (lambda: stats.choose_warmup(exp, n_windows=0),
                                                                          "n_windows:"),
        (lambda: stats.long_run(exp, seed=1.5), "seed:"), (lambda: Simulation(exp).run(chunk_events=1.5), "chunk_events:"),
        (lambda: Simulation(3), "experiment:"), (lambda: compare(exp, 3, 2), "b:"),
        (lambda: sweep(heavy, vary="exit_cycles=1,2"), "put it in a list"),
        (lambda: sweep(heavy, vary=vary, sets="a=1"), "put it in a list"), (lambda: sweep(heavy, vary=vary, seed=1.5),
                                                                             "--seed:"),
        (lambda: plot.headline(root / "results" / "hockey.csv", "/nonexistent/x.png"), "has no column"),
    ]:
        with pytest.raises(ModelError, match=key):
            call()
    assert Simulation(heavy).run(duration_s=0.0005).usable_fraction > 0  # a path is loaded


def test_a_figure_percentile_is_sectioned_over_pooled_runs_as_vemu_run_n_gives_it():
    # a figure's p99 and its interval come from the same estimator as `vemu run -n`: the
    # quantile of the replications' requests together, its interval by sectioning (a t
    # interval over the runs' own p99s, each biased low, covered an M/M/1's p99 in 86% of
    # sets at rho 0.9: stats.quantile_ci). Same seeds, same runs: the same numbers exactly.
    from emulator.model import load_experiment
    from emulator.stats import replicate, replication_seeds

    spec = {  # M/M/1 at rho 0.9 on an off-host 1 GHz core
        "host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
        "architecture": {"name": "a", "resources": {"s": {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}},
                         "paths": {"p": {"stages": [{"on": "s", "cycles": {"dist": "exp", "mean": 1000}}]}}},
        "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 9e5,
                                             "steps": [{"path": "p"}]}]},
        "experiment": {"duration_s": 0.01, "warmup_s": 0.002, "seed": 3}}
    seeds = replication_seeds(3, 4)
    res = run_jobs([Job(None, None, None, (), None, None, s, tag=i, spec=spec, tails=True)
                    for i, s in enumerate(seeds)], workers=1)
    [row] = F._ci_rows(res, lambda r: "x", {"p99_us": lambda r: r["flows"]["f"]["latency_us"]["p99"]},
                       tails={"p99_us": (lambda r: r["flows"]["f"]["completed"], 0.99, F._tail("f"))})
    reps = replicate(load_experiment(spec), 4, seed0=3, workers=1)
    iv = reps.intervals["f.p99_us"]
    assert (row["p99_us"], row["p99_us_lo"], row["p99_us_hi"], row["p99_us_ci"]) == (iv.mean, iv.lo, iv.hi, iv.half_width)
    assert row["p99_us_biased"] == int("f.p99_us" in reps.biased)
    assert row["p99_us_lo"] < row["p99_us"] < row["p99_us_hi"]  # four runs of ~9,000 requests: a real interval
    own = [r["flows"]["f"]["latency_us"]["p99"] for r in res]
    assert row["p99_us"] != sum(own) / len(own)  # not the mean of the runs' own p99s


def test_percentile_bars_are_drawn_to_the_interval_ends_not_symmetric():
    from emulator.plot import _yerr

    pts = [{"p99_us": 10.0, "p99_us_lo": 8.0, "p99_us_hi": 15.0, "p99_us_ci": 5.0},
           {"p99_us": 20.0, "p99_us_lo": 19.0, "p99_us_hi": 30.0, "p99_us_ci": 10.0},
           {"p99_us": 30.0, "p99_us_lo": math.nan, "p99_us_hi": math.nan, "p99_us_ci": math.nan}]
    assert _yerr(pts, "p99_us", [False, True, False]) == [[2.0, 0.0, 0.0], [5.0, 0.0, 0.0]]
    # a table without the ends (a mean): ± the half-width
    assert _yerr([{"m": 1.0, "m_ci": 0.5}], "m", [False], scale=2.0) == [1.0]


def test_a_figure_with_a_nan_cell_or_a_missing_row_is_one_clear_error(tmp_path):
    """A NaN where a figure needs a number stopped matplotlib with a bare ValueError (axis
    limits, log scales); a class's missing row read as a missing column."""
    import csv as csvmod

    from emulator import plot
    from emulator._core import ModelError

    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "results"

    def edited(name: str, edit) -> Path:
        lines = (root / f"{name}.csv").read_text().splitlines()
        head = [ln for ln in lines if ln.startswith("#")]
        rows = list(csvmod.reader([ln for ln in lines if not ln.startswith("#")]))
        rows = edit(rows)
        p = tmp_path / f"{name}.csv"
        p.write_text("\n".join(head) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
        return p

    def nan_at(col: str):
        def edit(rows):
            rows[1][rows[0].index(col)] = "nan"
            return rows
        return edit

    if not (root / "sensitivity.csv").is_file():
        pytest.skip("results/ absent")
    p = edited("sensitivity", nan_at("usable_at_low"))
    with pytest.raises(ModelError, match="is not a finite number"):
        plot.sensitivity_tornado(p, tmp_path / "t.png")
    p = edited("class-latency", lambda rows: [r for r in rows if r[:2] != ["xen-pv", "kv"]])
    with pytest.raises(ModelError, match="has no row for architecture xen-pv, class kv") as e:
        plot.class_latency(p, tmp_path / "c.png")
    assert "not a finite number" not in str(e.value) and str(e.value).count(str(p)) == 1
