"""Beam selection for one request, step by step, as transformers' ``generate(num_beams=W,
do_sample=False)`` does it (its defaults: ``early_stopping=False``), so the two return the same beams.

Every live beam is an engine sequence. Each step, once every live beam has reported the top K
log-probabilities of its next token, the search picks the next live beams; the engine then forks the
sequences that continue more than once (children share the parent's blocks, copy-on-write) and frees
those that do not continue at all.

Scoring rules:
- a beam's running score is the sum of its tokens' log-probabilities (``log_softmax`` of the raw logits,
  no temperature or penalties);
- the K = max(2, 1 + number of EOS ids) * W best continuations over all live beams are ranked by running
  score (at the first step there is one live beam, the prompt);
- a continuation *ends* when its token is an EOS id (unless ``ignore_eos``) or it reaches ``max_tokens``;
  only an ending continuation ranked among the first W becomes a finished hypothesis, scored
  ``sum / generated_len ** length_penalty`` (the EOS counts in the length); the W best hypotheses are kept;
- the W best continuations that do not end are the next live beams;
- the search ends when all K continuations end, or when W hypotheses are kept and the best live beam's
  ``sum / generated_len ** length_penalty`` is no better than the worst of them;
- the result is the kept hypotheses, best score first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from pagedllm.core.request import Request
from pagedllm.outputs import CompletionOutput, RequestOutput
from pagedllm.tokenizer.tokenizer import Tokenizer


def beam_score(cumulative_logprob: float, num_tokens: int, length_penalty: float) -> float:
    """What finished beams are ranked by."""
    return cumulative_logprob / math.pow(num_tokens, length_penalty)


@dataclass(slots=True)
class Beam:
    sequence_id: str
    token_ids: list[int]
    cumulative_logprob: float


@dataclass(slots=True, frozen=True)
class Hypothesis:
    """A finished beam."""

    token_ids: tuple[int, ...]
    cumulative_logprob: float
    score: float
    finish_reason: str  # "stop" or "length"


@dataclass(slots=True)
class BeamStep:
    """What the engine does to its sequences after a selection, in this order."""

    forks: list[tuple[str, str, int]] = field(default_factory=list)  # (parent id, child id, token)
    extends: list[tuple[str, int]] = field(default_factory=list)  # (sequence id, token)
    drops: list[str] = field(default_factory=list)  # sequences no live beam continues
    done: bool = False


class BeamSearchState:
    def __init__(
        self,
        first_sequence_id: str,
        beam_width: int,
        max_tokens: int,
        length_penalty: float,
        eos_token_ids: frozenset[int],
        new_sequence_id: Callable[[], str],
    ) -> None:
        self.beam_width = beam_width
        self.max_tokens = max_tokens
        self.length_penalty = length_penalty
        self.eos_token_ids = eos_token_ids
        # Enough candidates that W of them survive even if each live beam's best candidate is an EOS.
        self.num_candidates = max(2, 1 + len(eos_token_ids)) * beam_width
        self._new_sequence_id = new_sequence_id
        self.live: list[Beam] = [Beam(first_sequence_id, [], 0.0)]
        self.hypotheses: list[Hypothesis] = []  # best first, at most beam_width
        self.num_generated = 0  # tokens of every live beam
        self.done = False
        self._reports: dict[str, list[tuple[int, float]]] = {}

    @property
    def live_sequence_ids(self) -> list[str]:
        return [beam.sequence_id for beam in self.live]

    def report(self, sequence_id: str, top_logprobs: list[tuple[int, float]]) -> BeamStep | None:
        """A live beam's next-token top-K ``(token, logprob)``, best first. Returns the step to apply once
        every live beam has reported, else None."""
        assert not self.done and any(b.sequence_id == sequence_id for b in self.live), sequence_id
        self._reports[sequence_id] = top_logprobs[: self.num_candidates]
        if len(self._reports) < len(self.live):
            return None
        return self._select()

    def forget_report(self, sequence_id: str) -> None:
        """The sequence was preempted: its K/V are gone, and it reports again once recomputed."""
        self._reports.pop(sequence_id, None)

    def _select(self) -> BeamStep:
        candidates: list[tuple[float, Beam, int]] = [
            (beam.cumulative_logprob + logprob, beam, token)
            for beam in self.live
            for token, logprob in self._reports[beam.sequence_id]
        ]
        self._reports.clear()
        candidates.sort(key=lambda c: -c[0])  # stable: ties keep beam order, then token rank
        candidates = candidates[: self.num_candidates]
        self.num_generated += 1
        at_max_tokens = self.num_generated >= self.max_tokens

        continuing: list[tuple[float, Beam, int]] = []
        for rank, (score, beam, token) in enumerate(candidates):
            is_eos = token in self.eos_token_ids
            if is_eos or at_max_tokens:
                if rank < self.beam_width:
                    reason = "stop" if is_eos else "length"
                    tokens = (*beam.token_ids, token)
                    normalized = beam_score(score, len(tokens), self.length_penalty)
                    self._keep(Hypothesis(tokens, score, normalized, reason))
            elif len(continuing) < self.beam_width:
                continuing.append((score, beam, token))

        self.done = not continuing or self._cannot_improve(
            beam_score(continuing[0][0], self.num_generated, self.length_penalty)
        )
        step = BeamStep(done=self.done)
        if self.done:
            step.drops = self.live_sequence_ids
            self.live = []
            return step
        next_live: list[Beam] = []
        continued: set[str] = set()
        for score, parent, token in continuing:
            if parent.sequence_id in continued:
                child_id = self._new_sequence_id()
                step.forks.append((parent.sequence_id, child_id, token))
            else:
                child_id = parent.sequence_id
                continued.add(child_id)
                step.extends.append((child_id, token))
            next_live.append(Beam(child_id, [*parent.token_ids, token], score))
        step.drops = [b.sequence_id for b in self.live if b.sequence_id not in continued]
        self.live = next_live
        return step

    def _keep(self, hypothesis: Hypothesis) -> None:
        self.hypotheses.append(hypothesis)
        self.hypotheses.sort(key=lambda h: -h.score)  # stable: an earlier equal score stays ahead
        del self.hypotheses[self.beam_width :]

    def _cannot_improve(self, best_live_score: float) -> bool:
        """transformers' early-stop heuristic for ``early_stopping=False``: judge the best live beam as if
        it ended at its current length."""
        if len(self.hypotheses) < self.beam_width:
            return False
        return best_live_score <= self.hypotheses[-1].score


@dataclass(slots=True)
class BeamSearchRequest:
    """One beam-search request in the engine: its prompt, its live sequences' search, and the result."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    first_sequence: Request  # the prompt's sequence: prefilled once, then the first beam
    state: BeamSearchState

    def to_output(self, tokenizer: Tokenizer | None) -> RequestOutput:
        """The finished search as a ``RequestOutput``: one completion per kept hypothesis, best first."""
        completions = [
            CompletionOutput(
                index=index,
                text=tokenizer.decode(list(h.token_ids), skip_special_tokens=True) if tokenizer else "",
                token_ids=list(h.token_ids),
                cumulative_logprob=h.cumulative_logprob,
                logprobs=None,
                finish_reason=h.finish_reason,
            )
            for index, h in enumerate(self.state.hypotheses)
        ]
        return RequestOutput(
            request_id=self.request_id,
            prompt=self.prompt,
            prompt_token_ids=list(self.prompt_token_ids),
            outputs=completions,
            finished=self.state.done,
            num_cached_tokens=self.first_sequence.num_cached_tokens,
        )
