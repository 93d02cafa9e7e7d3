"""`vemu show`: a model's numbers, each beside the source or assumption it rests on.

The scanner (emulator.citations) reads comments, which TOML parsers drop, so it reads the
file's structure itself; it is checked against tomllib on the same file: the numbers it
finds, with their key paths and values, are exactly tomllib's numeric leaves, and each is
on the line it says. The bundled files are uniform, so awkward but valid files are checked
too (each formatting once broke an earlier line-based version).
"""

import json
import math
import tomllib

import pytest

from emulator.citations import key_str, leaves, numbers
from emulator.cli import main
from emulator.model import MODELS_DIR, bundled

MODEL_FILES = sorted(p for d in ("hosts", "architectures", "workloads") for p in (MODELS_DIR / d).glob("*.toml"))

AWKWARD = {
    "triple quotes in a comment and a literal": (
        '# write it between """ marks\nnote = \'a literal with """ inside\'\nghz = 2.3\n'
        "doc = \'\'\'\nk = 3\n\'\'\'\ncores = 4\n"),
    "first element on the opening line, two on one line, ] on the last": (
        "[paths.rx]\nstages = [ { name = \"a\", cycles = 1 },\n  { name = \"b\", cycles = 2 }, { name = \"c\", "
        "cycles = 3 } ]\nextra = 5\n"),
    "nested arrays of tables and a sub-table": (
        "[[flows]]\nname = \"f\"\n[[flows.mix]]\nweight = 1\n[[flows.mix]]\nweight = 2\n[flows.mix.sub]\nx = 7\n"
        "[[flows]]\nname = \"g\"\n[[flows.mix]]\nweight = 3\n"),
    "quoted and spaced keys": (
        "[resources.\"card\"]\ncores = 32\n[ paths . tx ]\nsite.\"google.com\" = 5\n\"a b\" = 6\n"),
    "a multi-line array inside an inline table's item": (
        "mix = [\n  { name = \"web\", weight = 0.3, steps = [\n    { cycles = 40000 },\n    { bytes = 512 },\n  ] },\n"
        "  { name = \"kv\", weight = 0.7 },\n]\n"),
    "a line separator inside a comment, strings with # = [ and escapes": (
        "ghz = 2.3  # from a PDF:\u2028page 4 = 12 cycles\ns = \"a # b = [1\\\" ]\"\ncores = 4 # \"quoted\" it's\n"
        "v = [1, 2,\n 3]\nneg = -1_000\nf = +1.5e-3\nnums = [inf, -nan, 0x1F]\nwhen = 1979-05-27 07:32:00\nok = true\n"),
}


