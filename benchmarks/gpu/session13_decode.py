"""Session 13: `pagedllm bench decode` with the skinny linears' shared-memory budget set by ``S13_SMEM_KB``
(KB a program's pipeline may take; 200 is the default). Under 113 KB two programs fit an H100 SM, so the
next kernel's programs (PDL) can become resident, prefetch their weights and wait while the current
kernel's programs still run, instead of each waiting for an SM to empty.

The rest of the command line is ``pagedllm bench decode``'s.
"""

import os
import sys

from pagedllm.cli import main
from pagedllm.model.layers import skinny_linear

if "S13_SMEM_KB" in os.environ:
    skinny_linear.SMEM_BUDGET = int(os.environ["S13_SMEM_KB"]) * 1024

sys.exit(main(["bench", "decode", *sys.argv[1:]]))
