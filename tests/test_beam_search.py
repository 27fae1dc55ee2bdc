"""Beam selection rules (pure Python) and the scheduler's beam mechanics: forks share blocks, beams
wait for their siblings, and waiting beams never deadlock the pool."""

from __future__ import annotations

import itertools

import pytest
from core_helpers import make_request, make_scheduler

from pagedllm import BeamSearchParams
from pagedllm.core import RequestStatus
from pagedllm.core.request_queue import WaitingQueue
from pagedllm.engine.beam_search import BeamSearchState

EOS = 2


def _state(beam_width: int = 2, max_tokens: int = 8, length_penalty: float = 1.0) -> BeamSearchState:
    ids = itertools.count(1)
    eos_ids = frozenset({EOS})
    return BeamSearchState("r", beam_width, max_tokens, length_penalty, eos_ids, lambda: f"r#{next(ids)}")


def test_first_step_forks_the_prompt_into_the_best_continuations():
    state = _state(beam_width=2)
    assert state.num_candidates == 4  # max(2, 1 + one EOS id) * width
    step = state.report("r", [(5, -0.1), (6, -0.5), (EOS, -1.0), (7, -2.0)])
    assert step is not None and not step.done
    assert step.extends == [("r", 5)] and step.forks == [("r", "r#1", 6)] and step.drops == []
    assert [(b.sequence_id, b.token_ids, b.cumulative_logprob) for b in state.live] == [
        ("r", [5], -0.1),
        ("r#1", [6], -0.5),
    ]
    assert state.hypotheses == []  # the EOS ranked third, outside the first beam_width


def test_selection_waits_for_every_live_beam_and_drops_beams_nobody_continues():
    state = _state(beam_width=2)
    state.report("r", [(5, -0.1), (6, -0.5), (7, -3.0), (8, -4.0)])
    assert state.report("r", [(9, -0.1), (10, -0.2), (11, -5.0), (12, -6.0)]) is None  # r#1 not yet
    step = state.report("r#1", [(13, -5.0), (14, -6.0), (15, -7.0), (16, -8.0)])
    assert step is not None
    # Both survivors extend "r": r#1 has no continuation among the best two and is dropped.
    assert step.extends == [("r", 9)] and step.forks == [("r", "r#2", 10)] and step.drops == ["r#1"]
    assert state.live_sequence_ids == ["r", "r#2"]


def test_an_eos_among_the_best_becomes_a_hypothesis_scored_by_length_penalty():
    state = _state(beam_width=2, length_penalty=2.0)
    state.report("r", [(5, -0.1), (6, -0.5), (7, -3.0), (8, -4.0)])
    state.report("r", [(EOS, -0.2), (9, -0.3), (10, -5.0), (11, -6.0)])
    step = state.report("r#1", [(12, -5.0), (13, -6.0), (14, -7.0), (15, -8.0)])
    assert step is not None and not step.done
    (hypothesis,) = state.hypotheses
    assert hypothesis.token_ids == (5, EOS) and hypothesis.finish_reason == "stop"
    assert hypothesis.cumulative_logprob == pytest.approx(-0.3)
    assert hypothesis.score == pytest.approx(-0.3 / 2**2.0)
    # The EOS does not continue: the two best other continuations do, both from the first beam.
    assert [b.token_ids for b in state.live] == [[5, 9], [5, 10]]
    assert step.drops == ["r#1"]


def test_reaching_max_tokens_ends_the_search_with_the_best_beams():
    state = _state(beam_width=2, max_tokens=2)
    state.report("r", [(5, -0.1), (6, -0.5), (7, -3.0), (8, -4.0)])
    state.report("r", [(9, -1.0), (10, -2.0), (11, -5.0), (12, -6.0)])
    step = state.report("r#1", [(13, -0.1), (14, -0.2), (15, -7.0), (16, -8.0)])
    assert step is not None and step.done and sorted(step.drops) == ["r", "r#1"]
    assert [(h.token_ids, h.finish_reason) for h in state.hypotheses] == [
        ((6, 13), "length"),
        ((6, 14), "length"),
    ]
    assert state.live == []


def test_search_stops_once_no_live_beam_can_beat_the_worst_kept_hypothesis():
    state = _state(beam_width=2, max_tokens=100, length_penalty=1.0)
    state.report("r", [(EOS, -0.1), (5, -0.2), (6, -0.3), (7, -9.0)])  # one hypothesis: score -0.1
    assert len(state.hypotheses) == 1 and not state.done
    step = state.report("r", [(EOS, -0.1), (8, -9.0), (9, -9.5), (10, -9.6)])
    assert step is None
    step = state.report("r#1", [(EOS, -0.2), (11, -9.0), (12, -9.5), (13, -9.6)])
    assert step is not None
    # (EOS,) = -0.1 and (5, EOS) = -0.3/2 are kept ((6, EOS) = -0.5/2 falls out); the best live beam
    # scores (-0.2 - 9.0) / 2, which cannot beat the worst kept, -0.15: done.
    assert [h.token_ids for h in state.hypotheses] == [(EOS,), (5, EOS)]
    assert step.done


