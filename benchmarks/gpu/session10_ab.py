"""Session 10 A/B: ``pagedllm`` CLI with pure-decode steps as before the decode kernel stored the step's
K/V itself (``--separate-kv-write``: a K/V write launch, then attention, per layer) or as now.

    python3 benchmarks/gpu/session10_ab.py [--separate-kv-write] bench decode ...
"""

from __future__ import annotations

import sys

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.triton.backend import TritonAttentionBackend
from pagedllm.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--separate-kv-write":
        args = args[1:]
        TritonAttentionBackend.forward = AttentionBackend.forward  # type: ignore[method-assign]
    sys.exit(main(args))
