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


def test_a_batch_bound_for_several_queues_takes_the_unit_only_if_all_of_it_ranks_first():
    # x and y share a batching stage (priority 1, batch 2) behind a blocker K (priority 5);
    # W (priority 1) waits from +300 ps. From the batch x goes on to priority 2 and y to
    # priority 0. y must not start ahead of W (older, and above it). Regression: the batch's
    # head (x, priority 2) decided for both, and y took the unit first. (The members queue
    # behind W, as before the hand-over rule: x then waits for W too, a limit of the rule,
    # which hands the unit to a batch only when every member ranks first.)
    st = lambda q: (q, 0, F, 0.0, Z, 0, Z)  # noqa: E731
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 1, 2), (0, 0, 2), (0, 1, 1), (0, 2, 2), (0, 5, 1)],
                stages=[st(0), st(3), st(0), st(1), st(2), st(4)],
                classes=[(0, 2, 1.0), (2, 2, 1.0), (4, 1, 1.0), (5, 1, 1.0)],
                flows=[(False, ("fixed", T0 + 100, 0.0), 0, Z, 0, 1), (False, ("fixed", T0 + 200, 0.0), 0, Z, 1, 1),
                       (False, ("fixed", T0 + 300, 0.0), 0, Z, 2, 1), (False, ("fixed", T0, 0.0), 0, Z, 3, 1)],
                n_categories=1, pool_size=8, trace_requests=4, trace_capacity=32)
    with Engine(spec, seed=1) as e:
        e.run(2 * T0)
        tr, _ = e.trace()
    start = {("x1", "x2", "y1", "y2", "W", "K")[int(r["stage"])]: int(r["start"]) - T0 for r in tr}
    assert start["W"] < start["y2"]
    assert start["x2"] < start["y2"]


def test_no_drop_when_the_request_going_on_waits_for_a_gap_and_a_slot_opens_at_that_instant():
    # One unit, room for one waiting request. P opens q1's throttle at 0 (gap 5 ns); A runs
    # stage 0 at 1-2 ns and goes on to q1, whose gap has not passed; T (priority 0) waits
    # since 1.5 ns. The unit goes to T (A cannot use it), whose place in the queue A takes:
    # nothing is dropped, and A is served when the gap passes. Regression: A, taken to rank
    # first, found the queue still full and was dropped.
    spec = Spec(resources=[(1, 1)], qclasses=[(0, 0, 1), (0, 1, 1, 5000), (0, 0, 1)],
                stages=[(0, 0, F, 0.0, Z, 0, Z), (1, 0, F, 0.0, Z, 0, Z), (2, 0, F, 0.0, Z, 0, Z),
                        (1, 0, F, 0.0, Z, 0, Z)],
                classes=[(0, 2, 1.0), (2, 1, 1.0), (3, 1, 1.0)],
                flows=[(False, ("fixed", T0 + 100, 0.0), 0, Z, 0, 1), (False, ("fixed", T0 + 1500, 0.0), 0, Z, 1, 1),
                       (False, ("fixed", T0, 0.0), 0, Z, 2, 1)],
                n_categories=1, pool_size=8, trace_requests=3, trace_capacity=32)
    with Engine(spec, seed=1) as e:
        e.run(2 * T0)
        assert list(e.stats()["flow_dropped"]) == [0, 0, 0]
        tr, _ = e.trace()
    order = {(("A", "B", "T", "P")[int(r["stage"])], int(r["start"]) - T0, int(r["end"]) - T0) for r in tr}
    assert ("T", 2000, 3000) in order and ("B", 5000, 6000) in order


def _d(x: float) -> tuple[str, float, float]:
    return ("fixed", float(x), 0.0)


def _starts(spec: Spec, names: list[str], until: int) -> dict[str, int]:
    with Engine(spec, seed=1) as e:
        e.run(until)
        tr, _ = e.trace()
    out: dict[str, int] = {}
    for r in sorted(tr, key=lambda r: int(r["start"])):
        out.setdefault(names[int(r["stage"])], int(r["start"]) - T0)
    return out


def test_a_closed_clients_next_request_does_not_take_a_unit_the_batch_ranks_first_for():
    # A batch of S0 (a closed client's last stage: its next request is issued at once, at
    # priority 0) and S0' (going on to Bn, priority 2), W waiting at priority 1. Bn ranks
    # first and takes the unit; then W; the client's new request waits its turn. Regression:
    # the completing member went on first and its new request took the unit.
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 3, 2), (0, 2, 1), (0, 1, 1), (0, 0, 1), (0, 5, 1)],
                stages=[(3, 0, _d(T0), 0.0, Z, 0, Z), (0, 0, _d(1000), 0.0, Z, 0, Z),
                        (0, 0, _d(1000), 0.0, Z, 0, Z), (1, 0, _d(1000), 0.0, Z, 0, Z),
                        (2, 0, _d(1000), 0.0, Z, 0, Z), (4, 0, _d(1000), 0.0, Z, 0, Z)],
                classes=[(0, 2, 1.0), (2, 2, 1.0), (4, 1, 1.0), (5, 1, 1.0)],
                flows=[(True, Z, 1, Z, 0, 1), (False, _d(T0 + 200), 0, Z, 1, 1),
                       (False, _d(T0 + 500), 0, Z, 2, 1), (False, _d(T0 - 500), 0, Z, 3, 1)],
                n_categories=1, pool_size=8, trace_requests=8, trace_capacity=64)
    with Engine(spec, seed=1) as e:
        e.run(2 * T0 + 6000)
        tr, _ = e.trace()
    names = ["L", "S0", "S0'", "Bn", "W", "K"]
    after = sorted((int(r["start"]) - T0, names[int(r["stage"])]) for r in tr if int(r["start"]) - T0 >= 2000)
    assert [n for _, n in after[:3]] == ["Bn", "W", "L"]


