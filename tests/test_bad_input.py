"""Bad models and experiments: each must fail with one ModelError, before anything runs,
whose one-line message names the file, the key path and what is wrong.

Each case changes one thing in a valid experiment (BASE) and is tried twice: written to a
TOML file (the message must name that file) and given as a dict.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest
from conftest import TANDEM, to_toml

from emulator import model
from emulator._core import ModelError
from emulator.cli import main
from emulator.model import compile_experiment, load_experiment
from emulator.simulation import run

BASE: dict[str, Any] = {
    "host": {
        "name": "h", "cores": 4, "ghz": 2.0, "memory_gib": 8,
        "params": {"exit_cycles": 1500},
        "devices": {"nic": {"kind": "link", "gbps": 10}},
    },
    "architecture": {
        "name": "a",
        "reserve": {"cores": 1, "memory_gib": 1},
        "resources": {"dom0": {"kind": "cpu", "cores": 1}},
        "paths": {"net_tx": {"stages": [
            {"name": "kick", "on": "vcpu", "cycles": "exit_cycles", "account": "exit"},
            {"name": "back", "on": "dom0", "cycles": {"dist": "exp", "mean": 2000}, "account": "backend", "batch": 4},
            {"name": "wire", "on": "nic"},
        ]}},
    },
    "workload": {
        "name": "w",
        "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 1000,
                   "steps": [{"path": "net_tx", "bytes": 1500}, {"on": "vcpu", "cycles": 5000}]}],
    },
    "experiment": {"duration_s": 0.01, "seed": 1},
}

DELETE = object()
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _set(d: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Sets (or with DELETE removes) the value at a path like ``a.b[0].c``; returns d."""
    keys: list[Any] = [int(i) if i else k for k, i in _PART.findall(path)]
    node: Any = d
    for k in keys[:-1]:
        node = node[k]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


