"""Benchmark workloads: prompts of random token ids and the exact number of tokens each must produce."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from pagedllm.sim.workloads import is_csv, read_csv_or_json

# Ids below this are often special tokens (BOS, EOS, chat markers): random prompts skip them.
FIRST_ORDINARY_TOKEN = 100


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    prompts: list[list[int]]
    output_lens: list[int]

    @property
    def prompt_lens(self) -> list[int]:
        return [len(p) for p in self.prompts]

    @property
    def num_prompt_tokens(self) -> int:
        return sum(self.prompt_lens)

    @property
    def num_output_tokens(self) -> int:
        return sum(self.output_lens)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "num_prompts": len(self.prompts),
            "prompt_tokens": self.num_prompt_tokens,
            "output_tokens": self.num_output_tokens,
            "min_prompt_len": min(self.prompt_lens),
            "max_prompt_len": max(self.prompt_lens),
            "min_output_len": min(self.output_lens),
            "max_output_len": max(self.output_lens),
        }


def parse_range(text: str) -> tuple[int, int]:
    """``"100-1024"`` -> (100, 1024); ``"512"`` -> (512, 512)."""
    lo, _, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi or lo)
    except ValueError:
        raise ValueError(f"length range {text!r} must be N or LOW-HIGH with integers") from None
    if not 1 <= low <= high:
        raise ValueError(f"length range {text!r} must satisfy 1 <= LOW <= HIGH")
    return low, high


def random_workload(
    num_prompts: int,
    input_len: str,
    output_len: str,
    vocab_size: int,
    seed: int = 0,
    max_model_len: int | None = None,
) -> Workload:
    """``num_prompts`` random-id prompts; lengths fixed (``"512"``) or uniform in a range (``"100-1024"``).
    With ``max_model_len``, ValueError for a prompt and output that do not fit (``check_fits``)."""
    if num_prompts < 1:
        raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
    in_lo, in_hi = parse_range(input_len)
    out_lo, out_hi = parse_range(output_len)
    rng = random.Random(seed)
    lens = [(rng.randint(in_lo, in_hi), rng.randint(out_lo, out_hi)) for _ in range(num_prompts)]
    check_fits(lens, max_model_len)
    return Workload(
        f"random-{input_len}-{output_len}", _random_prompts(lens, vocab_size, rng), [m for _, m in lens]
    )


def workload_from_file(
    path: str | Path, vocab_size: int, seed: int = 0, max_model_len: int | None = None
) -> Workload:
    """Lengths from a file, random ids for the prompts.

    JSON: a list of ``{"input_len": N, "output_len": M}`` objects (or ``[N, M]`` pairs); CSV (a ``.csv``
    suffix, any case): a header with ``input_len`` and ``output_len`` columns. ValueError names the
    entry that is not such a pair of whole numbers >= 1 (or, with ``max_model_len``, does not fit).
    """
    file = Path(path)
    entries = read_csv_or_json(file)
    if not isinstance(entries, list):
        raise ValueError(f"{file} must hold a JSON list of length pairs, got {type(entries).__name__}")
    where = "row" if is_csv(file) else "entry"
    pairs = [_length_pair(entry, f"{file}, {where} {i}") for i, entry in enumerate(entries)]
    if not pairs:
        raise ValueError(f"{file} must list at least one (input_len, output_len) pair")
    check_fits(pairs, max_model_len)
    prompts = _random_prompts(pairs, vocab_size, random.Random(seed))
    return Workload(f"file-{file.stem}", prompts, [m for _, m in pairs])


def _length_pair(entry: object, where: str) -> tuple[int, int]:
    if isinstance(entry, dict):
        missing = [key for key in ("input_len", "output_len") if entry.get(key) in (None, "")]
        if missing:
            raise ValueError(f"{where} has no {' or '.join(missing)}: {entry!r}")
        return _length(entry["input_len"], where), _length(entry["output_len"], where)
    if isinstance(entry, list) and len(entry) == 2:
        return _length(entry[0], where), _length(entry[1], where)
    raise ValueError(f'{where} must be {{"input_len": N, "output_len": M}} or [N, M], got {entry!r}')


def _length(value: object, where: str) -> int:
    """A whole number >= 1, from JSON (an int) or CSV (its text); never a bool or a fraction cut short."""
    number: object = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"{where}: lengths must be whole numbers >= 1, got {value!r}")
    return number


def _random_prompts(lengths: list[tuple[int, int]], vocab_size: int, rng: random.Random) -> list[list[int]]:
    # A vocabulary too small to skip the likely special tokens (a tiny test model) uses all of its ids.
    low = FIRST_ORDINARY_TOKEN if vocab_size > FIRST_ORDINARY_TOKEN else 0
    return [[rng.randrange(low, vocab_size) for _ in range(n)] for n, _ in lengths]


def check_fits(lengths: list[tuple[int, int]], max_model_len: int | None) -> None:
    """ValueError for the first (prompt, output) pair longer than ``max_model_len``, before any prompt is
    built: the run would otherwise produce fewer tokens than asked, or build a huge prompt to refuse it."""
    if max_model_len is None:
        return
    for i, (prompt_len, output_len) in enumerate(lengths):
        if prompt_len + output_len > max_model_len:
            raise ValueError(
                f"prompt {i} needs {prompt_len} + {output_len} = {prompt_len + output_len} tokens, more "
                f"than max_model_len={max_model_len}: shorten the workload or raise --max-model-len"
            )
