"""Every class of mistake gets one clear line: through ``vemu run`` (``emulator.cli.main``),
exit status 2, exactly one line on stderr naming the file, the key path and what is
allowed, and never a traceback.

One table, one row per mistake: the bad input (a change to the inline tandem experiment, a
raw file, or command-line arguments) and fragments the message must hold. Rows are grouped
by class: the file itself, TOML syntax, unknown keys, wrong types, out of range, NaN and
infinity, unknown references, structure, absurd sizes (refused before anything is
allocated, the limit in the message), ``--set`` and the command line's own values.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import TANDEM, to_toml
from emulator.cli import main

Doc = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A change at a dotted path (list items by index); value None deletes the key."""

    def change(doc: Doc) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = doc
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            del node[keys[-1]]
        elif isinstance(node, list) and keys[-1] == len(node):
            node.append(copy.deepcopy(value))
        else:
            node[keys[-1]] = copy.deepcopy(value)

    return change


def _both(*changes: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        for c in changes:
            c(doc)

    return change


STAGE0 = "architecture.paths.tandem.stages.0"
FLOW0 = "workload.flows.0"
CPU = {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}

# (id, change to the tandem experiment, extra argv, fragments the one stderr line must hold)
MODEL_CASES: list[tuple[str, Callable[[Doc], None], list[str], list[str]]] = [
    # unknown or misspelled keys: the closest valid name
    ("top-level key", _set("hots", {"name": "x"}), [], ["hots", "did you mean 'host'"]),
    ("host key", _set("host.coers", 2), [], ["host.coers", "did you mean 'cores'"]),
    ("stage key", _set(f"{STAGE0}.cylces", 5), [], ["architecture.paths.tandem.stages[0].cylces", "'cycles'"]),
    ("flow key", _set(f"{FLOW0}.rate_per_sec", 5), [], ["workload.flows[0].rate_per_sec", "'rate_per_s'"]),
    ("experiment key", _set("experiment", {"duraton_s": 1}), [], ["experiment.duraton_s", "'duration_s'"]),
    ("resource key", _set("architecture.resources.s1.gzh", 1), [], ["architecture.resources.s1.gzh", "'ghz'"]),
    ("dist key", _set(f"{STAGE0}.cycles", {"dist": "exp", "mean": 5, "sd": 1}), [],
     ["stages[0].cycles.sd", "allowed: dist, mean, cv"]),
    # wrong types
    ("string for integer", _set("host.cores", "many"), [], ["host.cores", "integer", "'many'"]),
    ("boolean for number", _set("host.ghz", True), [], ["host.ghz", "must be a number"]),
    ("string for boolean", _set("architecture.resources.s1.on_host", "no"), [], ["on_host", "true or false"]),
    ("table for list", _set("workload.flows", {"a": 1}), [], ["workload.flows", "must be a list"]),
    ("number for stage", _set("architecture.paths.tandem.stages", [5]), [], ["stages[0]", "must be a table"]),
    ("number for name", _set("host.name", 3), [], ["host.name", "must be a string"]),
    ("list for number", _set(f"{FLOW0}.rate_per_s", [800]), [], ["rate_per_s", "must be a number"]),
    ("date for number", _set("host.memory_gib", "__date__"), [], ["host.memory_gib", "must be a number"]),
    # out of range
    ("zero cores", _set("host.cores", 0), [], ["host.cores", "[1, 1048576]"]),
    ("negative rate", _set(f"{FLOW0}.rate_per_s", -5), [], ["workload.flows[0].rate_per_s", "(0, 1e+12]"]),
    ("uniform too wide", _set(f"{STAGE0}.cycles", {"dist": "uniform", "mean": 5, "cv": 0.9}), [],
     ["stages[0].cycles.cv", "1/sqrt(3)"]),
    ("batch zero", _set(f"{STAGE0}.batch", 0), [], ["stages[0].batch", "[1, 65536]"]),
    ("capacity below -1", _set("architecture.resources.s1.capacity", -2), [], ["resources.s1.capacity", "[-1,"]),
    ("priority", _set(f"{STAGE0}.priority", 5000), [], ["stages[0].priority", "[-1000, 1000]"]),
    ("negative mean", _set(f"{STAGE0}.cycles", {"dist": "exp", "mean": -1}), [], ["stages[0].cycles.mean", "[0,"]),
    ("seed in file", _set("experiment", {"seed": -3}), [], ["experiment.seed", "[0,"]),
    ("fractional integer", _set("host.cores", 1.5), [], ["host.cores", "integer"]),
    ("ghz zero", _set("host.ghz", 0), [], ["host.ghz", "(0, 100]"]),
    # NaN and infinity
    ("nan ghz", _set("host.ghz", math.nan), [], ["host.ghz", "finite"]),
    ("inf rate", _set(f"{FLOW0}.rate_per_s", math.inf), [], ["rate_per_s", "finite"]),
    ("nan mean", _set(f"{STAGE0}.cycles", {"dist": "exp", "mean": math.nan}), [], ["stages[0].cycles.mean", "finite"]),
    ("-inf delay", _set(f"{STAGE0}.delay_us", -math.inf), [], ["stages[0].delay_us", "finite"]),
    ("nan cores", _set("host.cores", math.nan), [], ["host.cores", "integer"]),
    ("nan param", _set("host.params", {"x": math.nan}), [], ["host.params.x", "finite"]),
    # unknown references
    ("unknown resource", _set(f"{STAGE0}.on", "s9"), [], ["stages[0].on", "unknown resource 's9'", "s1"]),
    ("unknown path", _set(f"{FLOW0}.steps.0.path", "tandm"), [], ["workload.flows[0].steps[0].path", "'tandem'"]),
    ("unknown param", _set(f"{STAGE0}.cycles", "exit_cycls"), [], ["stages[0].cycles", "unknown param 'exit_cycls'"]),
    ("unknown param as mean", _set(f"{STAGE0}.cycles", {"dist": "exp", "mean": "nope"}), [],
     ["stages[0].cycles.mean", "unknown param 'nope'"]),
    ("unknown distribution", _set(f"{STAGE0}.cycles", {"dist": "gauss", "mean": 5}), [],
     ["stages[0].cycles.dist", "fixed, exp, lognormal, uniform"]),
    ("unknown arrival", _set(f"{FLOW0}.arrival", "poison"), [], ["flows[0].arrival", "'poisson'"]),
    ("unknown resource kind", _set("architecture.resources.s1.kind", "gpu"), [], ["resources.s1.kind", "cpu, link, server"]),
    ("unknown bundled host", _both(_set("host", None), _set("experiment", {"host": "xeon-2071"})), [],
     ["experiment.host", "no bundled host 'xeon-2071'", "'xeon-2017'"]),
    ("bundled name is a path", _both(_set("host", None), _set("experiment", {"host": "../hosts/xeon-2017"})), [],
     ["experiment.host", "not a bundled host name"]),
    ("unknown resource in an unused path", _set("architecture.paths.spare", {"stages": [{"on": "nic0"}]}), [],
     ["architecture.paths.spare.stages[0].on", "unknown resource 'nic0'"]),
    ("unknown param in an unused path",
     _set("architecture.paths.spare", {"stages": [{"on": "s1", "cycles": "nope"}]}), [],
     ["architecture.paths.spare.stages[0].cycles", "unknown param 'nope'"]),
    # structure
    ("reserve > host cores", _set("architecture.reserve", {"cores": 1}), [], ["architecture.reserve.cores", "at most 0"]),
    ("reserve > host memory", _set("architecture.reserve", {"memory_gib": 64}), [],
     ["architecture.reserve.memory_gib", "has 1 GiB"]),
    ("on-host cores > reserve", _both(_set("host.cores", 4), _set("architecture.resources.s1.on_host", True),
                                      _set("architecture.resources.s1.ghz", None)), [],
     ["architecture.reserve.cores", "reserve is 0"]),
    ("empty flows", _set("workload.flows", []), [], ["workload.flows", "at least one flow"]),
    ("empty steps", _set(f"{FLOW0}.steps", []), [], ["workload.flows[0].steps", "at least one step"]),
    ("empty stages", _set("architecture.paths.tandem.stages", []), [], ["paths.tandem.stages", "at least one stage"]),
    ("empty mix", _both(_set(f"{FLOW0}.steps", None), _set(f"{FLOW0}.mix", [])), [],
     ["workload.flows[0].mix", "at least one request class"]),
    ("steps and mix", _set(f"{FLOW0}.mix", [{"name": "a", "weight": 1, "steps": [{"path": "tandem"}]}]), [],
     ["workload.flows[0]", "exactly one of `steps` or `mix`"]),
    ("no paths", _set("architecture.paths", None), [], ["architecture.paths", "is required"]),
    ("closed flow with a rate", _set(f"{FLOW0}.arrival", "closed"), [], ["flows[0].rate_per_s", "open flow"]),
    ("duplicate flow", _set("workload.flows.1", {"name": "jobs", "arrival": "poisson", "rate_per_s": 1,
                                                 "steps": [{"path": "tandem"}]}), [], ["workload.flows", "used twice"]),
    ("duplicate class", _both(_set(f"{FLOW0}.steps", None), _set(f"{FLOW0}.mix", [
        {"name": "a", "weight": 1, "steps": [{"path": "tandem"}]}, {"name": "a", "weight": 1, "steps": [{"path": "tandem"}]}])),
     [], ["workload.flows[0].mix", "'a' is used twice"]),
    ("host device named vcpu", _set("host.devices", {"vcpu": {"kind": "link", "gbps": 1}}), [],
     ["host.devices.vcpu", "built in"]),
    ("architecture resource named vcpu", _set("architecture.resources.vcpu", CPU), [],
     ["architecture.resources.vcpu", "built in"]),
    ("device and resource share a name", _set("host.devices", {"s1": {"kind": "link", "gbps": 1}}), [],
     ["resources.s1", "used by both"]),
    ("param in host and architecture", _both(_set("host.params", {"x": 1}), _set("architecture.params", {"x": 2})), [],
     ["params.x", "both the host and the architecture"]),
    ("engine category", _set(f"{STAGE0}.account", "idle"), [], ["stages[0].account", "reserved for the engine"]),
    ("bad category name", _set(f"{STAGE0}.account", "my cat!"), [], ["stages[0].account", "not a category name"]),
    ("cycles on a link", _both(_set("host.devices", {"nic": {"kind": "link", "gbps": 10}}),
                               _set(f"{STAGE0}.on", "nic")), [], ["stages[0].cycles", "link"]),
    ("server without service time", _set("host.devices", {"ssd": {"kind": "server", "servers": 2}}), [],
     ["host.devices.ssd.service_us", "is required"]),
    ("no host", _set("host", None), [], ["experiment.host", "inline [host] table"]),
    ("named and inline host", _set("experiment", {"host": "xeon-2017"}), [], ["experiment.host", "keep one"]),
    ("delay stage with cycles", _set("architecture.paths.tandem.stages.0", {"delay_us": 1, "cycles": 5}), [],
     ["stages[0].cycles", "only a stage with `on`"]),
    ("stage without on or delay", _set("architecture.paths.tandem.stages.0", {"name": "x"}), [],
     ["stages[0]", "needs `on`"]),
    ("off-host cpu without ghz", _set("architecture.resources.s1.ghz", None), [], ["resources.s1.ghz", "is required"]),
    # absurd sizes: refused before anything is allocated, with the limit
    ("clients", _set("workload.flows.0", {"name": "c", "arrival": "closed", "clients": 10**9,
                                          "steps": [{"path": "tandem"}]}), [], ["flows[0].clients", "4000000"]),
    ("clients over flows", _set("workload.flows", [
        {"name": f"c{i}", "arrival": "closed", "clients": 4_000_000, "steps": [{"path": "tandem"}]} for i in range(20)]),
     [], ["workload.flows", "80000000 closed-loop clients", "67108864"]),
    ("count", _set(f"{FLOW0}.steps.0.count", 10**6), [], ["steps[0].count", "10000"]),
    ("count x stages", _both(_set("architecture.paths.long", {"stages": [{"on": "s1"}] * 400}),
                             _set(f"{FLOW0}.steps", [{"path": "long", "count": 10_000}])), [],
     ["workload.flows[0].steps[0]", "1048576 stages"]),
    ("simulated time", _set("experiment", {"duration_s": 1e9}), [], ["experiment.duration_s", "1e+06"]),
    ("warm-up time", _set("experiment", {"warmup_s": 1e9}), [], ["experiment.warmup_s", "1e+06"]),
    ("queue capacity", _set("architecture.resources.s1.capacity", 10**12), [], ["resources.s1.capacity", "67108864"]),
    ("cores", _set("architecture.resources.s1.cores", 10**7), [], ["resources.s1.cores", "1048576"]),
    ("batch", _set(f"{STAGE0}.batch", 10**6), [], ["stages[0].batch", "65536"]),
    ("rate", _set(f"{FLOW0}.rate_per_s", 1e13), [], ["rate_per_s", "1e+12"]),
    ("a link too slow for the engine", _both(_set("host.devices", {"nic": {"kind": "link", "gbps": 1e-9}}),
                                             _set(f"{STAGE0}", {"on": "nic"})), [], ["host.devices.nic.gbps", "Gb/s"]),
    ("per_byte beyond the engine", _both(_set("architecture.params", {"pb": 1e12}), _set(f"{STAGE0}.per_byte", "pb")),
     [], ["stages[0].per_byte", "1e+09"]),
    ("per_page beyond the engine", _both(_set("architecture.params", {"pp": 1e12}), _set(f"{STAGE0}.per_page", "pp"),
                                         _set("architecture.resources.s1.ghz", 0.5)),
     [], ["stages[0].per_page", "4.29e+18"]),
    ("per_page at 1-byte pages beyond the engine", _both(_set(f"{STAGE0}.per_page", 1e7), _set(f"{STAGE0}.page_bytes", 1)),
     [], ["stages[0].per_page", "4294967295 bytes"]),
    ("page_bytes without per_page", _set(f"{STAGE0}.page_bytes", 512), [], ["stages[0].page_bytes", "per_page"]),
    ("unpaged_bytes param typo", _set(f"{STAGE0}.unpaged_bytes", "nope"), [], ["stages[0].unpaged_bytes"]),
    ("per_page param typo on a path no flow walks", _set("architecture.paths.spare", {"stages": [{"on": "s1", "per_page": "nope"}]}),
     [], ["paths.spare.stages[0].per_page", "unknown param"]),
    ("throttle_us param typo on a path no flow walks",
     _set("architecture.paths.spare", {"stages": [{"on": "s1", "throttle_us": "nope"}]}), [],
     ["paths.spare.stages[0].throttle_us", "unknown param"]),
    ("direction off a duplex link on a path no flow walks",
     _set("architecture.paths.spare", {"stages": [{"on": "s1", "direction": "rx"}]}), [],
     ["paths.spare.stages[0].direction", "duplex"]),
    ("batch on a link (its overhead_bytes would be paid once a batch)",
     _both(_set("host.devices", {"nic": {"kind": "link", "gbps": 10, "overhead_bytes": 90}}),
           _set(f"{STAGE0}", {"on": "nic", "batch": 10})), [], ["stages[0].batch", "link"]),
    ("page_bytes of 0", _both(_set(f"{STAGE0}.per_page", 10), _set(f"{STAGE0}.page_bytes", 0)), [],
     ["stages[0].page_bytes"]),
    ("unpaged_bytes negative", _both(_set(f"{STAGE0}.per_page", 10), _set(f"{STAGE0}.unpaged_bytes", -1)), [],
     ["stages[0].unpaged_bytes"]),
    ("per_page on a link", _both(_set("host.devices", {"nic": {"kind": "link", "gbps": 10}}),
                                 _set(f"{STAGE0}", {"on": "nic", "per_page": 5})), [], ["stages[0].per_page", "cpu"]),
    ("per_page on a delay", _set(f"{STAGE0}", {"delay_us": 1, "per_page": 5}), [], ["stages[0].per_page"]),
    ("mean beyond the engine", _both(_set("architecture.resources.s1.ghz", 0.5),
                                     _set(f"{STAGE0}.cycles", {"dist": "exp", "mean": 1e15})), [],
     ["stages[0].cycles", "1e+18"]),
    # --set
    ("--set unknown param", lambda d: None, ["--set", "exit_cycles=3"], ["--set exit_cycles", "no param 'exit_cycles'"]),
    ("--set into a value", lambda d: None, ["--set", "host.cores.x=1"], ["--set host.cores.x", "is a value"]),
    ("--set list index", lambda d: None, ["--set", "workload.flows.9.rate_per_s=1"],
     ["--set workload.flows.9", "index below 1"]),
    ("--set list name", lambda d: None, ["--set", "workload.flows.jbos.rate_per_s=1"], ["--set workload.flows.jbos"]),
    ("--set misspelled key", lambda d: None, ["--set", "host.coers=4"], ["host.coers", "did you mean 'cores'"]),
    ("--set bad root", lambda d: None, ["--set", "hots.cores=4"], ["--set hots.cores", "host, architecture, workload"]),
    ("--set nan", lambda d: None, ["--set", "host.ghz=nan"], ["host.ghz", "finite"]),
    ("--set not a number", lambda d: None, ["--set", "workload.flows.0.rate_per_s=fast"], ["rate_per_s", "'fast'"]),
    ("--set without =", lambda d: None, ["--set", "exit_cycles"], ["--set", "KEY=VALUE"]),
    ("--set empty key", lambda d: None, ["--set", "=3"], ["--set", "empty key"]),
    ("[set] table", _set("set", {"nope": 1}), [], ["set.nope", "no param"]),
    # the command line's own values
    ("negative duration", lambda d: None, ["--duration", "-1"], ["--duration", "(0, 1e+06]"]),
    ("nan duration", lambda d: None, ["--duration", "nan"], ["--duration"]),
    ("inf duration", lambda d: None, ["--duration", "inf"], ["--duration"]),
    ("huge duration", lambda d: None, ["--duration", "1e300"], ["--duration", "1e+06"]),
    ("word duration", lambda d: None, ["--duration", "long"], ["--duration", "'long'"]),
    ("negative warm-up", lambda d: None, ["--warmup", "-0.1"], ["--warmup", "[0,"]),
    ("negative seed", lambda d: None, ["--seed", "-1"], ["--seed", "[0, 2**64)"]),
    ("seed past 64 bits", lambda d: None, ["--seed", str(2**64)], ["--seed", "[0, 2**64)"]),
    ("fractional seed", lambda d: None, ["--seed", "1.5"], ["--seed", "invalid int"]),
    ("unknown option", lambda d: None, ["--sed", "3"], ["unrecognized arguments", "--sed"]),
    ("bundled architecture", lambda d: None, ["--architecture", "xen-pvv"],
     ["--architecture", "did you mean 'xen-pv'"]),
]

# (id, file content (bytes, or a callable making the path), fragments)
FILE_CASES: list[tuple[str, Any, list[str]]] = [
    ("toml syntax", b"[host\nname = 'h'\n", ["TOML syntax error", "line 1, column"]),
    ("toml duplicate key", b"[host]\nname = 'a'\nname = 'b'\n", ["TOML syntax error", "line 3"]),
    ("toml bad value", b"[experiment]\nseed = 1e\n", ["TOML syntax error", "line 2"]),
    ("toml unterminated string", b"[host]\nname = \"h\n", ["TOML syntax error", "line 2"]),
    ("not utf-8", b"[host]\nname = \"\xff\xfe\"\n", ["not UTF-8", "line 2, column 9"]),
    ("nested too deeply", b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", ["nested too deeply"]),
    ("empty file", b"", ["experiment.host", "no host"]),
    ("a model, not an experiment", b"name = 'h'\ncores = 4\n", ["name", "unknown key"]),
]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str]]:
    def run(argv: list[str]) -> tuple[int, str]:
        rc = main(argv)
        out = capsys.readouterr()
        return rc, out.err

    return run


