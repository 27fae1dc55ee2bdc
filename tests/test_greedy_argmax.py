"""The two-pass Triton argmax of greedy sampling against ``torch.argmax``: on a GPU compiled, on a
machine without CUDA through Triton's interpreter (small chunks, so rows still span several programs)."""

from __future__ import annotations

import os

import pytest
import torch

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are decorated

pytest.importorskip("triton", reason="triton is not installed")

from pagedllm.attention.triton.interpreter_compat import prepare_interpreter  # noqa: E402
from pagedllm.worker.sampler import greedy_argmax  # noqa: E402
from pagedllm.worker.triton_argmax import argmax_rows  # noqa: E402

DEVICE = torch.device("cuda" if ON_GPU else "cpu")
# On the CPU the interpreter runs every program in Python: small chunks keep several per row.
CHUNK, BLOCK = (8192, 4096) if ON_GPU else (64, 16)


@pytest.fixture(autouse=True)
def _interpreter() -> None:
    prepare_interpreter()


def _argmax(logits: torch.Tensor) -> torch.Tensor:
    return argmax_rows(logits, chunk=CHUNK, block=BLOCK)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("rows,vocab", [(1, 1), (3, 200), (5, 1000)] + ([(256, 128_256)] if ON_GPU else []))
def test_argmax_matches_torch_on_random_logits(dtype, rows, vocab):
    logits = torch.randn(rows, vocab, device=DEVICE).to(dtype)
    torch.testing.assert_close(_argmax(logits), logits.argmax(dim=-1), rtol=0, atol=0)


def test_ties_go_to_the_first_index_across_chunks():
    vocab = 4 * CHUNK + 7
    logits = torch.zeros(4, vocab, device=DEVICE, dtype=torch.bfloat16)
    logits[0, [5, CHUNK + 3, 3 * CHUNK]] = 2.0  # ties in different chunks
    logits[1, [CHUNK + 1, CHUNK + 2]] = 1.0  # ties in one chunk, lanes side by side
    logits[2, [BLOCK + 1, 1]] = 1.0  # ties in one lane of one chunk
    logits[3, -1] = 1.0  # only the last column, in the partial last chunk
    assert _argmax(logits).tolist() == [5, CHUNK + 1, 1, vocab - 1]


def test_nan_wins_like_torch_and_a_row_of_minus_inf_gives_zero():
    vocab = 3 * CHUNK
    logits = torch.randn(3, vocab, device=DEVICE)
    logits[0, [2 * CHUNK + 5, CHUNK + 9]] = float("nan")  # the first NaN wins over every number
    logits[0, 0] = float("inf")
    logits[1] = float("-inf")
    logits[2, 17] = float("inf")
    expected = logits.argmax(dim=-1)
    assert expected.tolist() == [CHUNK + 9, 0, 17]  # torch's own order, which ours must follow
    assert _argmax(logits).tolist() == expected.tolist()


def test_a_strided_row_view_and_an_empty_batch():
    wide = torch.randn(6, 300, device=DEVICE)
    view = wide[::2, :250]  # rows 600 elements apart, the last dimension contiguous
    torch.testing.assert_close(_argmax(view), view.argmax(dim=-1), rtol=0, atol=0)
    assert _argmax(torch.empty(0, 10, device=DEVICE)).shape == (0,)


def test_greedy_argmax_dispatches_to_torch_off_cuda():
    logits = torch.randn(4, 50)
    torch.testing.assert_close(greedy_argmax(logits), logits.argmax(dim=-1), rtol=0, atol=0)
