"""The ``vemu`` command line: exit status 0 ok, 1 a run failed, 2 bad usage or a bad model,
and every error is exactly one line on stderr, never a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Sequence

import pytest
from conftest import TANDEM, station, to_toml

from emulator import __version__
from emulator.cli import main
from emulator.model import bundled
from emulator.simulation import run

FAST = ["--duration", "2", "--warmup", "0.1"]  # ~1600 tandem requests


def _main(argv: Sequence[str]) -> int:
    """main()'s status; argparse's --version/--help exit through SystemExit, taken as the status."""
    try:
        return main(list(argv))
    except SystemExit as e:
        return int(e.code or 0)


def _one_error_line(err: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _check_design_keys(d: dict[str, Any], flow: str, resources: Sequence[str]) -> None:
    for k in ("seed", "duration_s", "warmup_s", "flows", "usable_fraction", "host_cycles", "resources", "events",
              "wall_s"):
        assert k in d, k
    f = d["flows"][flow]
    for k in ("completed", "dropped", "throughput_per_s"):
        assert k in f, k
    assert set(f["latency_us"]) >= {"mean", "p50", "p90", "p99", "p999", "max"}
    for name in resources:
        assert set(d["resources"][name]) >= {"utilization", "mean_queue", "dropped"}
    assert sum(d["host_cycles"].values()) == pytest.approx(1.0)


def test_run_json_has_the_design_keys(tandem_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["run", str(tandem_file), "--json", "--seed", "3", *FAST]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    d = json.loads(out)  # one JSON object, nothing else on stdout
    _check_design_keys(d, "jobs", ["s1", "s2", "s3"])
    assert d["seed"] == 3 and d["duration_s"] == 2.0 and d["warmup_s"] == 0.1
    assert d["flows"]["jobs"]["completed"] > 1000
    # the same numbers as the Python API gives for the same arguments
    want = run(tandem_file, seed=3, duration_s=2.0, warmup_s=0.1).to_dict()
    assert d["flows"] == json.loads(json.dumps(want["flows"]))
    assert d["resources"] == json.loads(json.dumps(want["resources"]))


def test_run_json_on_the_shared_tandem(tandem_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["run", str(tandem_path), "--json", *FAST]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    _check_design_keys(d, "jobs", ["s1", "s2", "s3"])
    assert d["seed"] == 1  # the default seed is fixed, and echoed


def test_run_text_report(tandem_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["run", str(tandem_file), "--stages", *FAST]) == 0
    out, err = capsys.readouterr()
    assert "usable fraction" in out
    assert "jobs" in out and "s3" in out
    assert "three" in out  # the per-stage table names the stages


def test_run_report_says_what_sets_the_throughput(tandem_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # xen-pv on cloud-mix saturates dom0 (the headline's explanation) while its vCPUs wait;
    # nitro's tenants saturate their own vCPUs; an open M/M/1-like tandem at rho < 1 saturates
    # nothing, so the offered load sets its throughput.
    from emulator.cli import SATURATED, _bound

    for arch, bound in (("xen-pv", "dom0"), ("nitro", "vcpu")):
        assert _main(["run", "--host", "xeon-2017", "-a", arch, "-w", "cloud-mix", "-q", "--duration", "0.005",
                      "--warmup", "0.002"]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(("bound by", "no resource")))
        assert line.startswith(f"bound by {bound} (")
    assert _main(["run", str(tandem_file), *FAST]) == 0
    assert "no resource saturated (busiest: " in capsys.readouterr().out
    # the rule itself: every resource at or above the threshold is named, busiest first
    res = {"a": {"utilization": 0.5, "mean_queue": 0.1, "units": 1}, "b": {"utilization": 1.0, "mean_queue": 9.0,
           "units": 4}, "c": {"utilization": SATURATED, "mean_queue": 2.0, "units": 1}}
    assert _bound(res) == "bound by b (100.0% busy, 9 waiting on average), c (98.0% busy, 2 waiting on average); " \
                          "next busiest: a at 50.0%"
    # below the threshold the busiest is never shown as the threshold itself
    assert _bound({"a": {"utilization": 0.97999, "mean_queue": 0.5, "units": 1}}).startswith(
        "no resource saturated (busiest: a at 97.99%)")
    # none saturated, but more waiting than units: work in bursts, and a closed loop's
    # requests pile up there (emulated on xeon-2023: 95.7% busy vCPUs, 589 waiting for 192)
    piled = {"vcpu": {"utilization": 0.957, "mean_queue": 589.0, "units": 192},
             "nvme": {"utilization": 0.16, "mean_queue": 0.0, "units": 256}}
    assert _bound(piled).startswith("no resource saturated (busiest: vcpu at 95.7%)")  # open: the load sets it
    assert _bound(piled, closed=True) == ("no resource saturated, but requests pile up at vcpu (95.7% busy, 589 waiting on "
                             "average for its 192 units): busy in bursts, idle between them, they set the throughput")


def test_run_marks_percentiles_resting_on_a_thin_tail(tandem_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The tandem at its file's 0.1 s window completes ~73 jobs: ~7 beyond the p90, ~0.7 beyond
    # the p99 (thin: fewer than 10), ~36 beyond the p50 (not). JSON lists them; the text
    # marks the two tail columns it shows and says why.
    assert _main(["run", str(tandem_file), "--json"]) == 0
    f = json.loads(capsys.readouterr().out)["flows"]["jobs"]
    assert 20 < f["completed"] < 1000 and f["thin_tail"] == ["p90", "p99", "p999"]
    assert _main(["run", str(tandem_file)]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.startswith("jobs "))
    assert row.count("*") == 2 and "fewer than 10 requests beyond this percentile" in out
    assert _main(["run", str(tandem_file), "--duration", "20", "--json"]) == 0  # ~14.6k jobs: none thin
    assert json.loads(capsys.readouterr().out)["flows"]["jobs"]["thin_tail"] == []


def test_run_report_shows_wake_ups_on_a_host_with_idle_states(capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import REPO
    assert _main(["run", str(REPO / "examples" / "idle-states.toml"), "--duration", "0.05", "--json"]) == 0
    d = json.loads(capsys.readouterr()[0])
    assert _main(["run", str(REPO / "examples" / "idle-states.toml"), "--duration", "0.05"]) == 0
    out = capsys.readouterr()[0]
    assert "wake-ups/s" in out and "wake " in out  # the column and the host-cycle category
    rate = d["resources"]["vcpu"]["wakeups"] / d["duration_s"]
    assert f"{rate:.5g}" in out
    assert 0 < rate < d["flows"]["pkts"]["throughput_per_s"]  # some packets find the core awake


def test_stage_table_shows_packets_per_interrupt(capsys: pytest.CaptureFixture[str]) -> None:
    # xen-pv on kv-cache saturates dom0: its notifications and the guest's event upcalls
    # take full batches of 64; the per-packet stages show 1; both transmit-side indirect-cost
    # stages (after the kick, and after the Tx-completion upcall, which the packet forks) are listed
    assert _main(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "kv-cache", "--stages",
                  "--duration", "0.02", "--warmup", "0.005"]) == 0
    out, _ = capsys.readouterr()
    header = next(line for line in out.splitlines() if line.startswith("flow/class"))
    assert header.split()[-1] == "batch"
    rows = [line for line in out.splitlines() if line.startswith("gets/")]  # its class, and the detached one
    batch = {line[34:62].strip(): float(line.split()[-1]) for line in rows}
    assert batch["netback notify: event-channe"] > 32
    assert batch["event upcall into the guest"] > 32
    assert batch["wire (receive)"] == 1.0
    assert sum("trap indirect cost" in line for line in rows) == 3


def test_set_changes_the_run(tandem_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["run", str(tandem_file), "--json", *FAST,
                  "--set", "workload.flows.jobs.rate_per_s=400"]) == 0
    d = json.loads(capsys.readouterr().out)
    # half the arrival rate: the first station's utilisation halves (0.2 instead of 0.4)
    assert d["resources"]["s1"]["utilization"] == pytest.approx(0.2, rel=0.25)


@pytest.mark.parametrize("argv_tail,words", [
    (["--set", "nope=3"], "nope"),
    (["--set", "garbage"], "KEY=VALUE"),
    (["--set", "architecture.resources.s1.cores=0"], "architecture.resources.s1.cores"),
    (["--duration", "-1"], "duration"),
    (["--duration", "nan"], "duration"),
    (["--seed", "-1"], "seed"),
    (["--host", "nope"], "nope"),
    (["--no-cache"], "--no-cache only applies with --replications"),
    (["--cache", "c", "--workers", "2"], "--cache and --workers only apply with --replications"),
    (["--batches", "4", "--workers", "2"], "--workers only applies with --replications"),
])
def test_bad_run_options_exit_2(argv_tail: list[str], words: str, tandem_file: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["run", str(tandem_file), "--json", *FAST, *argv_tail]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert words in _one_error_line(err)


@pytest.mark.parametrize("content,words", [
    (None, "no such file"),
    ("[host]\nname = \n", "line 2"),
    (to_toml(dict(TANDEM, host=dict(TANDEM["host"], coers=4))), "did you mean 'cores'"),
    (to_toml(dict(TANDEM, workload={"name": "w", "flows": []})), "workload.flows"),
])
def test_bad_file_exits_2_with_one_line(content: str | None, words: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "exp.toml"
    if content is not None:
        p.write_text(content)
    assert _main(["run", str(p), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_error_line(err)
    assert str(p) in line and words in line


def test_failed_run_exits_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an open flow at twice the service rate fills the default request pool (2**18) in ~0.26 s
    spec = station({"arrival": "poisson", "rate_per_s": 2e6}, {"dist": "exp", "mean": 1000}, duration_s=1.0)
    p = tmp_path / "overload.toml"
    p.write_text(to_toml(spec))
    assert _main(["run", str(p), "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "load" in _one_error_line(err)


@pytest.mark.parametrize("argv", [[], ["run"], ["run", "--json"], ["frobnicate"], ["run", "--seed", "abc", "x.toml"],
                                  ["run", "x.toml", "--no-such-option"]])
def test_bad_usage_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _one_error_line(err)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("vemu ") and __version__ in out


def test_every_help_screen_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """``vemu --help`` and each command's ``--help`` exit 0 with a usage on stdout: a bare ``%`` in
    any help string (argparse %-formats them) broke the top-level screen once, unseen by every test."""
    import argparse

    from emulator.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for argv in [[], *([c] for c in sub.choices)]:
        assert _main([*argv, "--help"]) == 0, argv
        out, err = capsys.readouterr()
        assert out.startswith("usage: vemu") and err == "", argv


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["list"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for heading in ("hosts:", "architectures:", "workloads:"):
        assert heading in out
    for kind in ("host", "architecture", "workload"):
        for name in bundled(kind):
            line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
            assert "(invalid" not in line, line  # every bundled model loads


def test_run_bundled_names_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    hosts, archs, loads = bundled("host"), bundled("architecture"), bundled("workload")
    if not (hosts and archs and loads):
        pytest.skip("no bundled models")
    assert _main(["run", "--host", hosts[0], "-a", archs[0], "-w", loads[0], "--json",
                  "--duration", "0.0005", "--warmup", "0.0001"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert 0.0 <= d["usable_fraction"] <= 1.0


def test_cli_does_not_change_its_input(tandem_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tandem_file.read_text()
    spec = copy.deepcopy(TANDEM)
    assert _main(["run", str(tandem_file), "--json", *FAST, "--set", "architecture.resources.s1.cores=2"]) == 0
    capsys.readouterr()
    assert tandem_file.read_text() == before and spec == TANDEM


def test_run_trace_shows_each_request_path(capsys) -> None:
    from emulator.cli import main
    rc = main(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "kv-cache", "--duration", "0.0005",
               "--warmup", "0", "--trace", "2", "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "request 0" in out and "request 1" in out
    # nitro's receive path, in order: the wire, the card (charged to no host category), the guest
    lines = [ln for ln in out.splitlines() if "wire (receive)" in ln or "Nitro card" in ln]
    assert lines[0].split()[4] == "nic.rx" and "card" in lines[1]
    assert main(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "kv-cache", "--trace", "-1"]) == 2


def test_run_json_carries_stages_and_trace_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    # --stages and --trace were dropped from --json output without a word
    argv = ["run", "--host", "xeon-2017", "-a", "nitro", "-w", "kv-cache", "--duration", "0.0005", "--warmup", "0",
            "--json", "-q"]
    assert _main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "stages" not in plain and "trace" not in plain
    assert _main([*argv, "--stages", "--trace", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in d.items() if k not in ("stages", "trace", "trace_lost", "wall_s")} == \
        {k: v for k, v in plain.items() if k != "wall_s"}
    from emulator.simulation import run as sim_run
    res = sim_run(host="xeon-2017", architecture="nitro", workload="kv-cache", duration_s=0.0005, warmup_s=0.0)
    assert [s["completed"] for s in d["stages"]] == [s["completed"] for s in res.stages()]
    assert {r["request"] for r in d["trace"]} == {0, 1} and d["trace_lost"] == 0
    for r in d["trace"]:  # each record's times in order, on the run's clock
        assert 0 <= r["enter_us"] <= r["start_us"] <= r["end_us"] <= r["leave_us"]
    assert d["trace"][0]["stage"] == "wire (receive)" and d["trace"][0]["parent"] is None


def test_run_trace_marks_requests_unfinished_at_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    # xen-pv saturates dom0 under kv-cache: in 1 ms hundreds of traced requests still wait there
    # at the end; each says so, rather than closing with a total as a finished request does
    assert _main(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "kv-cache", "--duration", "0.001",
                  "--warmup", "0", "--trace", "10000", "-q"]) == 0
    blocks = capsys.readouterr().out.split("\nrequest ")[1:]
    done = [b for b in blocks if " total " in b or " done at " in b]
    unfinished = [b for b in blocks if "unfinished at the end of the run" in b]
    assert done and unfinished and len(done) + len(unfinished) == len(blocks)
    # a finished gets request has its last stage, the transmit wire; an unfinished one never does
    assert all("wire (transmit)" in b.splitlines()[-2] for b in done if b.split()[2] == "gets" and "forked" not in b)
    assert not any("wire (transmit)" in b for b in unfinished)


# -- the command-line audit: each case below crashed, hung, ran before failing, or blamed
# -- the file for a flag's value; now each is exit 2 and one line, before any run

def _exits_2_with(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert _main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_error_line(err)
    assert words in line, line
    return line


@pytest.mark.parametrize("flag,value", [("--duration", "1e-15"), ("--duration", "nan"), ("--duration", "-1"),
                                        ("--warmup", "inf"), ("--warmup", "-1"), ("--seed", "-1"),
                                        ("--seed", str(2**64))])
@pytest.mark.parametrize("command", ["run", "theory", "compare", "sweep"])
def test_bad_window_or_seed_names_the_flag_on_every_command(command: str, flag: str, value: str, tandem_file: Path,
                                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = {"run": ["run", str(tandem_file)], "theory": ["theory", str(tandem_file)],
            "compare": ["compare", str(tandem_file), str(tandem_file), "-n", "2", "--workers", "1"],
            "sweep": ["sweep", str(tandem_file), "--vary", "architecture.resources.s1.cores=1,2", "--workers", "1",
                      "--out", str(tmp_path / "s.csv"), "--cache", str(tmp_path / "cache")]}[command]
    line = _exits_2_with([*argv, f"{flag}={value}"], flag, capsys)
    assert str(tandem_file) not in line  # the value came from the command line, not the file
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("argv_tail,words", [
    (["-n", "99999999999999999999"], "--replications"),
    (["-n", "1"], "--replications"),
    (["--workers", "0"], "--workers"),
    (["--set", "architecture.paths.net_rx.stages.\u00b2=1"], "no list item"),
])
def test_bad_compare_options_exit_2(argv_tail: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    _exits_2_with(["compare", "xen-pv", "nitro", "-n", "2", "--duration", "0.0005", *argv_tail], words, capsys)


@pytest.mark.parametrize("argv_tail,words", [
    (["--sample", "random:99999999999999999999"], "--sample"),
    (["--sample", "lhs:2", "--sample-seed", "-1"], "--sample-seed"),
    (["-r", "99999999999999999999"], "--replications"),
    (["--vary", "exit_indirect_cycles=1:1000:1000", "--vary", "ipi_exit_cycles=1:1000:1000"], "runs, beyond"),
    (["--vary", "x=" + "[" * 5000 + "]" * 5000], "nested too deeply"),
    (["--vary", "architecture.paths.net_rx.stages.\u00b2=1,2"], "no list item"),
    (["--out", ""], "--out"),
    # one key in two spellings: the first column would change nothing
    (["--vary", "workload.flows.0.clients=1,2", "--vary", "workload.flows.gets.clients=3,4"], "varied twice"),
    (["--vary", "host.params.exit_cycles=1,2"], "are one key (host.params.exit_cycles), varied twice"),
    (["--executor", "dask", "--scheduler", " "], "--scheduler"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers"),
])
def test_bad_sweep_options_exit_2(argv_tail: list[str], words: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _exits_2_with(["sweep", "--host", "xeon-2017", "-a", "nitro", "-w", "kv-cache", "--vary", "exit_cycles=1000:2000:2",
                   "--duration", "0.0005", "--workers", "1", "--out", str(tmp_path / "s.csv"),
                   "--cache", str(tmp_path / "cache"), *argv_tail], words, capsys)


_SWEEP = ["sweep", "--host", "xeon-2017", "-a", "nitro", "-w", "kv-cache", "--vary", "exit_cycles=1000:2000:2",
          "--duration", "0.0005", "--workers", "1"]
_REPRODUCE = ["reproduce", "--quick", "--only", "validation"]
_BENCH = ["bench", "--requests", "1000", "--repeats", "1"]


@pytest.mark.parametrize("argv,out", [
    (_SWEEP, "{tmp}"),  # a folder where the CSV goes
    (_SWEEP, "{file}/x.csv"),  # under a file
    (_SWEEP, "/proc/vemu-audit/x.csv"),  # somewhere nothing can be written
    (_REPRODUCE, "{file}"),  # a file where the output folder goes
    (_REPRODUCE, "{file}/sub"),
    (_REPRODUCE, "/proc/vemu-audit"),
    (_BENCH, "{tmp}"),
    (_BENCH, "/proc/vemu-audit/x.csv"),
])
def test_an_output_that_cannot_be_written_is_refused_before_any_run(argv: list[str], out: str, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if out.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    cache = [] if argv is _BENCH else ["--cache", str(tmp_path / "cache")]
    _exits_2_with([*argv, *cache, "--out", out.format(tmp=tmp_path, file=a_file)], "--out", capsys)
    assert a_file.read_text() == "keep me\n"
    assert not (tmp_path / "cache").exists()  # nothing ran


@pytest.mark.parametrize("address", ["foo://bar:1", "not an address", "127.0.0.1:8799x"])
def test_a_malformed_scheduler_address_is_a_usage_error(address: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    _exits_2_with([*_SWEEP, "--executor", "dask", "--scheduler", address, "--out", str(tmp_path / "s.csv"),
                   "--cache", str(tmp_path / "cache")], "--scheduler", capsys)
    # ...also when every run is in the cache, so that no client would be made
    assert _main([*_SWEEP, "--out", str(tmp_path / "s.csv"), "--cache", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    _exits_2_with([*_SWEEP, "--executor", "dask", "--scheduler", address, "--out", str(tmp_path / "s.csv"),
                   "--cache", str(tmp_path / "cache")], "--scheduler", capsys)


def test_an_output_that_is_not_a_regular_file_is_never_replaced(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # a device or FIFO given as --out is refused before any run (as root, `--out /dev/null`
    # used to replace the device with a file); a symbolic link is written through
    import os

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    _exits_2_with([*_SWEEP, "--out", str(fifo), "--cache", str(tmp_path / "cache")], "not a regular file", capsys)
    assert fifo.is_fifo() and not (tmp_path / "cache").exists()
    if Path("/dev/null").exists():
        _exits_2_with([*_SWEEP, "--out", "/dev/null", "--cache", str(tmp_path / "cache")], "not a regular file", capsys)
        assert Path("/dev/null").is_char_device()
    # a link is checked where it leads, before any run: into a place nothing can be written, or a loop
    if Path("/proc/version").is_file():
        (tmp_path / "proc.csv").symlink_to("/proc/version")
        _exits_2_with([*_SWEEP, "--out", str(tmp_path / "proc.csv"), "--cache", str(tmp_path / "cache")], "/proc",
                      capsys)
    (tmp_path / "loop1.csv").symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(tmp_path / "loop1.csv")
    _exits_2_with([*_SWEEP, "--out", str(tmp_path / "loop1.csv"), "--cache", str(tmp_path / "cache")], "a loop", capsys)
    assert not (tmp_path / "cache").exists()
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(target)
    assert main([*_SWEEP, "--out", str(tmp_path / "link.csv"), "--cache", str(tmp_path / "cache")]) == 0
    assert (tmp_path / "link.csv").is_symlink() and target.read_text().startswith("# vemu_version")


def test_an_unwritable_cache_from_the_environment_is_refused_before_any_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # VEMU_CACHE (or the default) is checked like --cache: before the first run, not after it
    import emulator.runner

    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    monkeypatch.setenv("VEMU_CACHE", str(a_file))
    monkeypatch.setattr(emulator.runner, "DEFAULT_CACHE", a_file)
    _exits_2_with([*_SWEEP, "--out", str(tmp_path / "s.csv")], "$VEMU_CACHE", capsys)
    _exits_2_with([*_REPRODUCE, "--out", str(tmp_path / "r")], "$VEMU_CACHE", capsys)
    assert a_file.read_text() == "keep me\n" and not (tmp_path / "s.csv").exists()


def test_json_is_strict_with_null_for_what_is_undefined(capsys: pytest.CaptureFixture[str]) -> None:
    # a window too short for any completion: latencies, intervals and lag-1s are undefined,
    # and come out as null (RFC 8259 has no NaN; jq and browsers refuse it)
    def strict(text: str) -> Any:
        def refuse(c: str) -> Any:
            raise ValueError(f"non-standard JSON constant {c}")
        return json.loads(text, parse_constant=refuse)

    base = ["--host", "xeon-2017", "-w", "cloud-mix", "--duration", "0.00001", "--json"]
    for argv in (["run", "-a", "xen-pv", *base], ["run", "-a", "xen-pv", "-n", "2", *base],
                 ["compare", "xen-pv", "nitro", "-n", "2", "--duration", "0.00001", "--json"]):
        assert main(argv) == 0
        d = strict(capsys.readouterr().out)
        assert d
    # nothing completed in the window: the comparison's latencies are null, not dropped
    assert d["measures"]["mix.mean_us"]["a"]["mean"] is None


def test_python_m_emulator_cli_keeps_usage_errors_at_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "emulator.cli", "sweep", "--host", "xeon-2017", "-a", "nitro", "-w",
                        "kv-cache", "--vary", "exit_cycles=1,2", "--workers", "0"], capture_output=True, text=True)
    assert p.returncode == 2 and "--workers" in p.stderr and "internal error" not in p.stderr


def test_an_interrupted_compare_exits_130_without_finishing_the_queued_runs(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    # 400 pairs of 2-second windows on a worker pool: minutes of queued work; Ctrl-C must not wait for it
    p = subprocess.Popen([sys.executable, "-m", "emulator.cli", "compare", "xen-pv", "nitro", "-n", "400",
                          "--duration", "2", "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    children = Path(f"/proc/{p.pid}/task/{p.pid}/children")
    if children.exists():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:  # until the worker processes exist
            if len(children.read_text().split()) >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # the workers are running their first replications
    else:
        time.sleep(5)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail("the interrupted compare waited for its queued runs")
    if p.returncode == 0:
        pytest.skip("the runs finished before they could be interrupted")
    assert p.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "vemu: interrupted", err


def test_run_refuses_unknown_keywords() -> None:
    # run(seeed=5) ran the file's seed and duration without a word
    with pytest.raises(TypeError, match="seeed"):
        run(host="xeon-2017", architecture="nitro", workload="web", duration_s=0.001, seeed=5)


def test_no_warmup_counts_what_happens_at_time_zero(tmp_path: Path) -> None:
    # 20 closed clients that do not think issue at t = 0 into a 1 us stage: with no warm-up
    # the window is [0, end], so those 20 are created in it (the stats were reset after
    # running to t = 0, which dropped them: 10 created in 10 us instead of 30)
    doc = station({"arrival": "closed", "clients": 20, "think_us": 0}, {"dist": "fixed", "mean": 1000}, duration_s=1e-5, warmup_s=0.0)
    f = run(doc).to_dict()["flows"]
    (flow,) = f.values()
    assert flow["created"] == flow["completed"] + 20  # every completion's request, and the 20 in flight
    assert flow["completed"] == 10


def test_stages_charge_no_account_off_the_cpus(capsys: pytest.CaptureFixture[str]) -> None:
    # the wire and the disk are not host cycles: their stages read '-' under account, as
    # --trace shows them, not 'tenant'
    assert _main(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "cloud-mix", "--duration", "0.001",
                  "--warmup", "0.0005", "--stages"]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines() if "wire (receive)" in ln or "NVMe read" in ln]
    assert rows and all(r[r.index("nic.rx" if "nic.rx" in r else "nvme") + 1] == "-" for r in rows)


@pytest.mark.parametrize("argv,flag", [
    (["bench", "--requests", "1000000000000", "--repeats", "1"], "--requests"),  # past the engine's clock: blamed
    (["bench", "--requests", "999"], "--requests"),                              # on the reference model before
    (["bench", "--repeats", "0"], "--repeats"),
    (["bench", "--repeats", "100000"], "--repeats"),
])
def test_bench_flags_out_of_range_exit_2(argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    _exits_2_with(argv, flag, capsys)


def test_compare_and_run_n_keep_their_replications_in_the_cache(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    argv = ["compare", "nitro", "sriov", "-n", "2", "--duration", "0.001", "--warmup", "0.0005", "--json",
            "--cache", str(cache)]
    assert _main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    entries = sorted(cache.rglob("*.json"))
    assert len(entries) == 4  # two sides x two replications, each stored as it finished
    assert _main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first and sorted(cache.rglob("*.json")) == entries
    run = ["run", "--host", "xeon-2017", "-a", "nitro", "-w", "cloud-mix", "-n", "2", "--duration", "0.001",
           "--warmup", "0.0005", "--cache", str(cache), "--json"]
    assert _main(run) == 0
    capsys.readouterr()
    assert len(list(cache.rglob("*.json"))) == 4  # nitro's two replications were already there
    (tmp_path / "a-file").write_text("x")  # a cache that cannot be written is refused before any run
    _exits_2_with([*argv[:-2], "--cache", str(tmp_path / "a-file" / "sub")], "--cache", capsys)


def test_run_warns_when_littles_law_says_the_window_is_short(capsys: pytest.CaptureFixture[str]) -> None:
    # 1 Gb/s under cloud-mix: ~6 ms in the system per request, in a 10 ms window; the figures
    # were printed as if steady (X.R = 607 in flight against 1,024 clients: the window's edges)
    base = ["run", "--host", "xeon-2017", "-a", "nitro", "-w", "cloud-mix", "--warmup", "0.002"]
    assert _main([*base, "--set", "host.devices.nic.gbps=1", "--duration", "0.01"]) == 0
    warned = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("! mix: Little's law is off by")]
    # -42% with 2 ms of warm-up (-50% with the default 1 ms): far beyond the 5% the warning
    # allows, whatever the draws
    assert len(warned) == 1 and int(warned[0].split("off by ")[1].split("%")[0]) <= -30
    assert _main([*base, "--duration", "0.005"]) == 0  # at 25 Gb/s 5 ms is ample: no warning
    assert not [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("!")]


def test_compare_says_what_it_compared(capsys: pytest.CaptureFixture[str]) -> None:
    # a comparison at 50 Gb/s read like one at 25: neither the text nor the JSON named the
    # host, the workload, the window or the overrides both sides had
    argv = ["compare", "xen-pv", "nitro", "--set", "host.devices.nic.gbps=50", "-n", "2", "--duration", "0.002"]
    assert _main([*argv, "--json", "--no-cache"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["sets"], d["host"], d["workload"], d["duration_s"], d["warmup_s"]) == \
        (["host.devices.nic.gbps=50"], "xeon-2017", "cloud-mix", 0.002, pytest.approx(0.0002))
    assert _main([*argv, "--no-cache"]) == 0
    assert ("on host xeon-2017, workload cloud-mix; each 0.002 s after 0.0002 s warm-up; both with "
            "host.devices.nic.gbps=50") in capsys.readouterr().out


def test_json_stages_have_no_account_off_the_cpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "cloud-mix", "--duration", "0.001",
                  "--warmup", "0.0005", "--stages", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    kinds = {k: v["kind"] for k, v in d["resources"].items()}
    assert all((s["account"] is None) == (s["resource"] is None or kinds[s["resource"]] != "cpu") for s in d["stages"])
    assert {s["resource"] for s in d["stages"] if s["account"] is None} >= {"nic.rx", "nic.tx", "nvme"}


def test_littles_law_is_not_judged_on_a_flow_with_drops(capsys: pytest.CaptureFixture[str]) -> None:
    # a dropped request was in flight but has no latency: the law cannot close, however long
    # the run (a 1 s run with drops was told to run longer)
    doc = station({"arrival": "closed", "clients": 4, "think_us": 1.0}, {"dist": "fixed", "mean": 1000},
                  duration_s=0.01, warmup_s=0.001, capacity=0)
    d = run(doc).to_dict()
    assert d["flows"]["f"]["dropped"] > 0
    from emulator.cli import format_result, little_gap
    assert little_gap(d["flows"]["f"]) is None and "Little's law" not in format_result(d)


def test_compare_records_each_sides_window_when_they_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = (tmp_path / "a.toml"), (tmp_path / "b.toml")
    for f, dur, warm in ((a, 0.004, 0.001), (b, 0.002, 0.0)):
        doc = station({"arrival": "poisson", "rate_per_s": 1e5}, {"dist": "exp", "mean": 5000}, duration_s=dur,
                      warmup_s=warm)
        f.write_text(to_toml(doc))
    assert _main(["compare", str(a), str(b), "-n", "2", "--json", "--no-cache"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["duration_s"] == {"a": 0.004, "b": 0.002} and d["warmup_s"] == {"a": 0.001, "b": 0.0}


def test_no_cache_runs_where_the_cache_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("VEMU_CACHE", str(tmp_path / "a-file" / "cache"))
    base = ["--host", "xeon-2017", "-n", "2", "--duration", "0.001", "--warmup", "0.0002", "--json", "--no-cache"]
    assert _main(["run", "-a", "nitro", "-w", "web", *base]) == 0
    assert _main(["compare", "nitro", "sriov", "-w", "web", *base]) == 0
    capsys.readouterr()
    # asked to cache there: refused before any run
    assert _main(["run", "-a", "nitro", "-w", "web", *base[:-1], "--cache", str(tmp_path / "a-file" / "c")]) == 2


@pytest.mark.parametrize("argv,words", [
    # a --set both sides take that only one has: which side, and its architecture
    (["compare", "xen-pv", "nitro", "--set", "netback_rx_cycles=1"], "B (nitro): "),
    # a misspelt host is named, not taken for "A and B are the same experiment"
    (["compare", "kvm-virtio", "kvm-virtio", "--host", "xeon2017"], "did you mean 'xeon-2017'"),
])
def test_compare_errors_say_which_side_and_what(argv: list[str], words: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _exits_2_with(argv, words, capsys)


def test_a_json_trace_charges_no_category_off_the_cpus(capsys: pytest.CaptureFixture[str]) -> None:
    # the text trace shows '-' for a wire stage (its time is no host cycle); the JSON said "tenant"
    assert _main(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "kv-cache", "--duration", "0.0005",
                  "--set", "workload.flows.0.clients=1", "--trace", "1", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)["trace"]
    wire = [r for r in recs if r["resource"] in ("nic.rx", "nic.tx")]
    assert wire and all(r["account"] is None for r in wire)
    assert all(r["account"] for r in recs if r["resource"] in ("vcpu", "dom0"))


@pytest.mark.parametrize("argv,words", [
    # `--set KEY VALUE` (no '='): VALUE became the spec; the error was "3100: no such file"
    (["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "cloud-mix", "--set", "exit_cycles", "3100"],
     "--set: 'exit_cycles' is not KEY=VALUE"),
    (["show", "xen_pv"], "did you mean 'xen-pv'?"),
])
def test_a_slip_is_named_for_what_it_is(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = _exits_2_with(argv, words, capsys)
    assert not line.startswith("vemu: vemu")


def test_an_auto_warm_up_that_cut_nothing_says_so() -> None:
    # from an empty start there is a transient; near saturation MSER-5 cut nothing in 58% of
    # 5 ms pilots at rho 0.9 (the mean then read 2% low), and the run said only "converged"
    from types import SimpleNamespace

    from emulator.cli import _warmup_note
    w = SimpleNamespace(series=[1.0] * 200, window_s=1e-5, measure="f.mean_us", warmup_s=0.0, converged=True, judged=200)
    assert "cut nothing" in _warmup_note(w)
    assert "cut nothing" not in _warmup_note(SimpleNamespace(**(vars(w) | {"warmup_s": 1e-4})))


# -- names that collide in tables, paths the file system refuses ----------------------

def _serve_spec(flow: str = "f", account: str = "tenant") -> dict[str, Any]:
    return {"experiment": {"duration_s": 0.001},
            "host": {"name": "h", "cores": 2, "ghz": 1.0, "memory_gib": 1},
            "architecture": {"name": "a", "params": {"usable_fraction": 1.0}, "paths": {"serve": {"stages": [
                {"name": "svc", "on": "vcpu", "cycles": 500, "account": account}]}}},
            "workload": {"name": "w", "flows": [{"name": flow, "arrival": "poisson", "rate_per_s": 100000,
                                                 "steps": [{"path": "serve"}]}]}}


@pytest.mark.parametrize("flow", ["host_cycles", "utilization"])
def test_a_flow_named_like_a_measure_family_is_refused_before_any_run(flow, tmp_path, capsys):
    # a sweep's columns host_cycles.CATEGORY and utilization.RESOURCE sit beside FLOW.MEASURE:
    # a flow of either name (and a category or resource named like a measure) would write two
    # columns of one name, the second overwriting the first
    spec = tmp_path / "x.toml"
    spec.write_text(to_toml(_serve_spec(flow, account="mean_us")))
    out = tmp_path / "s.csv"
    assert _main(["sweep", str(spec), "-q", "--vary", "workload.flows.0.rate_per_s=1e5,2e5", "-r", "2",
                  "--no-cache", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "workload.flows[0].name" in line and f"'{flow}'" in line
    assert not out.exists()


def test_a_varied_key_named_like_a_measure_column_is_refused(tmp_path, capsys):
    spec = tmp_path / "x.toml"
    spec.write_text(to_toml(_serve_spec()))
    assert _main(["sweep", str(spec), "-q", "--vary", "usable_fraction=100,200", "--no-cache",
                  "--out", str(tmp_path / "s.csv")]) == 2
    assert "'usable_fraction' is a column of the sweep table" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("n", [300, 250])
def test_an_output_name_too_long_is_a_usage_error_before_any_run(n, tmp_path, capsys):
    # 300 bytes: the name itself; 250: the temporary name a result is first written under
    # (".NAME.XXXXXXXX.tmp", 14 bytes more) passes the file system's 255
    out = tmp_path / ("a" * (n - 4) + ".csv")
    spec = tmp_path / "x.toml"
    spec.write_text(to_toml(_serve_spec()))
    assert _main(["sweep", str(spec), "-q", "--vary", "workload.flows.0.rate_per_s=1e5,2e5", "--no-cache",
                  "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--out" in line and ("too long" in line or "cannot write" in line)


def test_show_tells_a_file_that_is_not_a_regular_one_from_a_missing_one(capsys):
    assert _main(["show", "/dev/null"]) == 2
    assert "is not a regular file" in _one_error_line(capsys.readouterr().err)
    assert _main(["show", "/no/such/model.toml"]) == 2
    assert "no such model file" in _one_error_line(capsys.readouterr().err)


def test_an_error_naming_user_text_with_any_line_break_is_one_line(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # a resource name with every character str.splitlines() breaks at (not only \n and \r):
    # the message names it, escaped, on one line
    import emulator.cli as cli

    breaks = "".join(chr(i) for i in range(0x110000) if len(f"a{chr(i)}b".splitlines()) == 2)
    assert set(breaks) == cli._LINE_BREAKS
    p = tmp_path / "e.toml"
    p.write_text('[experiment]\nhost = "xeon-2017"\narchitecture = "nitro"\nworkload = "web"\n'
                 f'[set]\n"architecture.paths.net_rx.stages.0.on" = {json.dumps("x" + breaks + "y")}\n')
    assert _main(["run", str(p)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "unknown resource" in line and "\\u2028" in line and "\\x0b" in line


def test_stage_table_shows_every_pass_of_a_repeated_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a step with count = 3 passes its stage three times; the table showed the first pass
    # only, so its rows summed to 0.79 us of a 1.39 us mean latency. Every pass is a row now,
    # and the rows (wait + service) sum to the flow's mean latency
    doc = {"host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
           "architecture": {"name": "a", "resources": {"s": {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}},
                            "paths": {"p": {"stages": [{"name": "svc", "on": "s",
                                                        "cycles": {"dist": "exp", "mean": 300}}]}}},
           "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 5e5,
                                                "steps": [{"path": "p", "count": 3}]}]},
           "experiment": {"duration_s": 0.05, "warmup_s": 0.005}}
    p = tmp_path / "c.toml"
    p.write_text(to_toml(doc))
    assert _main(["run", str(p), "-q", "--stages", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [s["visit"] for s in d["stages"]] == [1, 2, 3]
    total = sum(s["mean_wait_us"] + s["mean_service_us"] for s in d["stages"])
    assert total == pytest.approx(d["flows"]["f"]["latency_us"]["mean"], rel=0.01)  # window edges only
    assert _main(["run", str(p), "-q", "--stages"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("f/f")]
    assert [ln.split()[2] for ln in rows] == ["svc", "svc", "svc"] and "#2" in rows[1] and "#3" in rows[2]


def test_a_flow_held_at_a_throttle_is_named(capsys) -> None:
    """One throttled vector for a whole guest (teaching exercise 10c): the vCPUs are 75%
    idle yet ~1,000 requests wait, all at the throttled interrupt stage, whose services are
    full batches; the verdict names that stage, not only the resource it sits on. Without
    the single queue nothing is held there (the vCPUs saturate) and nothing is said."""
    base = ["run", "--host", "xeon-2017", "-a", "sriov", "-w", "cloud-mix", "--set", "vf_irq_throttle_us=125",
            "--duration", "0.02", "--warmup", "0.005"]
    assert main(base + ["--set", "architecture.paths.net_rx.stages.*.queues=1"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("held at a throttle"))
    assert "'device interrupt through the hypervisor (external-interrupt exit)'" in line
    assert "sriov.toml:paths.net_rx.stages[1], one service per 125 us, 64 of at most 64 per service" in line
    assert main(base) == 0
    assert "held at a throttle" not in capsys.readouterr().out


def test_stages_print_long_stage_names_whole(capsys) -> None:
    """The interrupt stages differ only late in their names ('... (external-interrupt
    exit)'); a 36-character column cut them to the same text."""
    assert main(["run", "--host", "xeon-2017", "-a", "sriov", "-w", "kv-cache", "--duration", "0.002",
                 "--warmup", "0.0005", "--stages"]) == 0
    out = capsys.readouterr().out
    assert " device interrupt through the hypervisor (external-interrupt exit) " in out
