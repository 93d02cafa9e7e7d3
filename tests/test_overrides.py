"""`--set` with a `*`: every key or list item it stands for, and what that shows."""

import pytest

from emulator.model import load_experiment
from emulator.simulation import run


def test_a_wildcard_set_is_every_plain_set_it_stands_for() -> None:
    # '*' stands for every key or list item; only leaves the model has are set: the same
    # experiment as the plain keys written out one by one, and nothing added elsewhere
    from emulator.model import compile_experiment

    base = load_experiment(host="xeon-2017", architecture="emulated", workload="cloud-mix")
    plain = [f"architecture.paths.{p}.stages.{i}.priority=0" for p, stages in base.raw["architecture"]["paths"].items()
             for i, st in enumerate(stages["stages"]) if "priority" in st]
    assert len(plain) == 16  # the interrupt stages of emulated's six paths
    star = load_experiment(host="xeon-2017", architecture="emulated", workload="cloud-mix",
                           sets=["architecture.paths.*.stages.*.priority=0"])
    one_by_one = load_experiment(host="xeon-2017", architecture="emulated", workload="cloud-mix", sets=plain)
    assert star.raw == one_by_one.raw != base.raw
    assert compile_experiment(star).spec == compile_experiment(one_by_one).spec
    assert all(st.get("priority", 0) == 0 for p in star.raw["architecture"]["paths"].values() for st in p["stages"])
    assert star.raw["architecture"]["background"] == base.raw["architecture"]["background"]  # not under paths


def test_emulated_interrupts_in_arrival_order_batch_and_keep_timers_waiting() -> None:
    # README, Sensitivity: served behind queued tenant work, emulated's interrupts fill their
    # batches of 4 (exits 21.8% -> 8.6% of the host) and its timer ticks wait behind
    # compute requests (1.7 -> 112 us). 10 ms windows: these shares move by < 0.005 between
    # seeds (results/sensitivity.md's noise column), the timer means by a few us.
    args = dict(host="xeon-2017", architecture="emulated", workload="cloud-mix", duration_s=0.01, warmup_s=0.003)
    base = run(**args).to_dict()
    late = run(**args, sets=["architecture.paths.*.stages.*.priority=0",
                             "architecture.background.*.steps.*.priority=0"]).to_dict()
    assert base["host_cycles"]["exit"] == pytest.approx(0.218, abs=0.01)
    assert late["host_cycles"]["exit"] == pytest.approx(0.086, abs=0.01)
    assert late["usable_fraction"] - base["usable_fraction"] == pytest.approx(0.106, abs=0.01)
    assert base["flows"]["timer"]["latency_us"]["mean"] < 3 < 80 < late["flows"]["timer"]["latency_us"]["mean"]
