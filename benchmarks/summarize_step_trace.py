"""Summarize ``PAGEDLLM_STEP_TRACE`` files: per run (steps separated by an idle gap), how many steps
were pure decode / mixed / prefill only, launched ahead or not, and their mean call time.

    python benchmarks/summarize_step_trace.py TRACE.* [--gap 0.5]

A step's "prefill" tokens are those of sequences computing more than one token: a prefill chunk of
one token counts as a decode.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def runs(rows: list[dict], gap: float) -> list[list[dict]]:
    out: list[list[dict]] = []
    last_end = None
    for row in rows:
        if last_end is None or row["t"] - last_end > gap:
            out.append([])
        out[-1].append(row)
        last_end = row["t"] + row["ms"] / 1e3
    return out


def kind(row: dict) -> str:
    if row["prefill_tokens"] == 0:
        return "decode-ahead" if row["ahead"] else "decode"
    return "prefill" if row["prefill_tokens"] == row["tokens"] else "mixed"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--gap", type=float, default=0.5)
    args = parser.parse_args()
    for path in args.paths:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line]
        for i, run in enumerate(runs(rows, args.gap)):
            span = run[-1]["t"] + run[-1]["ms"] / 1e3 - run[0]["t"]
            busy = sum(r["ms"] for r in run) / 1e3
            print(f"{path} run {i}: {len(run)} steps in {span:.3f} s (calls {busy:.3f} s)")
            for k in ("prefill", "mixed", "decode", "decode-ahead"):
                sel = [r for r in run if kind(r) == k]
                if sel:
                    ms = sum(r["ms"] for r in sel)
                    seqs = sum(r["seqs"] for r in sel) / len(sel)
                    tok = sum(r["tokens"] for r in sel) / len(sel)
                    print(
                        f"  {k:13s} {len(sel):4d} steps, {ms / len(sel):7.2f} ms/call, {ms / 1e3:.3f} s,"
                        f" {seqs:.0f} seqs, {tok:.0f} tokens per step"
                    )
            slow = sorted(run, key=lambda r: -r["ms"])[:3]
            for r in slow:
                print(f"  slowest: {r}")


if __name__ == "__main__":
    main()