def _one_clear_line(rc: int, err: str, fragments: list[str]) -> None:
    assert rc == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].strip(), err
    for f in fragments:
        assert f in err, f"{f!r} not in: {err}"


@pytest.mark.parametrize("change, argv, fragments", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_model_mistake(tmp_path: Path, cli: Any, change: Callable[[Doc], None], argv: list[str],
                       fragments: list[str]) -> None:
    doc = copy.deepcopy(TANDEM)
    doc["experiment"] = {"duration_s": 0.001}
    change(doc)
    text = to_toml(doc).replace('"__date__"', "2024-01-01")
    p = tmp_path / "exp.toml"
    p.write_text(text)
    rc, err = cli(["run", str(p), "-q", *argv])
    _one_clear_line(rc, err, fragments)
    if not (argv and argv[0] in ("--duration", "--warmup", "--seed", "--sed", "--architecture", "--set")):
        assert str(p) in err, f"the file is not named: {err}"


@pytest.mark.parametrize("content, fragments", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_file_mistake(tmp_path: Path, cli: Any, content: bytes, fragments: list[str]) -> None:
    p = tmp_path / "exp.toml"
    p.write_bytes(content)
    rc, err = cli(["run", str(p)])
    _one_clear_line(rc, err, fragments)
    assert str(p) in err


def test_file_is_a_directory(tmp_path: Path, cli: Any) -> None:
    rc, err = cli(["run", str(tmp_path)])
    _one_clear_line(rc, err, [str(tmp_path), "is a directory"])


def test_file_is_missing(tmp_path: Path, cli: Any) -> None:
    rc, err = cli(["run", str(tmp_path / "nope.toml")])
    _one_clear_line(rc, err, ["nope.toml", "no such file"])


def test_file_is_not_regular(cli: Any) -> None:
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    rc, err = cli(["run", "/dev/null"])
    _one_clear_line(rc, err, ["/dev/null", "not a regular file"])


def test_file_is_huge(tmp_path: Path, cli: Any) -> None:
    p = tmp_path / "huge.toml"
    with open(p, "wb") as f:
        f.truncate(64 << 20)  # sparse: no disk used, and never read
    rc, err = cli(["run", str(p)])
    _one_clear_line(rc, err, [str(p), "at most 16 MiB"])


def test_bundled_experiment_values(cli: Any) -> None:
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "web", "--set", "xen.reserve=1"])
    _one_clear_line(rc, err, ["--set xen.reserve", "host, architecture, workload"])
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "web", "--set", "architecture.reserve.cores=72"])
    # a bad value an override wrote is blamed on the override, naming the model it replaced
    _one_clear_line(rc, err, ["--set architecture.reserve.cores", "reserve.cores of xen-pv.toml", "at most 71"])
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "web", "--set", "exit_cycles=-5"])
    _one_clear_line(rc, err, ["--set exit_cycles", "host.params.exit_cycles of xeon-2017.toml", "[0, 1e+15]"])