def _edit(*pairs: tuple[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def f(d: dict[str, Any]) -> dict[str, Any]:
        for path, value in pairs:
            _set(d, path, value)
        return d
    return f


STAGE0 = "architecture.paths.net_tx.stages[0]"
STAGE1 = "architecture.paths.net_tx.stages[1]"
STAGE2 = "architecture.paths.net_tx.stages[2]"
FLOW0 = "workload.flows[0]"

# id -> (edit, key path the message must name, words it must contain)
CASES: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str, str]] = {
    "unknown key, close to a real one": (_edit(("host.coers", 4)), "host.coers", "did you mean 'cores'"),
    "unknown stage key": (_edit((f"{STAGE1}.cylces", 5)), f"{STAGE1}.cylces", "did you mean 'cycles'"),
    "unknown top-level key": (_edit(("experimnt", {})), "experimnt", "did you mean 'experiment'"),
    "unknown key, nothing close": (_edit(("host.zzzzzz", 1)), "host.zzzzzz", "unknown key"),
    "string for an integer": (_edit(("host.cores", "many")), "host.cores", "integer"),
    "boolean for an integer": (_edit(("host.cores", True)), "host.cores", "integer"),
    "fraction for an integer": (_edit(("host.cores", 2.5)), "host.cores", "integer"),
    "table for a list": (_edit(("workload.flows", {"x": 1})), "workload.flows", "must be a list"),
    "string for a number": (_edit(("host.ghz", "fast")), "host.ghz", "number"),
    "list for a stage": (_edit((f"{STAGE0}", [1, 2])), STAGE0, "must be a table"),
    "zero cores": (_edit(("host.cores", 0)), "host.cores", "out of range"),
    "zero ghz": (_edit(("host.ghz", 0.0)), "host.ghz", "out of range"),
    "negative rate": (_edit((f"{FLOW0}.rate_per_s", -5)), f"{FLOW0}.rate_per_s", "out of range"),
    "batch zero": (_edit((f"{STAGE1}.batch", 0)), f"{STAGE1}.batch", "out of range"),
    "batch beyond the engine": (_edit((f"{STAGE1}.batch", 10**6)), f"{STAGE1}.batch", "out of range"),
    "negative throttle": (_edit((f"{STAGE1}.throttle_us", -1)), f"{STAGE1}.throttle_us", "out of range"),
    "NaN throttle": (_edit((f"{STAGE1}.throttle_us", math.nan)), f"{STAGE1}.throttle_us", "finite"),
    "throttle beyond the engine": (_edit((f"{STAGE1}.throttle_us", 1e13)), f"{STAGE1}.throttle_us", "out of range"),
    "throttle param beyond the engine": (_edit(("host.params.huge", 1e13), (f"{STAGE1}.throttle_us", "huge")),
                                         f"{STAGE1}.throttle_us", "limit"),
    "throttle as a distribution": (_edit((f"{STAGE1}.throttle_us", {"dist": "exp", "mean": 5})),
                                   f"{STAGE1}.throttle_us", "number"),
    "throttle names an unknown param": (_edit((f"{STAGE1}.throttle_us", "itr_us")), f"{STAGE1}.throttle_us",
                                        "unknown param 'itr_us'"),
    "throttle on a pure delay": (_edit((f"{FLOW0}.steps[1]", {"delay_us": 5, "throttle_us": 5})),
                                 f"{FLOW0}.steps[1].throttle_us", "only a stage with `on`"),
    "idle states not a list": (_edit(("host.idle_states", {"C1": 2})), "host.idle_states", "must be a list"),
    "idle state not a table": (_edit(("host.idle_states", [2])), "host.idle_states[0]", "must be a table"),
    "idle state without exit": (_edit(("host.idle_states", [{"name": "C1", "residency_us": 2}])),
                                "host.idle_states[0].exit_us", "required"),
    "negative idle exit": (_edit(("host.idle_states", [{"exit_us": -1, "residency_us": 2}])),
                           "host.idle_states[0].exit_us", "out of range"),
    "NaN idle residency": (_edit(("host.idle_states", [{"exit_us": 1, "residency_us": math.nan}])),
                           "host.idle_states[0].residency_us", "finite"),
    "unknown idle state key": (_edit(("host.idle_states", [{"exit_us": 1, "residency_us": 2, "exit": 3}])),
                               "host.idle_states[0].exit", "did you mean 'exit_us'"),
    "idle states deepest first": (_edit(("host.idle_states", [{"name": "C6", "exit_us": 133, "residency_us": 400},
                                                              {"name": "C1", "exit_us": 2, "residency_us": 2}])),
                                  "host.idle_states[1].residency_us", "shallowest first"),
    "two idle states of one name": (_edit(("host.idle_states", [{"name": "C1", "exit_us": 2, "residency_us": 2},
                                                                {"name": "C1", "exit_us": 9, "residency_us": 20}])),
                                    "host.idle_states[1].name", "names two idle states"),
    "too many idle states": (_edit(("host.idle_states", [{"name": f"C{i}", "exit_us": 1, "residency_us": i}
                                                         for i in range(65)])),
                             "host.idle_states", "at most 64"),
    "halt-polling without idle states": (_edit(("host.halt_poll_us", 200)), "host.halt_poll_us", "needs idle_states"),
    "negative halt-polling": (_edit(("host.idle_states", [{"exit_us": 1, "residency_us": 2}]), ("host.halt_poll_us", -1)),
                              "host.halt_poll_us", "out of range"),
    # a flow named utilization.x: its utilization.x.throughput_per_s is also resource x.throughput_per_s's
    "flow named like a measure prefix": (_edit((f"{FLOW0}.name", "utilization.x")), f"{FLOW0}.name",
                                         "names the measures of every utilization"),
    "wake as a stage account": (_edit((f"{STAGE1}.account", "wake")), f"{STAGE1}.account", "reserved"),
    "negative cycles": (_edit((f"{STAGE0}.cycles", -1)), f"{STAGE0}.cycles", "out of range"),
    "NaN ghz": (_edit(("host.ghz", math.nan)), "host.ghz", "finite"),
    "inf rate": (_edit((f"{FLOW0}.rate_per_s", math.inf)), f"{FLOW0}.rate_per_s", "finite"),
    "NaN mean in a distribution": (_edit((f"{STAGE1}.cycles", {"dist": "exp", "mean": math.nan})),
                                   f"{STAGE1}.cycles.mean", "finite"),
    "-inf bytes": (_edit((f"{FLOW0}.steps[0].bytes", -math.inf)), f"{FLOW0}.steps[0].bytes", "finite"),
    "unknown distribution": (_edit((f"{STAGE1}.cycles", {"dist": "gamma", "mean": 5})), f"{STAGE1}.cycles.dist",
                             "gamma"),
    "uniform too wide": (_edit((f"{STAGE1}.cycles", {"dist": "uniform", "mean": 5, "cv": 0.9})),
                         f"{STAGE1}.cycles.cv", "uniform"),
    "lognormal without cv": (_edit((f"{STAGE1}.cycles", {"dist": "lognormal", "mean": 5})),
                             f"{STAGE1}.cycles.cv", "required"),
    "unknown resource": (_edit((f"{STAGE1}.on", "dom1")), f"{STAGE1}.on", "unknown resource 'dom1'"),
    "unknown path": (_edit((f"{FLOW0}.steps[0].path", "net_txx")), f"{FLOW0}.steps[0].path", "net_txx"),
    "unknown param": (_edit((f"{STAGE0}.cycles", "exit_cycle")), f"{STAGE0}.cycles", "did you mean 'exit_cycles'"),
    "unknown param as a mean": (_edit((f"{STAGE1}.cycles", {"dist": "exp", "mean": "nope"})), f"{STAGE1}.cycles",
                                "unknown param 'nope'"),
    "unknown arrival": (_edit((f"{FLOW0}.arrival", "possion")), f"{FLOW0}.arrival", "did you mean 'poisson'"),
    "missing required key": (_edit(("host.cores", DELETE)), "host.cores", "required"),
    "reserve as large as the host": (_edit(("architecture.reserve.cores", 4)), "architecture.reserve.cores",
                                     "at most 3"),
    "reserve more memory than the host": (_edit(("architecture.reserve.memory_gib", 9)),
                                          "architecture.reserve.memory_gib", "GiB"),
    "on-host resources beyond the reserve": (_edit(("architecture.resources.dom0.cores", 2)),
                                             "architecture.reserve.cores", "reserve"),
    "resource named vcpu": (_edit(("architecture.resources.vcpu", {"kind": "cpu", "cores": 1})),
                            "architecture.resources.vcpu", "built in"),
    "resource on host and architecture": (_edit(("host.devices.dom0", {"kind": "link", "gbps": 1})),
                                          "architecture.resources.dom0", "both"),
    "cycles on a link": (_edit((f"{STAGE2}.cycles", 10)), f"{STAGE2}.cycles", "link"),
    "unknown distribution key": (_edit((f"{STAGE1}.cycles", {"dist": "exp", "mean": 5, "sd": 1})),
                                 f"{STAGE1}.cycles.sd", "unknown key"),
    "spread on a fixed distribution": (_edit((f"{STAGE1}.cycles", {"dist": "fixed", "mean": 5, "cv": 0.3})),
                                       f"{STAGE1}.cycles.cv", "no spread"),
    "stage with neither on nor delay": (_edit((f"{STAGE0}.on", DELETE)), STAGE0, "delay_us"),
    "empty flows": (_edit(("workload.flows", [])), "workload.flows", "at least one"),
    "empty steps": (_edit((f"{FLOW0}.steps", [])), f"{FLOW0}.steps", "at least one"),
    "empty mix": (_edit((f"{FLOW0}.steps", DELETE), (f"{FLOW0}.mix", [])), f"{FLOW0}.mix", "at least one"),
    "empty stages": (_edit(("architecture.paths.net_tx.stages", [])), "architecture.paths.net_tx.stages",
                     "at least one"),
    "both steps and mix": (_edit((f"{FLOW0}.mix", [{"name": "x", "weight": 1, "steps": [{"path": "net_tx"}]}])),
                           FLOW0, "exactly one"),
    "zero mix weight": (_edit((f"{FLOW0}.steps", DELETE),
                              (f"{FLOW0}.mix", [{"name": "x", "weight": 0, "steps": [{"path": "net_tx"}]}])),
                        f"{FLOW0}.mix[0].weight", "out of range"),
    "closed flow with a rate": (_edit((f"{FLOW0}.arrival", "closed"), (f"{FLOW0}.clients", 2)),
                                f"{FLOW0}.rate_per_s", "open flow"),
    "duplicate flow names": (_edit(("workload.flows", [copy.deepcopy(BASE["workload"]["flows"][0])] * 2)),
                             "workload.flows", "used twice"),
    "engine category as account": (_edit((f"{STAGE0}.account", "idle")), f"{STAGE0}.account", "reserved"),
    "zero duration": (_edit(("experiment.duration_s", 0)), "experiment.duration_s", "out of range"),
    "negative seed": (_edit(("experiment.seed", -1)), "experiment.seed", "out of range"),
    "bundled name and inline table": (_edit(("experiment.host", "xeon-2017")), "experiment.host", "inline"),
    # the audit of the command line: each of these crashed, hung or blamed the wrong key
    "huge float for an integer": (_edit(("host.cores", 1e300)), "host.cores", "1e+300 is out of range"),
    "duration below a picosecond": (_edit(("experiment.duration_s", 1e-15)), "experiment.duration_s", "out of range"),
    "unknown param as a path step's bytes": (_edit((f"{FLOW0}.steps[0].bytes", "nope")), f"{FLOW0}.steps[0].bytes",
                                             "unknown param 'nope'"),
    "path step's bytes param beyond the engine": (_edit(("host.params.huge", 1e12), (f"{FLOW0}.steps[0].bytes", "huge")),
                                                  f"{FLOW0}.steps[0].bytes", "beyond"),
    "rate too low for the engine": (_edit((f"{FLOW0}.rate_per_s", 1e-300)), f"{FLOW0}.rate_per_s", "below"),
}


