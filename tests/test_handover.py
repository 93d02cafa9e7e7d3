"""Who gets a unit when a service ends and its request goes on to a queue of the same
resource (a stage that batches or is throttled, so it cannot simply keep the unit): the
request arrives there like any other, so priority decides, as models/README.md says ("higher
is served first when a unit comes free"). Deterministic one-unit specs, read off the trace.
One 1 GHz core: times are picoseconds."""

from __future__ import annotations

import pytest

from emulator._core import Engine, NativeError, Spec

F = ("fixed", 1000.0, 0.0)
Z = ("fixed", 0.0, 0.0)
T0 = 10**7  # the first arrival, 10 us


def _order(spec: Spec, names: dict[tuple[int, int], str]) -> list[tuple[str, int, int]]:
    with Engine(spec, seed=1) as e:
        e.run(2 * T0)
        tr, _ = e.trace()
    return [(names[int(r["request"]), int(r["stage"])], int(r["start"]) - T0, int(r["end"]) - T0) for r in tr]


@pytest.mark.parametrize("b_batch", [1, 2, 4])
def test_a_request_going_on_to_a_batching_stage_outranks_lower_priority_work_waiting(b_batch):
    # A (priority 1) then B (priority 1, batch b_batch) on one unit; T (priority 0) arrives
    # at +500 ps and waits. When A ends, B's request ranks above T: B runs next, whether B
    # batches (it queues, then takes the unit) or not (it keeps the unit). Regression: with
    # batch > 1 the unit went to T first.
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 1, 1), (0, 1, b_batch), (0, 0, 1)],
                stages=[(0, 0, F, 0.0, Z, 0, Z), (1, 0, F, 0.0, Z, 0, Z), (2, 0, F, 0.0, Z, 0, Z)],
                classes=[(0, 2, 1.0), (2, 1, 1.0)],
                flows=[(False, ("fixed", T0, 0.0), 0, Z, 0, 1), (False, ("fixed", T0 + 500, 0.0), 0, Z, 1, 1)],
                n_categories=1, pool_size=4, trace_requests=2, trace_capacity=16)
    names = {(0, 0): "A", (0, 1): "B", (1, 2): "T"}
    assert _order(spec, names) == [("A", 0, 1000), ("B", 1000, 2000), ("T", 2000, 3000)]


@pytest.mark.parametrize("t_priority, expect", [(1, "T"), (2, "T"), (0, "B")])
def test_work_waiting_at_the_same_or_a_higher_priority_goes_first(t_priority, expect):
    # as above with B batching: a request of B's priority waiting since +500 ps is older, so
    # it goes first (first come, first served within a priority); one above B's goes first
    # too; one below waits for B
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 1, 1), (0, 1, 2), (0, t_priority, 1)],
                stages=[(0, 0, F, 0.0, Z, 0, Z), (1, 0, F, 0.0, Z, 0, Z), (2, 0, F, 0.0, Z, 0, Z)],
                classes=[(0, 2, 1.0), (2, 1, 1.0)],
                flows=[(False, ("fixed", T0, 0.0), 0, Z, 0, 1), (False, ("fixed", T0 + 500, 0.0), 0, Z, 1, 1)],
                n_categories=1, pool_size=4, trace_requests=2, trace_capacity=16)
    order = _order(spec, {(0, 0): "A", (0, 1): "B", (1, 2): "T"})
    assert order[0] == ("A", 0, 1000)
    assert order[1] == (expect, 1000, 2000)


@pytest.mark.parametrize("batch", [1, 2])
def test_a_fork_set_off_at_the_end_of_a_service_counts_before_the_request_goes_on(batch):
    # A (priority 1) forks F (priority 1), then its request goes on to B (priority 0). The
    # forked work outranks B exactly as the same work arriving from elsewhere would: F runs
    # before B, whether the stages batch or not. Regression: without batches the request
    # kept its unit for B, the fork's arrival not yet seen.
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 1, batch), (0, 0, batch)],
                stages=[(0, 0, F, 0.0, Z, 0, Z, 2), (1, 0, F, 0.0, Z, 0, Z, 0), (0, 0, F, 0.0, Z, 0, Z, 0)],
                classes=[(0, 2, 1.0), (2, 1, 1.0)],
                flows=[(False, ("fixed", T0, 0.0), 0, Z, 0, 1)],
                n_categories=1, pool_size=4, trace_requests=1, trace_capacity=16)
    names = {(0, 0): "A", (0, 1): "B", (1, 2): "F"}
    assert _order(spec, names) == [("A", 0, 1000), ("F", 1000, 2000), ("B", 2000, 3000)]


def test_a_class_both_drawn_and_forked_to_is_refused():
    # its completions would mix a flow's requests with detached ones (whose latency is not
    # the flow's): the C core refuses it, naming the stage and the class
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 0, 1)],
                stages=[(0, 0, F, 0.0, Z, 0, Z, 2), (0, 0, F, 0.0, Z, 0, Z, 0)],
                classes=[(0, 1, 1.0), (1, 1, 1.0)],
                flows=[(False, ("fixed", T0, 0.0), 0, Z, 0, 2)],
                n_categories=1, pool_size=4)
    with pytest.raises(NativeError, match="stage 0 forks to class 1, which a flow draws its requests from"):
        Engine(spec, seed=1)