@pytest.mark.parametrize("argv, fragment", [
    ([], "a command is required"),
    (["bogus"], "invalid choice"),
    (["run"], "give an experiment file"),
    (["run", "--host", "xeon-2017"], "give an experiment file"),
    (["bench", "--requests", "5"], "--requests"),
    (["bench", "--requests", "many"], "--requests"),
])
def test_usage_mistake(cli: Any, argv: list[str], fragment: str) -> None:
    rc, err = cli(argv)
    _one_clear_line(rc, err, [fragment])


@pytest.mark.parametrize("kw, key", [
    ({"duration_s": 2e7}, "experiment.duration_s"),   # past the engine's clock: was an OverflowError
    ({"duration_s": float("nan")}, "experiment.duration_s"),
    ({"warmup_s": -1.0}, "experiment.warmup_s"),       # was the engine's "before now"
    ({"warmup_s": "1"}, "experiment.warmup_s"),
])
def test_run_overrides_are_checked_like_the_file(kw: dict, key: str) -> None:
    # Simulation.run's window overrides (which replicate, compare and the sweeps pass on)
    # get the same ModelError, naming the key, as the same numbers in an experiment file
    from emulator._core import ModelError
    from emulator.model import load_experiment
    from emulator.simulation import Simulation

    with pytest.raises(ModelError) as e:
        Simulation(load_experiment(TANDEM)).run(**kw)
    assert e.value.key == key