def _check(err: ModelError, key: str, words: str, file: str | None = None) -> str:
    msg = str(err)
    assert "\n" not in msg, msg
    assert key in msg, msg
    assert words in msg, msg
    if file is not None:
        assert msg.startswith(f"{file}: "), msg
    return msg


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_experiment_file(case: str, tmp_path: Path) -> None:
    edit, key, words = CASES[case]
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(edit(copy.deepcopy(BASE))))
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    _check(e.value, key, words, file=str(p))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_experiment_dict(case: str) -> None:
    edit, key, words = CASES[case]
    with pytest.raises(ModelError) as e:
        run(edit(copy.deepcopy(BASE)))
    _check(e.value, key, words)


def test_base_is_valid(tmp_path: Path) -> None:
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(BASE))
    a = run(p)
    b = run(copy.deepcopy(BASE))
    assert a.to_dict()["flows"] == b.to_dict()["flows"]
    assert a.to_dict()["flows"]["f"]["completed"] > 0


def test_cv_on_exponential_other_than_one_is_rejected() -> None:
    spec = _set(copy.deepcopy(BASE), f"{STAGE1}.cycles", {"dist": "exp", "mean": 2000, "cv": 0.5})
    with pytest.raises(ModelError) as e:
        load_experiment(spec)
    _check(e.value, f"{STAGE1}.cycles.cv", "cv")