def test_a_forgotten_report_is_awaited_again():
    state = _state(beam_width=2)
    state.report("r", [(5, -0.1), (6, -0.5), (7, -3.0), (8, -4.0)])
    state.report("r", [(9, -0.1), (10, -0.2), (11, -5.0), (12, -6.0)])
    state.forget_report("r")  # preempted: its K/V are recomputed and it reports again
    assert state.report("r#1", [(13, -5.0), (14, -6.0), (15, -7.0), (16, -8.0)]) is None
    assert state.report("r", [(9, -0.1), (10, -0.2), (11, -5.0), (12, -6.0)]) is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beam_width": 0, "max_tokens": 4}, "beam_width"),
        ({"beam_width": 1000, "max_tokens": 4}, "beam_width"),
        ({"beam_width": 2, "max_tokens": 0}, "max_tokens"),
        ({"beam_width": 2, "max_tokens": 4, "length_penalty": float("nan")}, "length_penalty"),
        ({"beam_width": 2, "max_tokens": 4, "ignore_eos": 1}, "ignore_eos"),
    ],
)
def test_bad_beam_search_params_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BeamSearchParams(**kwargs)


# -- scheduler ---------------------------------------------------------------------------------------


def _beam(num_prompt_tokens: int) -> object:
    request = make_request(num_prompt_tokens, max_tokens=50)
    request.is_beam = True
    return request


def test_a_sampled_beam_waits_for_its_token_and_a_fork_shares_its_blocks():
    scheduler = make_scheduler(num_blocks=16, block_size=4)
    parent = _beam(6)
    scheduler.add_request(parent)
    out = scheduler.schedule()
    assert scheduler.update_from_output(out, {parent.request_id: 99}) == []  # no token appended
    assert parent.num_output_tokens == 0
    assert scheduler.schedule().is_empty  # it waits for the engine's choice

    child = scheduler.fork_beam(parent.request_id, "child")
    scheduler.extend_beam("child", 7)
    scheduler.extend_beam(parent.request_id, 5)
    tables = scheduler.kv.block_tables
    assert [b.block_id for b in tables["child"]] == [b.block_id for b in tables[parent.request_id]]
    assert all(b.ref_cnt == 2 for b in tables["child"])
    assert child.all_token_ids[-1] == 7 and parent.all_token_ids[-1] == 5

    out = scheduler.schedule()
    # The shared, partly filled last block is copied for the first writer (copy-on-write).
    assert len(out.block_copies) == 1
    assert {s.request_id: s.token_ids for s in out.scheduled} == {parent.request_id: [5], "child": [7]}
    assert "child" in {n.request_id for n in out.new_requests}
    scheduler.check_invariants()
    scheduler.finish_requests([parent.request_id, "child"], RequestStatus.FINISHED_STOPPED)
    assert scheduler.kv.num_free_blocks == 16


def test_forks_keep_their_parents_age_so_younger_requests_are_preempted_first():
    scheduler = make_scheduler(num_blocks=6, block_size=4, max_num_batched_tokens=64)
    first = _beam(8)  # 2 blocks
    scheduler.add_request(first)
    out = scheduler.schedule()
    scheduler.update_from_output(out, {first.request_id: 1})
    younger = make_request(4, max_tokens=20)  # 1 block, then one more at its 5th token
    scheduler.add_request(younger)
    scheduler.fork_beam(first.request_id, "second")
    scheduler.extend_beam("second", 3)
    scheduler.extend_beam(first.request_id, 4)
    # The fork joined the running list ahead of the younger request: it is as old as its parent.
    out = scheduler.schedule()
    assert [r.request_id for r in scheduler.running] == [first.request_id, "second", younger.request_id]
    assert {s.request_id for s in out.scheduled} == {first.request_id, "second", younger.request_id}
    scheduler.update_from_output(out, {first.request_id: 1, "second": 1, younger.request_id: 1})
    scheduler.extend_beam(first.request_id, 5)
    scheduler.extend_beam("second", 6)
    # 5 of 6 blocks held; the younger request's next token needs a block, and so will the beams': the
    # younger request is the one preempted, and it waits ahead of nothing older.
    for _ in range(4):
        out = scheduler.schedule()
        sampled = {s.request_id: 1 for s in out.scheduled if s.needs_sample}
        scheduler.update_from_output(out, sampled)
        for beam_id in (first.request_id, "second"):
            if beam_id in sampled:
                scheduler.extend_beam(beam_id, 7)
        if out.preempted_request_ids:
            break
    assert out.preempted_request_ids == {younger.request_id}
    assert [r.request_id for r in scheduler.waiting] == [younger.request_id]
    scheduler.check_invariants()


def test_a_preempted_request_waits_ahead_of_those_that_arrived_after_it():
    queue = WaitingQueue()
    old, new_1, new_2 = (make_request(4) for _ in range(3))
    for order, request in enumerate((old, new_1, new_2)):
        request.arrival_order = order
    queue.append(new_2)
    queue.insert_in_arrival_order(new_1)
    queue.insert_in_arrival_order(old)
    assert [r.request_id for r in queue] == [old.request_id, new_1.request_id, new_2.request_id]