HUGE = "9" * 5000  # beyond the 4300 digits Python converts from text


def test_an_integer_of_too_many_digits_is_a_clear_error(cli: Any, tmp_path: Path) -> None:
    p = tmp_path / "big.toml"
    p.write_text(f"[experiment]\nseed = {HUGE}\n")
    rc, err = cli(["run", str(p), "--host", "xeon-2017", "-a", "nitro", "-w", "web"])
    _one_clear_line(rc, err, [str(p), "4300 digits"])
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "web", "--set", f"host.cores={HUGE}"])
    _one_clear_line(rc, err, ["--set host.cores", "must be an integer", "characters)..."])
    assert len(err) < 1100


def test_a_files_own_set_table_is_blamed_for_its_values(cli: Any, tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text('[experiment]\nhost = "xeon-2017"\narchitecture = "nitro"\nworkload = "web"\n'
                 '[set]\nexit_cycles = "abc"\n')
    rc, err = cli(["run", str(p)])
    _one_clear_line(rc, err, [f"{p}: [set] exit_cycles", "host.params.exit_cycles of xeon-2017.toml",
                              "must be a number, got 'abc'"])


def test_a_bad_bench_model_is_one_line_and_status_2(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the reference model is loaded here before any child runs it: its error is a model
    # error (was exit 1 with the child's whole source in the message)
    import shutil

    import emulator.bench as bench

    if not (bench.SHARED_BENCH / "tandem.toml").is_file():
        pytest.skip("../shared/bench is not beside this checkout")
    bad = tmp_path / "bench"
    shutil.copytree(bench.SHARED_BENCH, bad)
    text = (bad / "tandem.toml").read_text()
    (bad / "tandem.toml").write_text(text.replace("rate_per_s = ", 'rate_per_s = "x" #', 1))
    monkeypatch.setattr(bench, "SHARED_BENCH", bad)
    rc, err = cli(["bench", "--requests", "1000", "--repeats", "1"])
    _one_clear_line(rc, err, [str(bad / "tandem.toml"), "rate_per_s"])


def test_a_newline_in_a_name_or_key_stays_on_one_line(cli: Any) -> None:
    rc, err = cli(["run", "--host", "a\nb", "-a", "nitro", "-w", "web"])
    _one_clear_line(rc, err, ["'a\\nb'"])
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "web", "--set", "exit\ncycles=1"])
    _one_clear_line(rc, err, ["exit\\ncycles", "did you mean 'exit_cycles'"])