# -- files ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,line", [
    ("[host]\nname = \n", 2),
    ("[host]\nname = \"h\"\ncores = 4 4\n", 3),
    ("[host\nname = 1\n", 1),
    ("[host]\nname = \"h\"\nname = \"g\"\n", 3),
])
def test_toml_syntax_error_names_line_and_column(text: str, line: int, tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    msg = _check(e.value, "", "TOML syntax error", file=str(p))
    assert f"line {line}" in msg and "column" in msg


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "latin1.toml"
    p.write_bytes(b"[host]\nname = \"caf\xe9\"\n")
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    _check(e.value, "", "UTF-8", file=str(p))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(tmp_path / "nope.toml")
    _check(e.value, "", "no such file", file=str(tmp_path / "nope.toml"))
    with pytest.raises(ModelError) as e:
        load_experiment(tmp_path)
    _check(e.value, "", "directory", file=str(tmp_path))


def test_no_model_given() -> None:
    with pytest.raises(ModelError) as e:
        load_experiment({"experiment": {"duration_s": 1}})
    _check(e.value, "experiment.host", "no host")


# -- bundled names --------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["host", "architecture", "workload"])
def test_unknown_bundled_model_name(kind: str) -> None:
    names = {"host": "xeon-2017", "architecture": "bare-metal", "workload": "web", kind: "nope"}
    with pytest.raises(ModelError) as e:
        load_experiment(**names)
    _check(e.value, kind, f"no bundled {kind} 'nope'")


def test_bundled_name_close_to_a_real_one() -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(host="xeon-2071", architecture="bare-metal", workload="web")
    _check(e.value, "host", "did you mean 'xeon-2017'")


def test_bundled_name_in_experiment_file_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "exp.toml"
    p.write_text('[experiment]\nhost = "nope"\narchitecture = "bare-metal"\nworkload = "web"\n')
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    _check(e.value, "experiment.host", "no bundled host 'nope'")


def test_name_must_equal_file_stem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in ("hosts", "architectures", "workloads"):
        (tmp_path / d).mkdir()
    (tmp_path / "hosts" / "foo.toml").write_text(to_toml({"x": {}})[len("[x]\n"):] + 'name = "bar"\ncores = 1\n'
                                                 'ghz = 1.0\nmemory_gib = 1\n')
    arch = TANDEM["architecture"]
    (tmp_path / "architectures" / "tandem.toml").write_text(
        "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in arch.items() if isinstance(v, str)) + "\n"
        + to_toml({"resources": arch["resources"], "paths": arch["paths"]}))
    monkeypatch.setattr(model, "MODELS_DIR", tmp_path)
    with pytest.raises(ModelError) as e:
        load_experiment({"workload": TANDEM["workload"]}, host="foo", architecture="tandem")
    _check(e.value, "name", "'bar' must equal the file name 'foo'", file=str(tmp_path / "hosts" / "foo.toml"))
    # with the name fixed, the same files load
    (tmp_path / "hosts" / "foo.toml").write_text('name = "foo"\ncores = 1\nghz = 1.0\nmemory_gib = 1\n')
    load_experiment({"workload": TANDEM["workload"]}, host="foo", architecture="tandem")


# -- overrides ------------------------------------------------------------------------

@pytest.mark.parametrize("setting,key,words", [
    ("nope=3", "--set nope", "no param 'nope'"),
    ("exit_cycle=3", "--set exit_cycle", "did you mean 'exit_cycles'"),
    # a dotted key to a param the table lacks: only a misspelling (no stage reads it), was ignored
    ("host.params.exit_cycle=3", "--set host.params.exit_cycle", "did you mean 'host.params.exit_cycles'"),
    ("architecture.params.exit_cycles=3", "--set architecture.params.exit_cycles", "did you mean 'host.params.exit_cycles'"),
    ("garbage", "--set", "KEY=VALUE"),
    ("=3", "--set", "empty key"),
    ("architecture.paths.net_tx.stages.9.cycles=1", "--set architecture.paths.net_tx.stages.9", "no list item"),
    ("architecture.name.x=1", "--set architecture.name.x", "is a value"),
    ("machine.cores=2", "--set machine.cores", "dotted key"),
    ("exit_cycles=-5", "host.params.exit_cycles", "out of range"),
    ("host.cores=0", "host.cores", "out of range"),
    ("architecture.paths.net_tx.stages.kick.cycles=nan", f"{STAGE0}.cycles", "finite"),
    ("architecture.paths.net_tx.stages.\u00b2.cycles=1", "--set architecture.paths.net_tx.stages.\u00b2", "no list item"),
    ("architecture.paths.net_tx.stages.\u0661.cycles=1", "--set architecture.paths.net_tx.stages.\u0661", "no list item"),
    ("architecture..reserve=1", "--set architecture..reserve", "empty part"),
    ("architecture.=1", "--set architecture.", "empty part"),
    pytest.param("x=" + "[" * 5000 + "]" * 5000, "--set", "nested too deeply", id="value-nested-too-deeply"),
    ("architecture.paths.*.stages.*.nosuch=1", "--set architecture.paths.*.stages.*.nosuch", "matches nothing"),
    ("architecture.paths.*.stages.9.cycles=1", "--set architecture.paths.*.stages.9.cycles", "matches nothing"),
    ("architecture.paths.*.stages.*.cycles=-1", f"{STAGE0}.cycles", "out of range"),
])
def test_bad_set(setting: str, key: str, words: str) -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(copy.deepcopy(BASE), sets=[setting])
    _check(e.value, key, words)


def test_a_bad_command_line_override_is_not_blamed_on_the_files_set_table(tmp_path: Path) -> None:
    # the file has no [set]: "FILE: set.nope" sent the reader to a table that is not there
    p = tmp_path / "e.toml"
    p.write_text(to_toml(BASE))
    with pytest.raises(ModelError) as e:
        load_experiment(p, sets=["nope=1"])
    assert str(e.value).startswith("--set nope: no param 'nope'") and e.value.file is None
    # one in the file's own [set] names the file and its table
    p.write_text(to_toml(BASE | {"set": {"nope": 1}}))
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    assert str(e.value).startswith(f"{p}: set.nope: no param 'nope'")


def test_a_name_two_list_items_share_is_refused() -> None:
    # xen-pv's blk_read has two stages named alike; by name the first alone was changed
    name = "trap indirect cost (cache/TLB refill)"
    for key in (f"architecture.paths.blk_read.stages.{name}.cycles=0", f"architecture.paths.*.stages.{name}.cycles=0"):
        with pytest.raises(ModelError) as e:
            load_experiment(None, host="xeon-2017", architecture="xen-pv", workload="cloud-mix", sets=[key])
        assert "2 list items are named" in str(e.value) and "(indices 2, 9)" in str(e.value)
        assert e.value.key.startswith("--set architecture.paths") and e.value.file is None
    # by index, each is reachable on its own
    exp = load_experiment(None, host="xeon-2017", architecture="xen-pv", workload="cloud-mix",
                          sets=["architecture.paths.blk_read.stages.9.cycles=7"])
    assert exp.architecture.paths["blk_read"][9].cycles == 7 and exp.architecture.paths["blk_read"][2].cycles != 7


def test_good_set_applies() -> None:
    exp = load_experiment(copy.deepcopy(BASE), sets=["exit_cycles=3000", "architecture.reserve.cores=2",
                                                     "workload.flows.f.rate_per_s=2000"])
    assert exp.host.params["exit_cycles"] == 3000
    assert exp.architecture.reserve_cores == 2
    assert exp.workload.flows[0].rate_per_s == 2000


def test_bad_seed_keyword() -> None:
    with pytest.raises(ModelError):
        run(copy.deepcopy(BASE), seed=-1)


TENANTS: dict[str, Any] = {"experiment": {"host": "xeon-2017", "architecture": "nitro", "duration_s": 0.001, "tenants": [
    {"name": "a", "vcpus": 2, "workload": "web"}, {"name": "b", "vcpus": 2, "workload": "kv-cache"}]}}


@pytest.mark.parametrize("setting,key,words", [
    ("tenants.a=1", "experiment.tenants[0]", "must be a table"),
    ("tenants.a.name=x/y", "experiment.tenants[0].name", "without '/'"),
    ("tenants.a.name=b", "experiment.tenants[1].name", "unique"),
    ("tenants.0.extra=1", "experiment.tenants[0].extra", "unknown key"),
    ("tenants.a.workload=5", "experiment.tenants[0].workload", "must be a table"),
    ("tenants.b.vcpus=0", "experiment.tenants[1].vcpus", "out of range"),
])
def test_bad_set_of_a_tenant_is_checked_after_the_override(setting: str, key: str, words: str) -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(copy.deepcopy(TENANTS), sets=[setting])
    _check(e.value, key, words)


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + to_toml(BASE).encode())
    assert load_experiment(p).host.cores == BASE["host"]["cores"]