def test_a_member_with_a_delay_does_not_hold_the_hand_over_back():
    # A batch of M (going on to Mn, priority 3) and D (a delay of 5 ns after its stage, then
    # a fork onto this resource), W waiting at priority 1. D's fork comes only after its
    # delay, so Mn ranks first now. Regression: D's fork, not yet due, handed the unit to W.
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 4, 2), (0, 3, 1), (0, 1, 1), (0, 0, 1), (0, 5, 1)],
                stages=[(0, 0, _d(1000), 0.0, _d(5000), 0, Z, 5), (0, 0, _d(1000), 0.0, Z, 0, Z, 0),
                        (1, 0, _d(1000), 0.0, Z, 0, Z, 0), (2, 0, _d(1000), 0.0, Z, 0, Z, 0),
                        (4, 0, _d(1000), 0.0, Z, 0, Z, 0), (3, 0, _d(1000), 0.0, Z, 0, Z, 0)],
                classes=[(0, 1, 1.0), (1, 2, 1.0), (3, 1, 1.0), (4, 1, 1.0), (5, 1, 1.0)],
                flows=[(False, _d(T0 + 200), 0, Z, 0, 1), (False, _d(T0 + 100), 0, Z, 1, 1),
                       (False, _d(T0 + 300), 0, Z, 2, 1), (False, _d(T0), 0, Z, 3, 1)],
                n_categories=1, pool_size=8, trace_requests=8, trace_capacity=64)
    start = _starts(spec, ["D", "M", "Mn", "W", "K", "F"], T0 + 20000)
    assert start["Mn"] == 2000 and start["W"] == 3000 and start["F"] == 7000


def _st(q: int, fork: int = 0) -> tuple:
    return (q, 0, F, 0.0, Z, 0, Z, fork)


def test_a_fork_set_off_after_the_hand_over_does_not_hold_it_back():
    # A batch {x, y} (priority 3); x goes on to X2 (priority 5), y ends and forks a
    # priority-0 request onto the same core; W (priority 1) waits. The fork comes after x
    # has taken the core, so X2 runs first, then W, then the fork. Regression: y's fork
    # handed the core to W.
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 3, 2), (0, 5, 1), (0, 0, 1), (0, 1, 1), (0, 9, 1)],
                stages=[_st(4), _st(0), _st(1), _st(0, 5), _st(3), _st(2)],
                classes=[(0, 1, 1.0), (1, 2, 1.0), (3, 1, 1.0), (4, 1, 1.0), (5, 1, 1.0)],
                flows=[(False, ("fixed", T0 + o, 0.0), 0, Z, c, 1) for o, c in ((0, 0), (100, 1), (200, 2), (300, 3))],
                n_categories=1, pool_size=8, trace_requests=8, trace_capacity=32)
    start = _starts(spec, ["K", "Sx", "X2", "Sy", "W", "F"], 2 * T0)
    assert (start["X2"], start["W"], start["F"]) == (2000, 3000, 4000)


def test_the_batch_members_that_take_the_core_go_on_highest_priority_first():
    # A batch {x, y}; x goes on to X2 (priority 1), y to Y2 (priority 5, preempting). Both
    # rank first: Y2 runs, then X2, and nothing is preempted. Regression: x went on first,
    # and y's interrupt preempted X2 the moment it began (a preemption of no length).
    spec = Spec(resources=[(1, -1)], qclasses=[(0, 3, 2), (0, 1, 1), (0, 5, 1, 0, 1), (0, 9, 1)],
                stages=[_st(3), _st(0), _st(1), _st(0), _st(2)],
                classes=[(0, 1, 1.0), (1, 2, 1.0), (3, 2, 1.0)],
                flows=[(False, ("fixed", T0 + o, 0.0), 0, Z, c, 1) for o, c in ((0, 0), (100, 1), (200, 2))],
                n_categories=1, pool_size=8, trace_requests=8, trace_capacity=32)
    with Engine(spec, seed=1) as e:
        e.run(2 * T0)
        assert int(e.stats()["resource_preemptions"][0]) == 0
    start = _starts(spec, ["K", "Sx", "X2", "Sy", "Y2"], 2 * T0)
    assert (start["Y2"], start["X2"]) == (2000, 3000)
