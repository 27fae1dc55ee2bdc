"""Random arrivals, aborts and stops against a tiny pool: the core's invariants hold at every step."""

from core_helpers import make_request, make_scheduler
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pagedllm.core import RequestRejectedError, RequestStatus


class SchedulerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.scheduler = make_scheduler(
            num_blocks=12, block_size=4, max_num_seqs=4, max_num_batched_tokens=16, max_model_len=40
        )
        self.submitted = []
        self.steps_without_progress = 0

    @rule(prompt_len=st.integers(1, 45), max_tokens=st.integers(1, 12))
    def add(self, prompt_len: int, max_tokens: int) -> None:
        request = make_request(num_prompt_tokens=prompt_len, max_tokens=max_tokens, eos_token_id=999)
        try:
            self.scheduler.add_request(request)
        except RequestRejectedError:
            assert prompt_len >= 40
            return
        self.submitted.append(request)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        out = self.scheduler.schedule()
        assert out.num_batched_tokens <= 16 and len(out.scheduled) <= 4
        for item in out.scheduled:
            table = self.scheduler.kv.block_tables[item.request_id]
            assert len(table) * 4 >= item.start_position + item.num_tokens, "tokens without slots"
        sampled = {
            s.request_id: data.draw(st.sampled_from([7, 999])) for s in out.scheduled if s.needs_sample
        }
        self.scheduler.update_from_output(out, sampled)

    @precondition(lambda self: self.submitted)
    @rule(data=st.data())
    def abort(self, data: st.DataObject) -> None:
        request = data.draw(st.sampled_from(self.submitted))
        self.scheduler.finish_requests([request.request_id], RequestStatus.FINISHED_ABORTED)

    @invariant()
    def pool_is_consistent(self) -> None:
        self.scheduler.check_invariants()

    def teardown(self) -> None:
        # Liveness: with no new arrivals every request finishes, and then every block is free.
        for _ in range(500):
            if not self.scheduler.has_unfinished_requests():
                break
            out = self.scheduler.schedule()
            self.scheduler.update_from_output(out, {s.request_id: 7 for s in out.scheduled if s.needs_sample})
            self.scheduler.check_invariants()
        assert not self.scheduler.has_unfinished_requests(), "requests starved"
        assert self.scheduler.kv.num_free_blocks == self.scheduler.kv.num_blocks
        assert all(r.is_finished for r in self.submitted)


SchedulerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestSchedulerInvariants = SchedulerMachine.TestCase