def test_empty_file_name() -> None:
    with pytest.raises(ModelError) as e:
        load_experiment("")
    _check(e.value, "", "empty file name")


# -- limits the engine checks at run time, checked first here ---------------------------------------------

PAGED = {"name": "map", "on": "dom0", "per_page": 1e12, "unpaged_bytes": 128, "page_bytes": 4294967295,
         "account": "backend"}


@pytest.mark.parametrize("edits,words", [
    # one "page" per request (page_bytes at the engine's byte limit): the total for a request
    # passed, the per-page time (over 1e15 ps) failed in the engine, exit 1, no key named
    ((("host.ghz", 0.5),), "at 0.5 GHz"),
    ((("host.params.map_cycles", 1e15), (f"{STAGE1}.per_page", "map_cycles")), "param 'map_cycles'"),
])
def test_per_page_time_beyond_the_engine(edits: tuple[tuple[str, Any], ...], words: str, tmp_path: Path) -> None:
    d = _set(copy.deepcopy(BASE), STAGE1, dict(PAGED))
    d = _edit(*edits)(d)
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(d))
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    msg = _check(e.value, f"{STAGE1}.per_page", words, file=str(p))
    assert "per page" in msg and "1e+15" in msg


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """vemu's exit status and its one stderr line."""
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return status, err.strip()


def test_per_page_time_beyond_the_engine_cli(capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _cli(["run", "-a", "xen-pv", "--host", "xeon-2017", "-w", "cloud-mix", "--set",
                        "grant_map_packet_cycles=1e15"], capsys)
    assert status == 2, err
    assert "xen-pv.toml: paths.net_tx.stages[" in err and ".per_page:" in err and "grant_map_packet_cycles" in err, err


def _tenants_with_background(n_tenants: int, n_background: int) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d["host"]["cores"] = n_tenants + 2
    w = d.pop("workload")
    d["architecture"]["background"] = [{"name": f"bg{i}", "arrival": "poisson", "rate_per_s": 10,
                                        "steps": [{"on": "dom0", "cycles": 100}]} for i in range(n_background)]
    d["experiment"]["tenants"] = [{"name": f"t{i}", "vcpus": 1, "workload": w} for i in range(n_tenants)]
    return d


def test_flow_limit_counts_the_background_once_per_tenant(tmp_path: Path) -> None:
    # 66 x (1 + 1000) flows: counted as 1066, compiled for a minute and a half, then failed in
    # the engine ("66066 flows, need 1..65536", exit 1)
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(_tenants_with_background(66, 1000)))
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    msg = _check(e.value, "experiment.tenants", "66066 flows", file=str(p))
    assert "architecture.background" in msg and "65536" in msg



def test_flow_limit_per_tenant_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(model.LIMITS, "flows", 100)
    assert len(model.compile_experiment(load_experiment(_tenants_with_background(5, 19))).flows) == 100
    with pytest.raises(ModelError) as e:
        load_experiment(_tenants_with_background(5, 20))
    _check(e.value, "experiment.tenants", "105 flows")


SERVER = {"kind": "server", "servers": 1, "service_us": 1}


@pytest.mark.parametrize("devices,key,words", [
    # the server "nic.rx" and the duplex link's receive side were one name in the results: one
    # of them was lost, and the run exited 0
    ({"nic": {"kind": "link", "gbps": 10, "duplex": True}, "nic.rx": SERVER}, "host.devices.nic.rx",
     "receive side 'nic.rx' of duplex link 'nic' (host.devices.nic)"),
    ({"nic.rx": SERVER, "nic": {"kind": "link", "gbps": 10, "duplex": True}}, "host.devices.nic",
     "has the name of resource 'nic.rx' (host.devices.nic.rx)"),
    ({"nic": {"kind": "link", "gbps": 10, "duplex": True}, "nic.tx": SERVER}, "host.devices.nic.tx",
     "transmit side 'nic.tx' of duplex link 'nic'"),
])
def test_a_device_name_clashing_with_a_duplex_links_sides(devices: dict[str, Any], key: str, words: str,
                                                          tmp_path: Path) -> None:
    d = _set(copy.deepcopy(BASE), "host.devices", devices)
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(d))
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    _check(e.value, key, words, file=str(p))


def test_an_architecture_resource_clashing_with_a_duplex_links_side() -> None:
    d = _set(copy.deepcopy(BASE), "host.devices.nic.duplex", True)
    d["architecture"]["resources"]["nic.rx"] = {"kind": "cpu", "cores": 1, "ghz": 1.0, "on_host": False}
    with pytest.raises(ModelError) as e:
        load_experiment(d)
    _check(e.value, "architecture.resources.nic.rx", "receive side 'nic.rx' of duplex link 'nic' (host.devices.nic)")


# -- an override's mistake is blamed on the override, not on the file it changed ------------------------------