def test_a_device_no_stage_uses_is_checked_all_the_same(cli: Any) -> None:
    # web never reads the disk: its NVMe's unknown param was let through (exit 0) where
    # storage, which reads it, refused it; a model is checked whole before anything runs
    for workload in ("web", "storage"):
        rc, err = cli(["run", "--host", "xeon-2017", "-a", "kvm-virtio", "-w", workload, "--duration", "0.001",
                       "--set", "host.devices.nvme.service_us.mean=typo"])
        _one_clear_line(rc, err, ["host.devices.nvme.service_us.mean", "unknown param 'typo'"])


@pytest.mark.parametrize("key, value", [("host.name", '""'), ("workload.flows.0.name", '" "'),
                                        ("architecture.name", '""')])
def test_an_empty_name_is_refused(cli: Any, key: str, value: str) -> None:
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "web", "--set", f"{key}={value}"])
    _one_clear_line(rc, err, ["name", "not empty or blank"])


def test_an_empty_path_key_is_refused(cli: Any, tmp_path: Path) -> None:
    p = tmp_path / "e.toml"
    p.write_text('[experiment]\nhost = "xeon-2017"\nworkload = "web"\n[architecture]\nname = "a"\n'
                 '[architecture.paths.""]\nstages = [{ on = "vcpu", cycles = 1 }]\n')
    rc, err = cli(["run", str(p)])
    _one_clear_line(rc, err, [str(p), "a path needs a name"])


