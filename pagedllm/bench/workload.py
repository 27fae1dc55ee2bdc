"""Benchmark workloads: prompts of random token ids and the exact number of tokens each must produce."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

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
    num_prompts: int, input_len: str, output_len: str, vocab_size: int, seed: int = 0
) -> Workload:
    """``num_prompts`` random-id prompts; lengths fixed (``"512"``) or uniform in a range (``"100-1024"``)."""
    if num_prompts < 1:
        raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
    in_lo, in_hi = parse_range(input_len)
    out_lo, out_hi = parse_range(output_len)
    rng = random.Random(seed)
    lens = [(rng.randint(in_lo, in_hi), rng.randint(out_lo, out_hi)) for _ in range(num_prompts)]
    prompts = [[rng.randrange(FIRST_ORDINARY_TOKEN, vocab_size) for _ in range(n)] for n, _ in lens]
    return Workload(f"random-{input_len}-{output_len}", prompts, [m for _, m in lens])


def workload_from_file(path: str | Path, vocab_size: int, seed: int = 0) -> Workload:
    """Lengths from a file, random ids for the prompts.

    JSON: a list of ``{"input_len": N, "output_len": M}`` objects (or ``[N, M]`` pairs); CSV: a header
    with ``input_len`` and ``output_len`` columns.
    """
    file = Path(path)
    pairs: list[tuple[int, int]] = []
    if file.suffix == ".csv":
        with file.open(newline="") as f:
            for row in csv.DictReader(f):
                pairs.append((int(row["input_len"]), int(row["output_len"])))
    else:
        for item in json.loads(file.read_text()):
            if isinstance(item, dict):
                pairs.append((int(item["input_len"]), int(item["output_len"])))
            else:
                pairs.append((int(item[0]), int(item[1])))
    if not pairs or any(n < 1 or m < 1 for n, m in pairs):
        raise ValueError(f"{file} must list at least one (input_len, output_len) pair, both >= 1")
    rng = random.Random(seed)
    prompts = [[rng.randrange(FIRST_ORDINARY_TOKEN, vocab_size) for _ in range(n)] for n, _ in pairs]
    return Workload(f"file-{file.stem}", prompts, [m for _, m in pairs])