@pytest.mark.parametrize("setting,key", [
    ("architecture.paths.*.stages.*.batch=0", "architecture.paths.net_rx.stages[4].batch of xen-pv.toml"),
    ("host.devices.0=1", "host.devices.0 of xeon-2017.toml"),
])
def test_a_wildcard_overrides_mistake_names_the_override(setting: str, key: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _cli(["run", "-a", "xen-pv", "--host", "xeon-2017", "-w", "web", "--set", setting], capsys)
    assert status == 2
    assert err.startswith(f"vemu: --set {setting.split('=')[0]}: {key}: "), err


def test_a_wildcard_overrides_mistake_in_an_inline_model() -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(copy.deepcopy(BASE), sets=["architecture.paths.*.stages.*.batch=0"])
    _check(e.value, f"{STAGE1}.batch", "out of range", file="--set architecture.paths.*.stages.*.batch")


TWO_ALIKE: dict[str, Any] = {"experiment": {"host": "xeon-2017", "architecture": "nitro", "duration_s": 0.001, "tenants": [
    {"name": "a", "vcpus": 2, "workload": "web"}, {"name": "b", "vcpus": 2, "workload": "web"},
    {"name": "c", "vcpus": 2, "workload": {"name": "inl", "flows": [
        {"name": "f", "arrival": "closed", "clients": 4, "steps": [{"path": "net_tx", "bytes": 100}]}]}}]}}


@pytest.mark.parametrize("sets,origin,key", [
    (["tenants.a.vcpus=0"], "tenants.a.vcpus", "experiment.tenants[0].vcpus"),
    (["tenants.*.vcpus=0"], "tenants.*.vcpus", "experiment.tenants[0].vcpus"),
    (["tenants.a=1"], "tenants.a", "experiment.tenants[0]"),
    # a tenant's bundled workload: the error is in web.toml, which the override did not touch
    (["tenants.b.workload.flows.0.clients=0"], "tenants.b.workload.flows.0.clients",
     "experiment.tenants[1].workload.flows[0].clients of web.toml"),
    (["tenants.*.workload.flows.*.clients=0"], "tenants.*.workload.flows.*.clients",
     "experiment.tenants[0].workload.flows[0].clients of web.toml"),
    # two tenants share web.toml: the mistake is tenant a's, whatever the order of the overrides
    (["tenants.a.workload.flows.0.clients=0", "tenants.b.workload.flows.0.clients=5"],
     "tenants.a.workload.flows.0.clients", "experiment.tenants[0].workload.flows[0].clients of web.toml"),
    (["tenants.b.workload.flows.0.clients=0", "tenants.a.workload.flows.0.clients=5"],
     "tenants.b.workload.flows.0.clients", "experiment.tenants[1].workload.flows[0].clients of web.toml"),
    (["tenants.a.workload.flows.0.steps.0.path=nope"], "tenants.a.workload.flows.0.steps.0.path",
     "experiment.tenants[0].workload.flows[0].steps[0].path of web.toml"),
    (["tenants.c.workload.flows.f.clients=0"], "tenants.c.workload.flows.f.clients",
     "experiment.tenants[2].workload.flows[0].clients"),
    (["tenants.c.workload.flows.f.steps.0.path=nope"], "tenants.c.workload.flows.f.steps.0.path",
     "experiment.tenants[2].workload.flows[0].steps[0].path"),
])
def test_a_tenant_overrides_mistake_names_the_override(sets: list[str], origin: str, key: str, tmp_path: Path) -> None:
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(TWO_ALIKE))
    for spec in (p, copy.deepcopy(TWO_ALIKE)):
        with pytest.raises(ModelError) as e:
            load_experiment(spec, sets=sets)
        assert str(e.value).startswith(f"--set {origin}: {key}: "), str(e.value)
    # given in the file's [set] table
    p.write_text(to_toml(dict(TWO_ALIKE, set=dict(model.parse_set(s) for s in sets))))
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    assert str(e.value).startswith(f"{p}: [set] {origin}: {key}: "), str(e.value)


# -- [set] with unquoted dotted keys --------------------------------------------------------------------------

def test_set_table_with_unquoted_dotted_keys(tmp_path: Path) -> None:
    # TOML nests `architecture.reserve.cores = 12` into tables: it was refused as "no param
    # 'architecture' ... or give a dotted key path", though it is one
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(BASE) + "\n[set]\nexit_cycles = 3000\narchitecture.reserve.cores = 2\n"
                 "architecture.paths.net_tx.stages.back.cycles = { dist = \"lognormal\", mean = 900, cv = 0.5 }\n"
                 "workload.flows.f = { rate_per_s = 2000 }\n")
    q = tmp_path / "quoted.toml"
    q.write_text(to_toml(BASE) + "\n[set]\nexit_cycles = 3000\n\"architecture.reserve.cores\" = 2\n"
                 "\"architecture.paths.net_tx.stages.back.cycles\" = { dist = \"lognormal\", mean = 900, cv = 0.5 }\n"
                 "\"workload.flows.f.rate_per_s\" = 2000\n")
    exp, quoted = load_experiment(p), load_experiment(q)
    assert exp.raw == quoted.raw and exp.placed == quoted.placed
    assert exp.architecture.reserve_cores == 2 and exp.host.params["exit_cycles"] == 3000
    assert exp.architecture.paths["net_tx"][1].cycles == model.Dist_("lognormal", 900, 0.5)  # a value, not a path
    assert exp.workload.flows[0].rate_per_s == 2000 and exp.workload.flows[0].arrival == "poisson"


@pytest.mark.parametrize("entry,key,words", [
    ("architecture.reserve.cores = 4", "[set] architecture.reserve.cores: architecture.reserve.cores", "at most 3"),
    ("architecture.reserve.cors = 1", "[set] architecture.reserve.cors: architecture.reserve.cors", "did you mean 'cores'"),
    ("host.params.exit_cycle = 1", "set.host.params.exit_cycle", "did you mean 'host.params.exit_cycles'"),
    ("machine.cores = 2", "set.machine.cores", "a dotted key starts with one of host"),
])
def test_set_table_with_unquoted_dotted_keys_mistakes(entry: str, key: str, words: str, tmp_path: Path) -> None:
    p = tmp_path / "exp.toml"
    p.write_text(to_toml(BASE) + f"\n[set]\n{entry}\n")
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    msg = _check(e.value, key, words, file=str(p))
    assert "give a dotted key path" not in msg