def _numeric_leaves(data, key=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _numeric_leaves(v, key + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _numeric_leaves(v, key + (i,))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield key, data


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


def _check_against_tomllib(text):
    want = dict(_numeric_leaves(tomllib.loads(text)))
    found, _ = leaves(text)
    got = {leaf.key: tomllib.loads(f"v = {leaf.text}")["v"] for leaf in found}
    assert set(got) == set(want)
    assert all(_same(got[k], want[k]) for k in want)
    for leaf in found:  # exactly where it says: its text at its offset, on its line
        assert text[leaf.offset:leaf.offset + len(leaf.text)] == leaf.text, leaf
        assert leaf.line == text.count("\n", 0, leaf.offset) + 1, leaf


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_scanner_finds_exactly_tomllibs_numbers_in_every_bundled_file(path):
    _check_against_tomllib(path.read_text())


@pytest.mark.parametrize("name", list(AWKWARD))
def test_the_scanner_finds_exactly_tomllibs_numbers_in_awkward_files(name):
    _check_against_tomllib(AWKWARD[name])


def test_awkward_files_give_the_right_lines_and_comments(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text(AWKWARD["a line separator inside a comment, strings with # = [ and escapes"])
    ns = {n.key: n for n in numbers(f)}
    assert ns["ghz"].line == 1 and "page 4 = 12 cycles" in ns["ghz"].comment
    assert ns["cores"].line == 3 and ns["cores"].comment == '"quoted" it\'s'
    assert ns["v"].line == 4 and [leaf.text for leaf in ns["v"].leaves] == ["1", "2"]
    assert "when" not in ns and "ok" not in ns and "s" not in ns
    f.write_text(AWKWARD["first element on the opening line, two on one line, ] on the last"])
    assert [(n.line, n.key) for n in numbers(f)] == [
        (2, "paths.rx.stages[0].cycles"), (3, "paths.rx.stages"), (4, "paths.rx.extra")]
    assert key_str(("resources", "card", "cores")) == "resources.card.cores"
    assert key_str(("site", "google.com")) == 'site."google.com"'


def test_a_line_without_a_trace_is_reported(tmp_path, capsys):
    f = tmp_path / "mine.toml"
    f.write_text('name = "mine"\nsummary = "x"\n[params]\na_cycles = 10  # li2020: a measured cost\n'
                 'b_cycles = 20  # my guess: none\nc_cycles = 30  # assumption: why\n'
                 '[paths.net_rx]\nstages = [ { name = "s", on = "vcpu", cycles = 1 } ]\n'
                 + "".join(f'[paths.{p}]\nstages = [ {{ name = "s", on = "vcpu" }} ]\n'
                           for p in ("net_tx", "blk_read", "blk_write")))
    ns = {n.key: n for n in numbers(f)}
    assert ns["params.a_cycles"].cites == ("li2020",) and not ns["params.a_cycles"].assumption
    assert not ns["params.b_cycles"].traced  # "guess:" is prose, not a key of sources.toml
    assert ns["params.c_cycles"].assumption and not ns["params.c_cycles"].cites
    assert main(["show", str(f), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "architecture"
    assert d["counts"] == {"numbers": 4, "sourced": 1, "assumption_only": 1, "untraced": 2}
    assert main(["show", str(f)]) == 0
    assert "2 NOT TRACED" in capsys.readouterr().out


@pytest.mark.parametrize("name", bundled("architecture") + bundled("host") + bundled("workload"))
def test_bundled_models_account_for_every_number(name, capsys):
    assert main(["show", name, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    c = d["counts"]
    assert c["untraced"] == 0 and c["numbers"] == c["sourced"] + c["assumption_only"] > 0
    assert set(d["sources"]) >= {k for n in d["numbers"] for k in n["sources"]}
    assert main(["show", name, "--assumptions", "--json"]) == 0
    only = json.loads(capsys.readouterr().out)["numbers"]
    assert len(only) == c["assumption_only"] and all(n["assumption"] and not n["sources"] for n in only)


def test_paths_show_the_costs_at_a_hosts_clock(capsys):
    assert main(["show", "xen-pv", "--host", "xeon-2017"]) == 0
    out = capsys.readouterr().out
    # the guest's kick is a PV trap (the architecture's hypercall_cycles, 760: 0.330 us at
    # 2.3 GHz); dom0's netback is the architecture's too
    assert ("netfront kick: event-channel send hypercall (trap into Xen): on vcpu; hypercall_cycles = 760 cycles, "
            "0.33 us; -> hypervisor") in out
    assert "netback_rx_cycles = 2208 cycles, 0.96 us; -> backend" in out
    assert "params.netback_rx_cycles = 2208   [martins2017]" in out
    # an HVM guest's EOI exit: exit_cycles is the host's (li2020: 1550 cycles), 0.674 us at 2.3 GHz
    assert main(["show", "xen-aws-2017", "--host", "xeon-2017"]) == 0
    assert ("guest EOI to the virtual APIC (exit): on vcpu; exit_cycles = 1550 cycles, 0.674 us; -> exit"
            in capsys.readouterr().out)
    assert main(["show", "xen-aws-2017"]) == 0
    assert "exit_cycles (a host param; --host gives its value)" in capsys.readouterr().out


def test_an_offload_card_is_priced_at_its_own_clock(capsys):
    # nitro's card runs at 2 GHz (on_host = false): 2000 cycles are 1 us there, not 0.87 us at the host's 2.3
    assert main(["show", "nitro", "--host", "xeon-2017"]) == 0
    out = capsys.readouterr().out
    assert "on card; card_net_cycles = 2000 cycles, 1 us;" in out and "on vcpu; tx_stack_cycles = 5000 cycles, 2.19 us (with nested paging" in out
    assert main(["show", "nitro"]) == 0
    assert "card_net_cycles = 2000 cycles, 1 us;" in capsys.readouterr().out  # the card's clock needs no host


def test_a_workload_is_priced_at_a_host_and_a_clash_is_refused(tmp_path, capsys):
    assert main(["show", "kv-cache", "--host", "xeon-2017"]) == 0
    out = capsys.readouterr().out
    assert "2. tenant work on vcpu: on vcpu; 4000 cycles, 1.74 us; -> tenant" in out
    assert 'flows[0].steps[1].cycles = 4000' in out  # an unnamed step takes no label from its flow
    arch = tmp_path / "a.toml"
    arch.write_text('name = "a"\nsummary = "s"\n[params]\nexit_cycles = 1\n' + "".join(
        f'[paths.{p}]\nstages = [ {{ name = "s", on = "vcpu", cycles = "exit_cycles" }} ]\n'
        for p in ("net_rx", "net_tx", "blk_read", "blk_write")))
    assert main(["show", str(arch), "--host", "xeon-2017"]) == 2  # the engine refuses this pair too
    assert "param 'exit_cycles' is defined by both the host and the architecture" in capsys.readouterr().err


def test_an_experiment_file_shows_its_three_models(capsys):
    spec = str(MODELS_DIR.parent / "examples" / "idle-states.toml")
    assert main(["show", spec, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [m["kind"] for m in d["models"]] == ["host", "architecture", "workload"]
    host, arch, _ = d["models"]
    assert host["table"] == "host" and {n["key"] for n in host["numbers"]} >= {"host.ghz", "host.idle_states[3]"}
    assert arch["paths"]["rx"] == ["wire: no resource; delay 2 us",
                                   "handle the packet: on vcpu; 1000 cycles, 1 us; -> tenant"]  # at its 1 GHz host


def test_xeon_2017s_exit_cost_cites_its_source(capsys):
    assert main(["show", "xeon-2017", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    (n,) = [n for n in d["numbers"] if n["key"] == "params.exit_cycles"]
    assert n["value"] == "1550" and n["sources"] == ["li2020"]
    assert d["sources"]["li2020"]["year"] == 2020


@pytest.mark.parametrize("argv, words", [
    (["show", "xen-pvv"], "no bundled model 'xen-pvv'"),
    (["show", "/nonexistent/arch.toml"], "no such model file"),
    (["show", "xeon-2017", "--host", "xeon-2017"], "it does not apply to a host"),
    (["show", "xen-pv", "--host", "/nonexistent/h.toml"], "no such model file"),
    (["show", "xen-pv", "--host", "xen-pv"], "no bundled host 'xen-pv'"),
    (["show", "xen-pv", "--kind", "host"], "no bundled host 'xen-pv'"),
])
def test_bad_input_is_one_line_and_status_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_a_file_of_no_known_kind_asks_for_kind(tmp_path, capsys):
    f = tmp_path / "x.toml"
    f.write_text('name = "x"\n')
    assert main(["show", str(f)]) == 2
    assert "give --kind" in capsys.readouterr().err


# ---------------------------------------------------------------- any document, any layout
# A random document, written out with random but valid TOML layout choices: the scanner
# must find exactly tomllib's numbers in it, each on its own line.

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_KEYS = st.sampled_from(["a", "b-1", "c_2", "3", "x y", "p.q", "it's", 'say "hi"', "#k", "[k]"])
_NUMS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True, width=32))
_STRS = st.text(alphabet=st.sampled_from(list("ab #=[]{},'\"\\\n.") + ["\u2028"]), max_size=8)
_SCALARS = st.one_of(_NUMS, _STRS, st.booleans())
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=8)


def _key(draw, k):
    if k.replace("-", "").replace("_", "").isalnum() and " " not in k:
        return k
    if "'" not in k and draw(st.booleans()):
        return f"'{k}'"
    return '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _num(draw, v):
    if isinstance(v, float) and v != v:
        return draw(st.sampled_from(["nan", "+nan", "-nan"]))
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return ("-" if v < 0 else draw(st.sampled_from(["", "+"]))) + "inf"
    if isinstance(v, int) and v >= 0 and draw(st.booleans()):
        return draw(st.sampled_from([f"{v:_}", hex(v), oct(v).replace("0o", "0o"), bin(v)]))
    return repr(float(v)) if isinstance(v, float) else str(v)


def _str(draw, v):
    if "\n" in v or "\u2028" in v or draw(st.booleans()):
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\u2028", "\\u2028")
        return f'"{esc}"'
    if "'" not in v:
        return f"'{v}'"
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(draw, v):
    nl = "\n" if draw(st.booleans()) else " "
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _num(draw, v)
    if isinstance(v, str):
        return _str(draw, v)
    if isinstance(v, list):
        items = [_value(draw, x) for x in v]
        comment = "  # a 'comment' [with = 1] \"quotes\"\n" if draw(st.booleans()) else nl
        return "[" + comment + ("," + nl).join(items) + ("," if items and draw(st.booleans()) else "") + nl + "]"
    return "{ " + ", ".join(f"{_key(draw, k)} = {_value(draw, x)}" for k, x in v.items()) + " }"


@settings(max_examples=150, deadline=None)
@given(st.data(), st.dictionaries(_KEYS, _VALUES, max_size=4), st.dictionaries(_KEYS, _VALUES, max_size=3),
       st.lists(st.dictionaries(_KEYS, _VALUES, max_size=3), max_size=2))
def test_the_scanner_agrees_with_tomllib_on_any_document(data, top, table, aot):
    draw = data.draw
    lines = [f"{_key(draw, k)} = {_value(draw, v)}  # {k}: note" for k, v in top.items()]
    lines.append("[ t . \"sub table\" ]  # a header comment")
    lines += [f"{_key(draw, k)}={_value(draw, v)}" for k, v in table.items()]
    for item in aot:
        lines.append("[[t.arr]]")
        lines += [f"{_key(draw, k)} = {_value(draw, v)}" for k, v in item.items()]
    _check_against_tomllib("\n".join(lines) + "\n")


# ---------------------------------------------------------------- --sensitivity

def test_every_sensitivity_row_lands_on_a_line_of_the_models_it_varied():
    # every (architecture, range) row of the committed study is shown on some line of the
    # study's host, that architecture or the study's workload: the mapping from `--set`
    # keys (names or indices) to lines loses nothing
    from emulator.experiments.sensitivity import HOST, WORKLOAD
    from emulator.provenance import read_csv
    from emulator.show import DEFAULT_SENSITIVITY, describe, resolve, sensitivity_marks

    marks, _ = sensitivity_marks(DEFAULT_SENSITIVITY)
    _, rows, _ = read_csv(DEFAULT_SENSITIVITY)
    shown = {name: describe(resolve(name, None)[0], None, marks) for name in (HOST, WORKLOAD)}
    for a in bundled("architecture"):
        want = {r["parameter"] for r in rows if r["architecture"] == a}
        ds = [describe(resolve(a, None)[0], None, marks), *shown.values()]
        got = {e["range"] for d in ds for n in d["numbers"] for e in n["sensitivity"] if e["architecture"] == a}
        assert got == want, a


def test_a_sensitivity_row_is_shown_on_its_lines(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text("# git_revision: abc\narchitecture,parameter,low_value,high_value,usable_at_low,usable_at_high,"
                   "baseline,swing,key,noise\nxen-pv,netback Rx per packet,1081,3091,0.6,0.4,0.5,0.2,netback_rx_cycles,0\n"
                   "xen-pv,reserved cores for dom0,4,12,0.3,0.7,0.5,0.4,architecture.reserve.cores,0\n")
    assert main(["show", "xen-pv", "--sensitivity", str(csv), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    marked = {n["key"]: [e["range"] for e in n["sensitivity"]] for n in d["numbers"] if n["sensitivity"]}
    # reserve.cores and dom0's cores are one quantity (`also` in sensitivity.toml)
    assert marked == {"params.netback_rx_cycles": ["netback Rx per packet"], "reserve.cores": ["reserved cores for dom0"],
                      "resources.dom0.cores": ["reserved cores for dom0"]}
    assert d["sensitivity_coverage"]["lines_varied"] == 3
    assert main(["show", "xen-pv", "--sensitivity", str(csv)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the text is wrapped
    assert "'netback Rx per packet' from 1081 to 3091 puts the usable fraction at 0.600 and 0.400 (baseline 0.500)" in out
    assert main(["show", "xen-pv", "--sensitivity", str(tmp_path / "none.csv")]) == 2
    err = capsys.readouterr().err
    assert "none.csv: no sensitivity results here" in err and err.count("\n") == 1


def test_a_range_setting_two_keys_of_one_line_counts_each_architecture_once(capsys):
    # 'streaming: chunk bytes' sets both of the streaming class's 16 KiB sizes, on one line
    # of cloud-mix: the line is varied for each of the 9 architectures, not 18
    import re

    assert main(["show", "cloud-mix", "--sensitivity"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    counts = [int(n) for n in re.findall(r"(\d+) architectures? varied", out)]
    assert counts and max(counts) <= len(bundled("architecture")), counts
    assert "'streaming: chunk bytes'" in out


# ---------------------------------------------------------------- experiments, odd input

@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe\x00garbage", "not a CSV that `vemu reproduce` wrote"),
    (b"architecture,parameter\nxen-pv,netback Rx per packet\n", "no column baseline"),
    (b"architecture,parameter,low_value,high_value,usable_at_low,usable_at_high,baseline,swing\n"
     b"xen-pv,netback Rx per packet,abc,1,0.5,0.5,0.5,0\n", "row 1: low_value is 'abc', not a finite number"),
    (b"architecture,parameter,low_value,high_value,usable_at_low,usable_at_high,baseline,swing\n"
     b"xen-pv,netback Rx per packet,nan,1,0.5,0.5,0.5,0\n", "row 1: low_value is 'nan'"),
    (b"architecture,parameter,low_value,high_value,usable_at_low,usable_at_high,baseline,swing\n"
     b"xen-pv,netback Rx per packet,1\n", "row 1: high_value is None"),
    (b"architecture,parameter,low_value,high_value,usable_at_low,usable_at_high,baseline,swing\n"
     b"xen-pv,a renamed range,1,2,0.5,0.5,0.5,0\n", "older than models/sensitivity.toml"),
    (b"architecture,parameter,low_value,high_value,usable_at_low,usable_at_high,baseline,swing\n", "has no rows"),
])
def test_a_bad_sensitivity_csv_is_one_line_and_status_2(tmp_path, capsys, content, words):
    f = tmp_path / "s.csv"
    f.write_bytes(content)
    assert main(["show", "xen-pv", "--sensitivity", str(f)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_a_byte_order_mark_changes_nothing(tmp_path, capsys):
    src = (MODELS_DIR / "hosts" / "xeon-2017.toml").read_text()
    for name, text in (("plain", src), ("bom", "\ufeff" + src)):
        (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    outs = []
    for name in ("plain", "bom"):
        assert main(["show", str(tmp_path / f"{name}.toml"), "--json"]) == 0
        d = json.loads(capsys.readouterr().out)
        outs.append((d["counts"], [(n["line"], n["key"], n["value"]) for n in d["numbers"]]))
    assert outs[0] == outs[1]


def test_an_experiment_shows_its_overrides_its_tenants_and_prices_at_its_own_clocks(tmp_path, capsys):
    f = tmp_path / "e.toml"
    f.write_text('[experiment]\nhost = "xeon-2017"\narchitecture = "nitro"\n'
                 'tenants = [ { name = "a", vcpus = 2, workload = "kv-cache" },\n'
                 '  { name = "b", vcpus = 2, workload = { name = "w", summary = "s", flows = [ { name = "f", '
                 'arrival = "closed", clients = 1, steps = [ { on = "card", cycles = 4000 } ] } ] } } ]\n'
                 "[set]\nexit_cycles = 3000\n")
    assert main(["show", str(f), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    host, arch, a, b = d["models"]
    assert [m["kind"] for m in d["models"]] == ["host", "architecture", "workload", "workload"]
    assert (a["tenant"], a["name"], a["file"]) == ("a", "kv-cache", str(MODELS_DIR / "workloads" / "kv-cache.toml"))
    assert b["tenant"] == "b" and b["table"] == "experiment.tenants[1].workload"
    # tenant b's line also holds its vcpus, which are not the workload's
    assert {k for n in b["numbers"] for k in n["numbers"]} == {"experiment.tenants[1].workload.flows[0].clients",
                                                              "experiment.tenants[1].workload.flows[0].steps[0].cycles"}
    # the card's 4000 cycles at its own 2 GHz: 2 us, not 1.74 at the host's 2.3; [set] priced in
    assert b["flows"]["f"]["classes"]["f"]["steps"] == ["tenant work on card: on card; 4000 cycles, 2 us; -> tenant"]
    assert any("exit_cycles = 3000 cycles, 1.3 us" in st for st in arch["flows"]["timer"]["classes"]["timer"]["steps"])
    assert arch["set"] == {"exit_cycles": 3000}
    assert main(["show", str(f), "--kind", "architecture"]) == 0
    assert capsys.readouterr().out.startswith("architecture nitro:")


def test_a_host_cpu_device_is_priced_at_its_own_clock(tmp_path, capsys):
    f = tmp_path / "h.toml"
    f.write_text('[experiment]\narchitecture = "bare-metal"\nworkload = "kv-cache"\n'
                 '[host]\nname = "h"\nsummary = "x"\ncores = 8\nghz = 2.0\nmemory_gib = 8\n'
                 '[host.params]\nexit_cycles = 1000\nexit_indirect_cycles = 1000\nirq_exit_cycles = 1000\n'
                 'userspace_exit_cycles = 1000\nipi_exit_cycles = 1000\n'
                 '[host.devices.nic]\nkind = "link"\nduplex = true\ngbps = 10\n[host.devices.nvme]\nkind = "server"\nservers = 1\n'
                 'service_us = 10\n[host.devices.ebs]\nkind = "server"\nservers = 1\nservice_us = 10\n'
                 '[host.devices.fpga]\nkind = "cpu"\ncores = 2\nghz = 0.5\n'
                 '[set]\n"workload.flows.0.steps.1.on" = "fpga"\n')
    assert main(["run", str(f), "--duration", "0.001", "-q"]) == 0  # the engine takes it
    capsys.readouterr()
    assert main(["show", str(f), "--kind", "workload"]) == 0
    assert "2. tenant work on fpga: on fpga; 4000 cycles, 8 us; -> tenant" in capsys.readouterr().out


# Numbers of the headline's models that rest on an assumption alone and that the
# sensitivity study leaves fixed, each with the reason (models/sensitivity.toml says the same)
FIXED_ON_PURPOSE = {
    ("host", "xeon-2017"): {"devices.ebs.servers": "cloud-mix does no EBS I/O"},
    ("workload", "cloud-mix"): {"flows[0].clients": "saturation is the headline's definition, not a cost",
                                "flows[0].think_us": "saturation is the headline's definition, not a cost"},
    ("architecture", "xen-aws-2017"): {"params.blkback_cycles": "its dom0 serves only EBS, unused on cloud-mix",
                                       "params.blk_copy_per_byte": "its dom0 serves only EBS, unused on cloud-mix"},
}


def test_the_sensitivity_study_varies_every_assumption_the_headline_rests_on():
    # an assumption-only number added to a headline model needs a range in
    # models/sensitivity.toml (and results/ regenerated), or a reason here
    from emulator.experiments.sensitivity import HOST, WORKLOAD
    from emulator.show import DEFAULT_SENSITIVITY, describe, resolve, sensitivity_marks

    marks, _ = sensitivity_marks(DEFAULT_SENSITIVITY)
    for kind, name in [("host", HOST), ("workload", WORKLOAD)] + [("architecture", a) for a in bundled("architecture")]:
        d = describe(resolve(name, kind)[0], None, marks)
        fixed = set(d["sensitivity_coverage"]["assumption_only_not_varied"])
        assert fixed == set(FIXED_ON_PURPOSE.get((kind, name), {})), (kind, name)


def test_show_lists_an_unquoted_dotted_set_key_as_run_reads_it(tmp_path, capsys) -> None:
    # [set] workload.flows.0.clients = 16 (unquoted: TOML nests it) was shown as
    # "workload = {'flows': {'0': {'clients': 16}}}"
    f = tmp_path / "x.toml"
    f.write_text((MODELS_DIR.parent / "examples" / "closed-dom0.toml").read_text() + "\n[set]\nworkload.flows.0.clients = 16\n")
    assert main(["show", str(f)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "[set] overrides workload.flows.0.clients = 16" in out and "{'flows'" not in out


def test_an_unnamed_stage_is_named_for_what_it_is() -> None:
    from emulator.model import _stage
    assert _stage({"on": "vcpu", "cycles": 10}, "f", "k").name == "tenant work on vcpu"
    assert _stage({"on": "nvme"}, "f", "k").name == "nvme"  # a device's stage does no work on a cpu
    assert _stage({"delay_us": 1}, "f", "k").name == "delay"


def test_show_says_where_paging_comes_from(capsys):
    # the architecture's nested_paging key: its param and share, or nothing where it is 0
    from emulator.cli import main
    assert main(["show", "nitro"]) == 0
    out = capsys.readouterr().out
    assert "nested paging: nested_paging_share = 0.0053 of the guest's own time" in out
    assert main(["show", "xen-pv"]) == 0
    assert "nested paging" not in capsys.readouterr().out


def test_shows_a_nested_paging_share_named_by_the_host_s_params(tmp_path, capsys):
    # the share's param may come from any of the experiment's models, as the engine reads it
    from emulator.cli import main
    f = tmp_path / "np.toml"
    f.write_text('[experiment]\nduration_s = 0.002\n[host]\nname = "h"\ncores = 2\nghz = 1.0\nmemory_gib = 4\n'
                 'params = { np = 0.01 }\n[architecture]\nname = "a"\nnested_paging = "np"\n'
                 '[architecture.paths.x]\nstages = [{ on = "vcpu", cycles = 100 }]\n[workload]\nname = "w"\n'
                 'flows = [{ name = "f", arrival = "poisson", rate_per_s = 1000, steps = [{ path = "x" }] }]\n')
    assert main(["show", str(f), "--kind", "architecture"]) == 0
    assert "nested paging: np = 0.01 of the guest's own time" in capsys.readouterr().out


def test_a_hosts_device_priced_by_its_own_param_shows_the_value(tmp_path, capsys) -> None:
    # a host device's service time that names the host's own param read "(not defined)"; an
    # architecture's link and server resources said only their kind
    from conftest import to_toml

    h = tomllib.loads((MODELS_DIR / "hosts" / "xeon-2017.toml").read_text())
    assert h["devices"]["nvme"]["kind"] == "server"
    h["params"]["nvme_read_us"] = 93
    h["devices"]["nvme"]["service_us"] = {"dist": "lognormal", "mean": "nvme_read_us", "cv": 0.3}
    e = tmp_path / "e.toml"
    e.write_text(to_toml({"experiment": {"architecture": "nitro", "workload": "web"}, "host": h}))
    assert main(["show", str(e)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("device nvme:"))
    assert "nvme_read_us = 93 us" in line and "not defined" not in line
    arch = {"experiment": {"host": "xeon-2017", "workload": "web"},
            "architecture": {"name": "x", "resources": {"wire": {"kind": "link", "gbps": 10},
                                                        "disk": {"kind": "server", "servers": 4, "service_us": 80}},
                             "paths": {"net_rx": {"stages": [{"on": "wire"}]}, "net_tx": {"stages": [{"on": "disk"}]}}}}
    e.write_text(to_toml(arch))
    assert main(["show", str(e)]) == 0
    out = capsys.readouterr().out
    assert "resource wire: link, 10 Gb/s" in out and "resource disk: 4 parallel units, 80 us per request" in out


def _shown_models(tmp_path, capsys, *tenants_and_set) -> list:
    """`vemu show --json` of a xen-pv experiment with the given (name, workload, vcpus)
    tenants and one [set] line (the last argument): its models."""
    *tenants, line = tenants_and_set
    e = tmp_path / "t.toml"
    e.write_text('[experiment]\nhost = "xeon-2017"\narchitecture = "xen-pv"\nduration_s = 0.001\n'
                 + "".join(f'[[experiment.tenants]]\nname = "{n}"\nworkload = "{w}"\nvcpus = {v}\n' for n, w, v in tenants)
                 + f"[set]\n{line}\n")
    assert main(["show", str(e), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["models"]


def test_a_tenants_workload_given_by_set_lists_its_own_numbers(tmp_path, capsys) -> None:
    # it listed the experiment's own numbers (duration, every tenant's vcpus) as the workload's,
    # and each tenant's workload showed the other's override
    models = _shown_models(tmp_path, capsys, ("victim", "kv-cache", 8), ("neighbour", "packet-echo", 32),
                           '"tenants.victim.workload" = { name = "mine", flows = [ { name = "f", arrival = "closed", '
                           'clients = 4, steps = [ { on = "vcpu", cycles = 1234 } ] } ] }')
    mine = next(m for m in models if m["name"] == "mine")
    assert {n["key"] for n in mine["numbers"]} == {'set."tenants.victim.workload".flows[0]'}
    echo = next(m for m in models if m["name"] == "packet-echo")
    assert "set" not in echo


def test_a_wildcard_tenant_override_is_listed_on_every_tenants_workload(tmp_path, capsys) -> None:
    models = _shown_models(tmp_path, capsys, ("a", "kv-cache", 8), ("b", "web", 8),
                           '"tenants.*.workload.flows.*.clients" = 7')
    sets = {m["name"]: m.get("set") for m in models}
    assert sets["kv-cache"] == sets["web"] == {"tenants.*.workload.flows.*.clients": 7} and sets["xen-pv"] is None


def test_show_prices_as_the_engine_does(tmp_path, capsys) -> None:
    """An experiment's architecture priced with its workload's params (a stage's cycles
    named by one: '(not defined)'), tenant work on the vCPUs stretched by nested paging as
    the engine stretches it (2300 cycles at 2.3 GHz with a share of 0.5: 2 us, shown as 1),
    and --host taking the experiment's own host overrides with it (host.ghz = 4.0)."""
    from emulator.cli import main

    mini = """[experiment]
host = "xeon-2017"
[architecture]
name = "mini"
summary = "x"
nested_paging = NP
[architecture.reserve]
cores = 0
memory_gib = 0
[architecture.paths.p]
stages = [ { name = "work", on = "vcpu", cycles = "foo", account = "ACCOUNT", per_page = 2300 } ]
[workload]
name = "w"
summary = "y"
[workload.params]
foo = 2300
[[workload.flows]]
name = "f"
arrival = "closed"
clients = 1
steps = [ { path = "p" } ]
"""
    f = tmp_path / "mini.toml"
    f.write_text(mini.replace("NP", "0.0").replace("ACCOUNT", "exit"))
    assert main(["show", str(f), "--kind", "architecture"]) == 0
    assert "work: on vcpu; foo = 2300 cycles, 1 us; + 2300 cycles, 1 us per 4096 B page; -> exit" in capsys.readouterr().out
    f.write_text(mini.replace("NP", "0.5").replace("ACCOUNT", "tenant"))
    assert main(["show", str(f), "--kind", "architecture"]) == 0
    out = capsys.readouterr().out
    assert "foo = 2300 cycles, 2 us (with nested paging's 1/(1 - 0.5))" in out
    assert "+ 2300 cycles, 2 us (with nested paging's 1/(1 - 0.5)) per 4096 B page" in out  # per page too
    g = tmp_path / "fast.toml"
    g.write_text('[experiment]\nhost = "xeon-2017"\narchitecture = "xen-pv"\nworkload = "web"\n'
                 '[set]\nhypercall_cycles = 1000\n"host.ghz" = 4.0\n')
    assert main(["show", str(g), "--kind", "architecture", "--host", "xeon-2023"]) == 0
    assert "hypercall_cycles = 1000 cycles, 0.25 us" in capsys.readouterr().out
