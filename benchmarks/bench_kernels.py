"""Paged attention kernels against the copy-bandwidth floor and torch SDPA: ``pagedllm bench kernels``.

Kept so the old command keeps working; the benchmark lives in ``pagedllm/bench/kernels.py``.
"""

from __future__ import annotations

import os
import sys

if "--smoke" in sys.argv:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from pagedllm.bench.kernels import main

if __name__ == "__main__":
    sys.exit(main())