def test_an_override_into_a_list_item_is_blamed_on_the_override(cli: Any) -> None:
    # error keys name list items by index (flows[0]); the override may name it by index or name
    for key in ("workload.flows.0.clients", "workload.flows.mix.clients"):
        rc, err = cli(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "cloud-mix", "--set", f"{key}=-1"])
        _one_clear_line(rc, err, [f"--set {key}", "workload.flows[0].clients of cloud-mix.toml", "[1, 4000000]"])


def test_a_long_unquoted_set_value_is_kept_whole(capsys: pytest.CaptureFixture[str]) -> None:
    name = "a" * 90  # a bare string: shortened only where an error quotes it
    assert main(["run", "--host", "xeon-2017", "-a", "nitro", "-w", "web", "--duration", "0.0005", "--json",
                 "--set", f"workload.flows.0.name={name}"]) == 0
    import json

    assert name in json.loads(capsys.readouterr().out)["flows"]


def test_windows_under_a_picosecond_and_blank_resources_are_refused(cli: Any, tmp_path: Path) -> None:
    heavy = str(Path(__file__).resolve().parent.parent / "examples" / "heavy-load.toml")
    rc, err = cli(["run", heavy, "--batches", "1000", "--duration", "1e-12"])
    _one_clear_line(rc, err, ["under a picosecond"])
    p = tmp_path / "blank.toml"
    p.write_text('[experiment]\nhost = "xeon-2017"\nworkload = "web"\n[architecture]\nname = "a"\n'
                 '[architecture.resources." "]\nkind = "cpu"\ncores = 1\n'
                 '[architecture.paths.x]\nstages = [{ on = "vcpu", cycles = 1 }]\n')
    rc, err = cli(["run", str(p)])
    _one_clear_line(rc, err, [str(p), "a resource needs a name"])


