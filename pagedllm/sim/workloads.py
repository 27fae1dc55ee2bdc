"""Workloads for the simulator: prompt and output lengths with arrival times, named as in BENCHMARKS.md.

A request's *length* in ``seed-memory`` is the number of tokens whose K/V the sequence holds when it
ends: its prompt plus every response token but the last (nothing ever attends to the last sampled token,
so its K/V are never computed). A length ``L`` becomes a prompt of ``max(1, L // 2)`` tokens and a
response of ``L - prompt + 1`` tokens, so the cache holds exactly ``L`` tokens at the end.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED_MEMORY_BATCH_SIZES = (10, 25, 50, 100, 150, 200)
SEED_MEMORY_MAX_LENGTH = 999
SEED_MEMORY_MAX_MODEL_LEN = 2048
SEED_MEMORY_BLOCK_SIZE = 16
SHARED_PREFIX_NUM_REQUESTS = (10, 1000)
SHARED_PREFIX_LEN = 200

_PROMPT_KEYS = ("prompt_len", "prompt_tokens", "input_len", "num_prompt_tokens")
_OUTPUT_KEYS = ("output_len", "output_tokens", "max_tokens", "num_output_tokens")


@dataclass(frozen=True, slots=True)
class SimRequest:
    prompt_len: int
    output_len: int  # response tokens (max_tokens; the simulated sampler never stops early)
    arrival_time: float = 0.0  # seconds on the simulated clock
    shared_prefix_len: int = 0  # leading prompt tokens equal to the workload's shared prefix

    def __post_init__(self) -> None:
        if self.prompt_len < 1 or self.output_len < 1:
            raise ValueError(f"a request needs prompt_len >= 1 and output_len >= 1, got {self}")
        if not 0 <= self.shared_prefix_len <= self.prompt_len:
            raise ValueError(f"shared_prefix_len must be in [0, prompt_len], got {self}")
        if not (self.arrival_time >= 0 and math.isfinite(self.arrival_time)):
            raise ValueError(f"arrival_time must be a finite number >= 0, got {self}")

    @property
    def kv_length(self) -> int:
        """Tokens whose K/V the sequence holds at its end."""
        return self.prompt_len + self.output_len - 1


@dataclass(frozen=True, slots=True)
class Workload:
    name: str  # seed-memory, shared-prefix, trace
    label: str  # the instance: "batch=10", "requests=1000", a file name
    requests: tuple[SimRequest, ...]
    # Size max_num_seqs and the token budget so that every request is admitted in the first step.
    admit_together: bool = False
    params: dict[str, Any] = field(default_factory=dict, compare=False)


def stratified_uniform_ints(n: int, low: int, high: int, rng: random.Random) -> list[int]:
    """``n`` integers, each uniform on ``[low, high]``, one drawn from each of ``n`` equal strata.

    Strata ``i`` and ``n - 1 - i`` draw mirrored offsets (``u`` and ``1 - u``), so each value is still
    uniform on the whole range (its stratum is a random one after the shuffle) but the batch's mean is
    the range's mean to within a token or so.
    NOTE: i.i.d. draws of 10 lengths would move the mean by ~90 tokens (4 points of reservation
    utilization), drowning the effect the seed-memory workload exists to show.
    """
    width = (high - low + 1) / n
    offsets = [rng.random() for _ in range(n // 2)]
    units = [*offsets, *([rng.random()] if n % 2 else []), *(1.0 - u for u in reversed(offsets))]
    values = [low + min(int((i + u) * width), high - low) for i, u in enumerate(units)]
    rng.shuffle(values)
    return values


def split_length(length: int) -> tuple[int, int]:
    """(prompt, response) tokens for a sequence that holds ``length`` tokens of K/V at its end."""
    prompt = max(1, length // 2)
    return prompt, length - prompt + 1


def seed_memory(batch_size: int, seed: int = 0) -> Workload:
    """BENCHMARKS.md ``seed-memory``: ``batch_size`` sequences of length uniform in 1..999, all at once."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = random.Random(f"seed-memory/{batch_size}/{seed}")
    lengths = stratified_uniform_ints(batch_size, 1, SEED_MEMORY_MAX_LENGTH, rng)
    requests = tuple(SimRequest(*split_length(length)) for length in lengths)
    return Workload(
        name="seed-memory",
        label=f"batch={batch_size}",
        requests=requests,
        admit_together=True,
        params={"batch_size": batch_size, "seed": seed, "max_length": SEED_MEMORY_MAX_LENGTH},
    )


def shared_prefix(num_requests: int, prefix_len: int = SHARED_PREFIX_LEN, seed: int = 0) -> Workload:
    """BENCHMARKS.md ``shared-prefix``: one ``prefix_len``-token system prompt, then each request's own
    question (10 to 60 tokens) and answer (20 to 200 tokens).

    Request 0 arrives first and warms the prefix cache; the rest arrive together one step later.
    NOTE: blocks enter the prefix cache when they are computed, so requests admitted in the same step as
    the first holder of a prefix compute it again instead of sharing it.
    """
    if num_requests < 1 or prefix_len < 1:
        raise ValueError(f"num_requests and prefix_len must be >= 1, got {num_requests}, {prefix_len}")
    rng = random.Random(f"shared-prefix/{num_requests}/{prefix_len}/{seed}")
    requests = tuple(
        SimRequest(
            prompt_len=prefix_len + rng.randint(10, 60),
            output_len=rng.randint(20, 200),
            arrival_time=0.0 if i == 0 else 1e-9,
            shared_prefix_len=prefix_len,
        )
        for i in range(num_requests)
    )
    return Workload(
        name="shared-prefix",
        label=f"requests={num_requests}",
        requests=requests,
        params={"num_requests": num_requests, "prefix_len": prefix_len, "seed": seed},
    )


