"""`vemu show`: a model's numbers, each beside the source or assumption it rests on.

The line scanner (emulator.citations) reads comments, which TOML parsers drop, so it is
checked against the parser: every key path it reports leads, in the parsed file, to the
value it read off the line; and it misses no line that gives a number.
"""

import json
import re
import tomllib

import pytest

from emulator.citations import code_and_comment, gives_number, numbers
from emulator.cli import main
from emulator.model import MODELS_DIR, bundled

MODEL_FILES = sorted(p for d in ("hosts", "architectures", "workloads") for p in (MODELS_DIR / d).glob("*.toml"))
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _walk(data, key):
    for name, index in _PART.findall(key):
        data = data[int(index)] if index else data[name.strip('"\'')]
    return data


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_key_path_leads_to_the_value_on_its_line(path):
    data = tomllib.loads(path.read_text())
    for n in numbers(path):
        at = _walk(data, n.key)
        code = n.code.rstrip(",").strip()
        if code.startswith("{"):  # an inline table in an array: the same table, parsed on its own
            assert at == tomllib.loads(f"v = {code}")["v"], (path.name, n.line)
        else:
            assert at == tomllib.loads(f"v = {code.split('=', 1)[1]}")["v"], (path.name, n.line)


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_line_with_a_number_is_missed(path):
    want, multiline = [], False
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.count('"""') % 2 == 1:
            multiline = not multiline
            continue
        if not multiline and gives_number(code_and_comment(line)[0]):
            want.append(i)
    assert [n.line for n in numbers(path)] == want


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
    # exit_cycles is the host's (li2020: 1550 cycles), 0.674 us at 2.3 GHz; dom0's netback is the architecture's
    assert "netfront kick: event-channel send hypercall (exit): on vcpu; exit_cycles = 1550, 0.674 us; -> exit" in out
    assert "netback_rx_cycles = 2208, 0.96 us; -> backend" in out
    assert "params.netback_rx_cycles = 2208   [martins2017]" in out
    assert main(["show", "xen-pv"]) == 0
    assert "exit_cycles (a host param)" in capsys.readouterr().out


def test_xeon_2017s_exit_cost_cites_its_source(capsys):
    assert main(["show", "xeon-2017", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    (n,) = [n for n in d["numbers"] if n["key"] == "params.exit_cycles"]
    assert n["value"] == "1550" and n["sources"] == ["li2020"]
    assert d["sources"]["li2020"]["year"] == 2020


@pytest.mark.parametrize("argv, words", [
    (["show", "xen-pvv"], "no bundled model 'xen-pvv'"),
    (["show", "/nonexistent/arch.toml"], "no such model file"),
    (["show", "kv-cache", "--host", "xeon-2017"], "--host resolves an architecture's costs"),
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
