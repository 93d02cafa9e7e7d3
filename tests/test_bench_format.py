"""``vemu bench``'s printed table: ratios with their significant digits, and a memory
comparison only between two run lengths that differ. The timed processes are faked (known
speeds and sizes), so the test checks the report, not the machine."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from conftest import TANDEM, to_toml
import emulator.bench as bench

# requests per second of each fake tool: vemu is ~0.137x SimPy and ~0.0084x hand-C
RATES = {"vemu": 6_737.0, "hand-C": 801_701.0, "simpy": 48_969.0}


def _fake_peak_rss(cmd: list[str], name: str = "") -> tuple[float, int, str]:
    tool = "hand-C" if cmd[0].endswith("tandem_c") else "simpy" if cmd[1].endswith("tandem_simpy.py") else "vemu"
    n = int(cmd[-1] if tool != "vemu" else cmd[-2])
    out = f"{tool} requests={n} events={4 * n} mean_sojourn=5.6400"
    return n / RATES[tool], 40_000 + n // 100, out  # RSS in KiB, growing a little with the run


@pytest.fixture
def fake_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "bench"
    shared.mkdir()
    (shared / "tandem.toml").write_text(to_toml(TANDEM))
    monkeypatch.setattr(bench, "SHARED_BENCH", shared)
    monkeypatch.setattr(bench, "_peak_rss", _fake_peak_rss)
    monkeypatch.setattr(bench.shutil, "which", lambda name: "/usr/bin/cc" if name in ("gcc", "cc") else None)
    monkeypatch.setattr(bench.subprocess, "run",
                        lambda cmd, **kw: types.SimpleNamespace(returncode=0, stdout="", stderr=""))
    monkeypatch.setitem(sys.modules, "simpy", types.ModuleType("simpy"))
    monkeypatch.setattr(bench, "python_overhead_ms", lambda *a, **k: 1.0)
    monkeypatch.setattr(bench, "headline_speed", lambda say, *a, **k: {})
    monkeypatch.setattr(bench, "pool_speedup", lambda say, *a, **k: {})


@pytest.mark.parametrize("requests", [1000, 1999, 2000, 40_000])
def test_ratios_keep_two_significant_digits(fake_bench: None, capsys: pytest.CaptureFixture[str],
                                            requests: int) -> None:
    rows = bench.bench(requests=requests, simpy_requests=200_000, repeats=1)
    text = capsys.readouterr().out
    by = {r["tool"]: r for r in rows}
    for other in ("hand-C", "simpy"):
        true = by["vemu"]["requests_per_s"] / by[other]["requests_per_s"]
        m = re.search(rf"vemu / {re.escape(other)}\s*=\s*([0-9.,]+)x?", text)
        assert m, text
        shown = float(m.group(1).replace(",", ""))
        # two significant digits: within 5% of the ratio, never shown as 0
        assert shown > 0 and abs(shown / true - 1) <= 0.05, (other, shown, true)


@pytest.mark.parametrize("requests", [1000, 1500, 1999, 2000, 40_000])
def test_memory_compares_two_different_run_lengths(fake_bench: None, capsys: pytest.CaptureFixture[str],
                                                   requests: int) -> None:
    bench.bench(requests=requests, repeats=1)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("memory")]
    assert len(lines) == 1
    sizes = [int(s.replace(",", "")) for s in re.findall(r"(\d[\d,]*) requests?", lines[0])]
    m = re.search(r"([\d,]+) requests: [\d.]+ MiB; ([\d,]+): [\d.]+ MiB", lines[0])
    if m:  # a comparison: the small run is at most half the large one, and the large one is --requests
        small, large = (int(g.replace(",", "")) for g in m.groups())
        assert large == requests and 2 * small <= large
    else:  # no comparison: it says so, and why
        assert "not compared" in lines[0] and str(f"{requests:,}") in lines[0] and len(set(sizes)) <= 1
    assert bool(m) == (requests >= 2000)


def test_peak_rss_is_the_childs_own_not_this_process_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel folds the memory a child had before exec (its parent's, after fork) into
    the ru_maxrss wait4 reads, so a bare reading of /bin/true from a 300 MiB parent said
    ~300 MiB. Through the launcher a child's reading is its own: true reads a few MiB
    whatever this process holds, and a child that touches 64 MiB reads at least that."""
    import shutil as sh

    cc = sh.which("gcc") or sh.which("cc")
    true = sh.which("true")
    if not cc or not true:
        pytest.skip("needs a C compiler and true")
    monkeypatch.setattr(bench, "_launcher", bench.build_launcher(tmp_path, cc))
    ballast = bytearray(300 << 20)  # this process: 300 MiB more, every page touched
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    _, rss_true, _ = bench._peak_rss([true], "true")
    assert rss_true < 16 << 10, rss_true  # KiB
    code = "b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('ok')"
    _, rss_big, out = bench._peak_rss([sys.executable, "-c", code], "python")
    assert out.strip() == "ok" and 64 << 10 <= rss_big < 200 << 10, rss_big
    # a failing child is still reported as failing, its own last line of stderr named
    with pytest.raises(RuntimeError, match="boom"):
        bench._peak_rss([sys.executable, "-c", "import sys; sys.exit('boom')"], "python")
    del ballast