@pytest.mark.parametrize("key", ["per_byte", "per_page"])
def test_an_inline_stage_with_work_per_byte_is_refused(key):
    # an inline step carries no bytes (models/README.md): its per_byte or per_page would
    # silently count nothing
    from conftest import experiment
    from emulator.model import ModelError, load_experiment
    from emulator.simulation import Simulation
    spec = experiment({}, {"p": [{"name": "s", "on": "vcpu", "cycles": 100}]},
                      [{"name": "f", "arrival": "poisson", "rate_per_s": 1000,
                        "steps": [{"path": "p"}, {"name": "x", "on": "vcpu", "cycles": 10, key: 2}]}], duration_s=0.01)
    with pytest.raises(ModelError) as e:
        Simulation(load_experiment(spec))
    assert e.value.key == f"workload.flows[0].steps[1].{key}" and "inline stage carries no bytes" in str(e.value)


def test_a_table_an_override_made_is_the_overrides_fault(cli: Any) -> None:
    # the tables an override creates on its way are its own: what is wrong in them was
    # blamed on the bundled file it changed ("xeon-2017.toml: devices.nic.extra: unknown key")
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "web", "--set", "host.devices.nic.extra.x=1"])
    _one_clear_line(rc, err, ["--set host.devices.nic.extra.x", "unknown key"])
    rc, err = cli(["run", "--host", "xeon-2017", "-a", "xen-pv", "-w", "web", "--set", "host.devices.nic2.kind=link"])
    _one_clear_line(rc, err, ["--set host.devices.nic2.kind", "gbps", "is required"])