def synthetic_trace(num_requests: int, request_rate: float = 20.0, seed: int = 0) -> Workload:
    """A chat-like trace: log-normal prompt (median ~180, 4..2000) and response (median ~120, 1..1000)
    lengths, Poisson arrivals at ``request_rate`` requests per second (``inf``: all at time 0)."""
    if not request_rate > 0:
        raise ValueError(f"request_rate must be > 0 (inf: all at once), got {request_rate}")
    rng = random.Random(f"trace/{num_requests}/{request_rate}/{seed}")
    clock = 0.0
    requests = []
    for _ in range(num_requests):
        # NOTE: expovariate(inf) is 0.0: every request arrives at 0, vLLM's meaning of a rate of inf.
        clock += rng.expovariate(request_rate)
        prompt = min(2000, max(4, round(rng.lognormvariate(math.log(180), 0.9))))
        output = min(1000, max(1, round(rng.lognormvariate(math.log(120), 0.8))))
        requests.append(SimRequest(prompt, output, round(clock, 6)))
    return Workload(
        name="trace",
        label=f"synthetic-{num_requests}",
        requests=tuple(requests),
        params={"num_requests": num_requests, "request_rate": request_rate, "seed": seed},
    )


def load_trace(path: str | Path) -> Workload:
    """A trace file: JSON (a list of objects, or ``{"requests": [...]}``) or CSV with a header row.

    Fields: ``prompt_len`` and ``output_len`` (also accepted: ``prompt_tokens``/``input_len``,
    ``output_tokens``/``max_tokens``), optional ``arrival_time`` in seconds (default 0).
    """
    path = Path(path)
    data = read_csv_or_json(path)
    rows = data if is_csv(path) else _json_trace_rows(data, path)
    requests = [_trace_request(row, path, i) for i, row in enumerate(rows)]
    if not requests:
        raise ValueError(f"{path}: the trace holds no requests")
    return Workload(name="trace", label=path.name, requests=tuple(requests), params={"path": str(path)})


def is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def read_csv_or_json(path: Path) -> Any:
    """A CSV file's rows (dicts keyed by its header) where the suffix is ``.csv`` (any case), else the JSON
    document; ValueError for JSON that does not parse. (Traces here, ``bench --dataset`` files too.)"""
    # NOTE: utf-8-sig: spreadsheet programs start CSV (and some editors JSON) with a byte order mark,
    # which would otherwise become part of the first column's name.
    with open(path, encoding="utf-8-sig", newline="") as f:
        if is_csv(path):
            return list(csv.DictReader(f))
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None


def _json_trace_rows(data: Any, path: Path) -> list[Any]:
    rows = data.get("requests") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError(f'{path}: expected a list of requests or {{"requests": [...]}}')
    return rows


def _trace_request(row: Any, path: Path, index: int) -> SimRequest:
    if not isinstance(row, dict):
        raise ValueError(f"{path}: request {index} is not an object: {row!r}")
    where = f"{path}: request {index}"
    prompt = _token_count(_trace_field(row, _PROMPT_KEYS, where), where)
    output = _token_count(_trace_field(row, _OUTPUT_KEYS, where), where)
    _, arrival_time = _trace_field(row, ("arrival_time", "timestamp"), where, default=0.0)
    try:
        return SimRequest(prompt, output, arrival_time)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _trace_field(
    row: dict[str, Any], keys: Sequence[str], where: str, default: float | None = None
) -> tuple[str, float]:
    """(key, value) of the first of ``keys`` the row gives, as a finite number."""
    for key in keys:
        value = row.get(key)
        if value in (None, ""):
            continue
        # NOTE: bool is an int to Python, so JSON's true would pass as 1 token.
        number = None if isinstance(value, bool) else _as_float(value)
        if number is None:
            raise ValueError(f"{where}: {key}={value!r} is not a number")
        if not math.isfinite(number):
            raise ValueError(f"{where}: {key}={value!r} is not a finite number")
        return key, number
    if default is None:
        raise ValueError(f"{where} has none of the fields {', '.join(keys)}")
    return keys[0], default


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float's range
        return math.inf
    except (TypeError, ValueError):
        return None


def _token_count(field: tuple[str, float], where: str) -> int:
    key, value = field
    if not value.is_integer():
        raise ValueError(f"{where}: {key}={value:g} is not a whole number of tokens")
    return int(value)


def save_trace(workload: Workload, path: str | Path) -> None:
    """Write ``prompt_len, output_len, arrival_time`` rows as CSV or JSON (by the file's suffix)."""
    path = Path(path)
    rows = [
        {"prompt_len": r.prompt_len, "output_len": r.output_len, "arrival_time": r.arrival_time}
        for r in workload.requests
    ]
    if path.suffix.lower() == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["prompt_len", "output_len", "arrival_time"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps({"requests": rows}) + "\n", encoding="utf-8")
