"""What every benchmark records beside its numbers: command, commit, machine, versions."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def git_commit() -> str:
    """The short commit of the pagedllm checkout that runs, or "unknown" where pagedllm is not a git
    checkout (an installed wheel).

    NOTE: asked in the package's own folder, not the working directory: a benchmark run from another
    repository recorded that repository's commit.
    """
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict[str, Any]:
    import torch  # NOTE: here, so that git_commit() stays usable by clients without torch

    commit = git_commit()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:
        triton_version = None
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "device": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "triton": triton_version,
        "python": platform.python_version(),
    }


def write_json(path: str | os.PathLike[str], result: dict[str, Any]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out
