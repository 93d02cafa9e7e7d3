"""`fork`: work a request sets off but does not wait for (xen-pv's transmit completion).

One 1 GHz core, so ``cycles`` are nanoseconds. Periodic arrivals far apart leave no
queueing, so the checks below are exact, not statistical.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import experiment, to_toml

from emulator._core import Engine, ModelError
from emulator.cli import main
from emulator.model import compile_experiment, load_experiment
from emulator.simulation import run
from emulator.theory import analyse

RATE = 10_000  # one request per 100 us: each finds the core idle and leaves before the next


def _spec(fork: bool = True, **done_stage: Any) -> dict[str, Any]:
    send = {"name": "send", "on": "vcpu", "cycles": 100, "account": "tenant"}
    if fork:
        send["fork"] = "done"
    done = {"name": "completion", "on": "vcpu", "cycles": 300, "account": "exit", **done_stage}
    paths = {"tx": [send, {"name": "wire", "delay_us": 1}], "done": [done]}
    if not fork:  # the same work, on the request's own path
        paths["tx"] = [send, done, {"name": "wire", "delay_us": 1}]
    return experiment({}, paths, [{"name": "f", "arrival": "periodic", "rate_per_s": RATE,
                                    "steps": [{"path": "tx"}]}], duration_s=0.1, warmup_s=0.01)


def test_forked_work_is_charged_but_adds_no_latency() -> None:
    forked, inline = run(_spec()), run(_spec(fork=False))
    n = forked.to_dict()["flows"]["f"]["completed"]
    assert n == inline.to_dict()["flows"]["f"]["completed"] == pytest.approx(RATE * 0.1, abs=1)
    # latency: 100 ns + 1 us forked; + the 300 ns completion when it is on the path
    assert forked.to_dict()["flows"]["f"]["latency_us"]["mean"] == pytest.approx(1.1, rel=1e-9)
    assert inline.to_dict()["flows"]["f"]["latency_us"]["mean"] == pytest.approx(1.4, rel=1e-9)
    # the cycles are the same either way: 300 of every 100,000 ns go to `exit`
    for res in (forked, inline):
        assert res.host_cycles()["exit"] == pytest.approx(300 / 100_000, rel=1e-3)
    # the detached requests are counted apart from the flow's own classes
    flow = forked.to_dict()["flows"]["f"]
    assert sum(flow["classes"].values()) == n and flow["detached"] == {"done": n}
    assert "detached" not in inline.to_dict()["flows"]["f"]


def test_bad_forks_are_model_errors_naming_the_key() -> None:
    spec = _spec()
    spec["architecture"]["paths"]["tx"]["stages"][0]["fork"] = "dnoe"
    with pytest.raises(ModelError, match=r"no path 'dnoe' to fork; did you mean 'done'") as e:
        run(spec)
    assert "paths.tx.stages[0].fork" in str(e.value)
    spec = _spec()
    spec["architecture"]["paths"]["done"]["stages"][0]["fork"] = "tx"
    with pytest.raises(ModelError, match="forked to, so it cannot fork again") as e:
        run(spec)
    assert "paths.done.stages[0].fork" in str(e.value)


def test_bad_fork_exits_2_with_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec()
    spec["architecture"]["paths"]["tx"]["stages"][0]["fork"] = 3
    exp = tmp_path / "e.toml"
    exp.write_text(to_toml(spec))
    assert main(["run", str(exp), "-q"]) == 2
    err = capsys.readouterr()[1].strip().splitlines()
    assert len(err) == 1 and "fork" in err[0] and str(exp) in err[0]


def test_theory_says_a_fork_is_outside_it() -> None:
    pred, why = analyse(load_experiment(_spec()))
    assert pred is None and "fork" in why


def test_xen_pv_forks_one_completion_per_transmitted_packet() -> None:
    exp = load_experiment({"experiment": {"host": "xeon-2017", "architecture": "xen-pv", "workload": "kv-cache"}})
    c = compile_experiment(exp, trace_requests=4)
    k = c.classes.index(("gets", "net_tx_completion"))
    assert c.detached == {k}
    send = [i for i, g in enumerate(c.stages) if g.name == "dom0 bridge + NIC driver transmit"]
    assert len(send) == 1
    with Engine(c.spec, seed=1) as eng:
        eng.run(5 * 10**9)  # 5 ms, one window from time 0
        s, tr = eng.stats(), eng.trace()[0]
        detached_now = eng.in_flight - int(s["flow_in_flight"].sum())
    # every packet leaving the forking stage started exactly one completion: finished, or
    # still running (a pool slot that is no flow's request)
    forks = int(s["stage_completed"][send[0]])
    assert forks > 1000 and forks == int(s["class_completed"][k]) + detached_now
    # the packet's own path ends at the wire: no completion stage in the request's class
    own = [g.name for g in c.stages if g.request_class == "gets"]
    assert own[-1] == "wire (transmit)" and "Tx-completion event delivery (interrupt exit)" not in own
    # the trace shows each traced packet's completion beside it
    assert {int(p) for p in tr["parent"] if int(p) < 4} == {0, 1, 2, 3}