# -- the Python API's arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,key,words", [
    # accepted, then a raw cffi TypeError when run (or True ran as seed 1)
    ({"seed": 1.5}, "seed", "must be an integer, got 1.5"),
    ({"seed": True}, "seed", "must be an integer, got True"),
    ({"seed": "3"}, "seed", "must be an integer"),
    ({"seed": 2**64}, "seed", "out of range"),
    ({"seed": -1}, "seed", "out of range"),
    # a ValueError, an AttributeError
    ({"sets": [("a",)]}, "sets[0]", "(KEY, VALUE) pair"),
    ({"sets": [(1, 2)]}, "sets[0]", "string KEY"),
    ({"sets": [3]}, "sets[0]", "'KEY=VALUE'"),
    ({"sets": "exit_cycles=1"}, "sets", "an iterable of overrides"),  # taken letter by letter
    ({"sets": 5}, "sets", "an iterable of overrides"),
    ({"host": 1}, "host", "must be a bundled host's name"),
    ({"architecture": ["xen-pv"]}, "architecture", "must be a bundled architecture's name"),
])
def test_bad_load_experiment_argument(kwargs: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(copy.deepcopy(BASE), **kwargs)
    assert e.value.key == key
    _check(e.value, key, words)


def test_bad_spec_argument() -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(5)  # type: ignore[arg-type]
    assert e.value.key == "spec"


def test_good_load_experiment_arguments() -> None:
    exp = load_experiment(copy.deepcopy(BASE), seed=7, sets=[("exit_cycles", 3000), ["architecture.reserve.cores", 2],
                                                             "workload.flows.f.rate_per_s=2000"])
    assert (exp.seed, exp.host.params["exit_cycles"], exp.architecture.reserve_cores) == (7, 3000, 2)
    assert exp.workload.flows[0].rate_per_s == 2000


@pytest.mark.parametrize("kwargs,key,words", [
    ({"trace_requests": -1}, "trace_requests", "out of range"),  # a raw OverflowError
    ({"trace_requests": 2**33}, "trace_requests", "out of range"),
    ({"trace_requests": 1.5}, "trace_requests", "must be an integer"),
    ({"pool_size": -1}, "pool_size", "out of range: an integer in [1, "),  # was "smaller than the 0 closed-loop clients"
    ({"pool_size": 0}, "pool_size", "out of range"),
    ({"pool_size": 2**40}, "pool_size", "out of range"),
    ({"pool_size": "big"}, "pool_size", "must be an integer"),
])
def test_bad_compile_argument(kwargs: dict[str, Any], key: str, words: str) -> None:
    from emulator.simulation import Simulation

    exp = load_experiment(copy.deepcopy(BASE))
    for f in (lambda: model.compile_experiment(exp, **kwargs), lambda: Simulation(exp, **kwargs).run(),
              lambda: run(copy.deepcopy(BASE), **kwargs)):
        with pytest.raises(ModelError) as e:
            f()
        assert e.value.key == key
        _check(e.value, key, words)


@pytest.mark.parametrize("args,key,words", [
    (("foo", "x"), "kind", "'foo' is not a model kind"),  # a KeyError
    (("host", 1), "name", "must be a bundled host's name"),
    (("host", "nope"), "name", "no bundled host 'nope'"),
])
def test_bad_model_load_argument(args: tuple[Any, Any], key: str, words: str) -> None:
    with pytest.raises(ModelError) as e:
        model.load(*args)
    assert e.value.key == key
    _check(e.value, key, words)


@pytest.mark.parametrize("seed", [1.5, True, -1, 2**64, "3"])
def test_simulation_run_checks_its_seed(seed) -> None:
    # a float or a bool reached the engine as a raw cffi TypeError
    from emulator.simulation import Simulation
    sim = Simulation(load_experiment(host="xeon-2017", architecture="nitro", workload="web", duration_s=1e-4))
    with pytest.raises(ModelError, match="seed: must be an integer"):
        sim.run(seed=seed)


def test_a_loaded_experiment_is_compiled_once() -> None:
    # load_experiment compiles (to check cross-references) and keeps the result for the run;
    # the copy that records where the overrides went dropped it, so every run compiled twice
    from emulator.model import compile_experiment
    exp = load_experiment(host="xeon-2017", architecture="xen-pv", workload="cloud-mix", sets=["exit_cycles=2000"])
    assert compile_experiment(exp) is compile_experiment(exp) and exp.placed


def test_a_source_key_must_be_one_of_sources_toml() -> None:
    # `sources` are keys of models/sources.toml: an unknown one cited nothing and `vemu show`
    # dropped it silently
    bad = copy.deepcopy(BASE)
    bad["architecture"]["sources"] = ["gregg2017", "martins2071"]
    with pytest.raises(ModelError) as e:
        load_experiment(bad)
    _check(e.value, "architecture.sources[1]", "did you mean 'martins2017'")
    good = copy.deepcopy(BASE)
    good["architecture"]["sources"] = ["gregg2017", "martins2017"]
    assert load_experiment(good).architecture.sources == ("gregg2017", "martins2017")


# -- from a review of the model loader: each of these crashed, passed wrongly or blamed the wrong place


def _bad(d: dict[str, Any], key: str, words: str, sets: Sequence[str] = ()) -> None:
    with pytest.raises(ModelError) as e:
        load_experiment(d, sets=list(sets))
    _check(e.value, key, words)


def test_an_integer_literal_beyond_any_double_is_out_of_range() -> None:
    # float() of it raised OverflowError: an internal error, exit 1
    big = 10**400
    _bad(_edit(("host.params.exit_cycles", big))(copy.deepcopy(BASE)), "host.params.exit_cycles",
         "an integer of 401 digits is out of range")
    _bad(_edit(("host.cores", big))(copy.deepcopy(BASE)), "host.cores", "an integer of 401 digits is out of range")
    _bad(copy.deepcopy(BASE), "host.params.exit_cycles", "out of range", sets=[f"exit_cycles={big}"])
    # beyond the 4,300 digits Python will print: counted, not printed (a bare ValueError)
    with pytest.raises(ModelError, match="an integer of 5001 digits is out of range"):
        load_experiment(copy.deepcopy(BASE), duration_s=10**5000)


@pytest.mark.parametrize("params", [5, "exit_cycles", [1]])
def test_params_that_are_not_a_table_are_said_so_before_an_override_looks_in_them(params: Any) -> None:
    d = _edit(("host.params", params), (STAGE0 + ".cycles", 100))(copy.deepcopy(BASE))
    for sets in ([], ["exit_cycles=3"], ["architecture.params.foo=3"]):
        _bad(copy.deepcopy(d), "host.params", "must be a table", sets)
    # one an earlier override replaced: the later override says so, not "no param"
    _bad(copy.deepcopy(BASE), "--set exit_cycles", "host.params is an integer, not a table: an earlier override",
         ["host.params=3", "exit_cycles=6"])


@pytest.mark.parametrize("stage,key,words", [
    ({"on": "nic", "cycles": 5}, ".cycles", "its time comes from the bytes"),
    ({"on": "nic", "account": "exit"}, ".account", "not charged to a category"),
    ({"on": "nic", "batch": 4}, ".batch", "does not batch"),
    ({"on": "nic", "per_page": 5}, ".per_page", "only a cpu stage has work per page"),
])
def test_a_path_no_flow_walks_is_checked_as_a_walked_one(stage: dict[str, Any], key: str, words: str) -> None:
    # a model that passes with one workload must not fail with another: only its resource and
    # params were checked, so these ran (exit 0) until a workload walked the path
    d = copy.deepcopy(BASE)
    d["architecture"]["paths"]["unused"] = {"stages": [stage]}
    _bad(d, "architecture.paths.unused.stages[0]" + key, words)
    # and the path's categories are not the run's: a valid unwalked path adds none
    ok = copy.deepcopy(BASE)
    ok["architecture"]["paths"]["unused"] = {"stages": [{"on": "dom0", "cycles": 5, "account": "nowhere"}]}
    assert "nowhere" not in compile_experiment(load_experiment(ok)).categories


@pytest.mark.parametrize("where", ["host.devices", "architecture.resources"])
def test_a_resource_named_like_a_tenants_vcpus_is_refused(where: str) -> None:
    # "vcpu@x" was taken for a tenant's vCPUs: its tenant work stretched by nested paging
    d = copy.deepcopy(BASE)
    table = d["host"]["devices"] if where == "host.devices" else d["architecture"]["resources"]
    table["vcpu@x"] = {"kind": "cpu", "cores": 1} | ({"ghz": 2.0} if where == "host.devices" else {})
    _bad(d, f"{where}.vcpu@x", "'@' is kept for a tenant's vCPUs")


def test_an_error_in_a_path_whose_name_holds_a_colon_names_the_file_and_key_whole(tmp_path: Path) -> None:
    d = copy.deepcopy(BASE)
    d["architecture"]["paths"]["rx:fast"] = {"stages": [{"on": "vcpu", "cycles": "no_such_param"}]}
    p = tmp_path / "c.toml"
    p.write_text(to_toml(d))
    with pytest.raises(ModelError) as e:
        load_experiment(p)
    assert e.value.file == str(p) and e.value.key == 'architecture.paths.rx:fast.stages[0].cycles', str(e.value)


def test_a_broken_sources_toml_is_one_line_naming_it(tmp_path: Path) -> None:
    # every model load checks `sources` against it: a broken file was an internal error for
    # every command
    import os
    import shutil
    import subprocess
    import sys

    models = tmp_path / "models"
    shutil.copytree(model.MODELS_DIR, models)
    with open(models / "sources.toml", "a", encoding="utf-8") as f:
        f.write("\n[broken\n")
    r = subprocess.run([sys.executable, "-m", "emulator.cli", "run", "--host", "xeon-2017", "-a", "nitro", "-w", "web",
                        "--duration", "0.001", "-q"], capture_output=True, text=True,
                       env=dict(os.environ, VEMU_MODELS=str(models)))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "sources.toml: is not valid TOML" in r.stderr


@pytest.mark.parametrize("name", ["x\ny", "a\x1b[31mRED", "tab\there", "del\x7f"])
def test_a_name_with_a_control_character_is_refused(name: str) -> None:
    # a flow's name was printed raw: a line break split the results table and an escape
    # sequence reached the terminal
    doc = copy.deepcopy(BASE)
    doc["workload"]["flows"][0]["name"] = name
    with pytest.raises(ModelError, match="control character"):
        load_experiment(doc)
    doc = copy.deepcopy(BASE)
    doc["host"]["devices"][name] = doc["host"]["devices"].pop("nic")
    with pytest.raises(ModelError, match="control character"):
        load_experiment(doc)


def test_only_regular_files_are_bundled_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a folder named x.toml was listed as a model, then refused as missing: "no bundled host
    # 'dir'; did you mean 'dir'?"
    (tmp_path / "hosts" / "dir.toml").mkdir(parents=True)
    (tmp_path / "hosts" / "real.toml").write_text("")
    monkeypatch.setattr(model, "MODELS_DIR", tmp_path)
    assert model.bundled("host") == ["real"]


def test_a_path_key_with_a_control_character_and_a_tenant_named_like_a_measure() -> None:
    doc = copy.deepcopy(BASE)
    doc["architecture"]["paths"]["q\nX"] = doc["architecture"]["paths"]["net_tx"]
    with pytest.raises(ModelError, match="control character"):
        load_experiment(doc)
    doc = {"experiment": {"host": "xeon-2017", "architecture": "kvm-virtio",
                          "tenants": [{"name": "host_cycles.x", "vcpus": 2, "workload": "kv-cache"}]}}
    with pytest.raises(ModelError, match="names the measures of every host") as e:
        load_experiment(doc)
    assert e.value.key == "experiment.tenants[0].name"
