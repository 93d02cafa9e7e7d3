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


def test_the_traceability_counts() -> None:
    """The README's counts of the lines that give numbers and of those resting on an
    assumption alone are what `vemu show` counts, over every bundled model (and, for the
    sensitivity coverage, over the headline's models with results/sensitivity.csv)."""
    from emulator import show
    from emulator.experiments.sensitivity import ARCHITECTURES, HOST, WORKLOAD
    from emulator.model import KIND_DIRS, MODELS_DIR

    lines = alone = leaves = 0
    emulated = {}
    for kind, folder in KIND_DIRS.items():
        for p in sorted((MODELS_DIR / folder).glob("*.toml")):
            d = show.describe(show.resolve(p.stem, kind)[0])
            lines += d["counts"]["numbers"]
            alone += d["counts"]["assumption_only"]
            leaves += sum(len(n["numbers"]) for n in d["numbers"])
            if (kind, p.stem) == ("architecture", "emulated"):
                emulated = d["counts"]
    assert (f"that is {alone} of the {lines} lines that give numbers ({leaves} numbers)" in README
            and f"{emulated['assumption_only']} of the {emulated['numbers']} lines of the emulated devices" in README)
    marks, _ = show.sensitivity_marks(show.DEFAULT_SENSITIVITY)
    varied = only = 0
    for kind, name in [("host", HOST), ("workload", WORKLOAD)] + [("architecture", a) for a in ARCHITECTURES]:
        d = show.describe(show.resolve(name, kind)[0], marks=marks)
        varied += d["sensitivity_coverage"]["assumption_only_varied"]
        only += d["counts"]["assumption_only"]
    assert f"it varies {varied} of the {only} lines that rest on an assumption alone" in README
    assert only - varied == 5 and "the other five are unused on cloud-mix" in README


def test_idle_states_at_1000_packets_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's C6 share is theory's (the governor's guess is the previous idle period,
    Exp(λ): P(C6) = e^(-λ 400 µs) = 0.670) and its wake-up rate the simulation's."""
    rate = "--set", "workload.flows.0.rate_per_s=1000"
    assert main(["theory", str(ROOT / "examples" / "idle-states.toml"), *rate, "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["comparison"]["model"]
    assert "133 us 67.0%" in model and "40 us 23.5%" in model
    assert main(["run", str(ROOT / "examples" / "idle-states.toml"), *rate, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    per_s = d["resources"]["vcpu"]["wakeups"] / d["duration_s"]
    # 67% of the wake-ups, and wake-ups per packet ~0.91: about 60% of the packets
    assert f"from C6 (67% of its {per_s:.0f} wake-ups/s, so about 60% of the packets" in README
    assert 0.57 <= 0.670 * per_s / 1000 <= 0.63


def test_interrupt_throttle_example(capsys: pytest.CaptureFixture[str]) -> None:
    f = _theory(capsys, "interrupt-throttle.toml")["flows"][0]
    mean, p99 = f["mean_us"], f["p99_us"]
    assert (f"mean {mean['theory']:.2f} µs, p99 {p99['theory']:.2f} µs) beside the simulation "
            f"({mean['sim']:.2f} µs, {p99['sim']:.2f} µs)") in README
