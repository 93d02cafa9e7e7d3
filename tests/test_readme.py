"""The README's worked examples print what the README says they print.

Each test runs an example's command with its seed and checks the figure the README quotes
(rounded as quoted) and that the README still quotes it: a change to a model or the engine
that moves one fails here, as the teaching sheet's answers fail in test_teaching.py. (The
README's headline table is checked against results/ by test_headline.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # whitespace as one space


def _theory(capsys: pytest.CaptureFixture[str], example: str) -> dict:
    assert main(["theory", str(ROOT / "examples" / example), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["comparison"]


def test_interrupt_priority_example(capsys: pytest.CaptureFixture[str]) -> None:
    flows = {f["flow"]: f for f in _theory(capsys, "interrupt-priority.toml")["flows"]}
    irq, jobs = flows["irqs"]["mean_us"], flows["jobs"]["mean_us"]
    quoted = (f"(interrupts {irq['theory']:.1f} µs, jobs {jobs['theory']:.1f} µs) beside the simulation "
              f"({irq['sim']:.2f}, {jobs['sim']:.1f})")
    assert quoted == "(interrupts 2.5 µs, jobs 68.3 µs) beside the simulation (2.49, 68.8)"
    assert quoted in README


def test_closed_dom0_example(capsys: pytest.CaptureFixture[str]) -> None:
    cmp = _theory(capsys, "closed-dom0.toml")
    thr = cmp["flows"][0]["throughput_per_s"]
    dom0 = next(s for s in cmp["stations"] if s["station"] == "dom0")
    quoted = (f"(product-form solution under it ({thr['theory'] / 1e6:.3f}M/s, dom0 "
              f"{dom0['utilization']['theory']:.0%} busy and its queue adding {dom0['mean_wait_us']['theory']:.1f} µs) "
              f"beside the simulation ({thr['sim'] / 1e6:.3f}M/s, {dom0['mean_wait_us']['sim']:.2f} µs)")
    assert quoted == ("(product-form solution under it (1.075M/s, dom0 89% busy and its queue adding 2.3 µs) "
                      "beside the simulation (1.074M/s, 2.33 µs)")
    assert quoted[1:] in README


def test_idle_states_trace_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(ROOT / "examples" / "idle-states.toml"), "--trace", "3", "-q"]) == 0
    out = capsys.readouterr().out
    assert "(40.000 of the wait: the core waking)" in out
    assert '"40.000 of the wait: the core waking", for a packet that found its core in C3' in README


def test_readme_trace_block_is_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    # the README's one-get trace under Xen PV, line for line (it named the tenant's work
    # "vcpu" after the engine had renamed it): the command's own output, from its header on
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    cmd = "$ vemu run --host xeon-2017 -a xen-pv -w kv-cache --set workload.flows.0.clients=1 --trace 1"
    block = text[text.index(cmd) + len(cmd):].split("```")[0].strip("\n").splitlines()
    assert main(cmd[2:].split()[1:]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index(block[0])
    assert out[start:start + len(block)] == block
