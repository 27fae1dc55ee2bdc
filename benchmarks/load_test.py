"""Full-scale load test (and soak) of `pagedllm serve` on localhost: hundreds of concurrent streaming
clients against a KV pool small enough to force preemption by recompute and by swapping, a tenth of them
hanging up mid-stream. Prints and writes a JSON report; exits 1 if any client failed, got other than its
unloaded greedy output, saw a 5xx, or any block or swap slot is still held at idle.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/load_test.py --clients 300
    python benchmarks/load_test.py --clients 100 --soak-seconds 600  # rounds until then; RSS sampled
    python benchmarks/load_test.py --url http://host:8000 --clients 500  # an already running server

Without --url it starts its own server (SmolLM2, float32) with the KV pool and swap space given.
A model without a tokenizer (`--load-format dummy`) needs `--token-prompts`: prompts of random token
ids, compared by the token ids generated. Memory is the server's process tree (the API process and
its engine core process): RSS, and on a GPU the GPU memory nvidia-smi lists for those pids.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from server_harness import start_server  # noqa: E402

from pagedllm.bench.load_test import random_token_prompts, run_load_test, wait_idle  # noqa: E402

BYTES_PER_BLOCK_SMOLLM2_FP32 = 2 * 30 * 3 * 64 * 4 * 16


def server_processes(server: psutil.Process) -> list[psutil.Process]:
    """The server and its children: the API process and the engine core process it spawned."""
    return [server, *server.children(recursive=True)]


def rss_mib(processes: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in processes) / 2**20


def gpu_memory_mib(pids: set[int]) -> float | None:
    """GPU memory these processes hold, from nvidia-smi (None without one, or if it lists none)."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    try:
        lines = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    held = [
        float(fields[1])
        for fields in ([f.strip() for f in line.split(",")] for line in lines)
        if len(fields) == 2 and fields[0].isdigit() and int(fields[0]) in pids
    ]
    return sum(held) if held else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=None, help="test this server instead of starting one")
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--disconnect-fraction", type=float, default=0.1)
    parser.add_argument("--kv-blocks", type=int, default=48, help="KV pool of the started server, in blocks")
    parser.add_argument("--swap-blocks", type=int, default=64, help="its swap space, in blocks")
    parser.add_argument("--swap-threshold-tokens", type=int, default=16)
    parser.add_argument("--server-args", default="", help="extra arguments for the started server")
    parser.add_argument(
        "--token-prompts", type=int, default=0, help="use this many prompts of random token ids"
    )
    parser.add_argument("--prompt-len", type=int, nargs=2, default=(8, 128), metavar=("MIN", "MAX"))
    parser.add_argument("--vocab-size", type=int, default=32000, help="token ids drawn below this")
    parser.add_argument(
        "--soak-seconds", type=float, default=0.0, help="repeat rounds this long, sampling RSS"
    )
    parser.add_argument("--out", default=None, help="write the JSON report here")
    args = parser.parse_args()

    server = None
    url = args.url
    if url is None:
        server = start_server(
            "--dtype", "float32", "--max-model-len", "256",
            "--kv-cache-memory-bytes", str(args.kv_blocks * BYTES_PER_BLOCK_SMOLLM2_FP32),
            "--swap-space", str(args.swap_blocks * BYTES_PER_BLOCK_SMOLLM2_FP32 / 2**30),
            "--swap-threshold-tokens", str(args.swap_threshold_tokens),
            "--max-num-seqs", "256",
            *args.server_args.split(),
        )  # fmt: skip
        url = server.base_url
    process = psutil.Process(server.process.pid) if server is not None else None
    prompts = (
        random_token_prompts(args.token_prompts, *args.prompt_len, args.vocab_size)
        if args.token_prompts
        else None
    )
    rounds = []
    rss = []
    start = time.monotonic()
    ok = True
    try:
        seed = 0
        while True:
            report = run_load_test(
                url, args.clients, args.max_tokens, args.disconnect_fraction, prompts, seed=seed
            ).as_dict()
            report["round"] = seed
            rounds.append(report)
            bad = report["num_failed"] + report["num_mismatched"] + report["num_5xx"]
            bad += report["blocks_leaked"] + report["swap_slots_leaked"]
            ok = ok and bad == 0
            if process is not None:
                with httpx.Client() as client:
                    wait_idle(client, url)
                processes = server_processes(process)
                rss.append(
                    {
                        "t_s": round(time.monotonic() - start, 1),
                        "rss_mib": rss_mib(processes),  # the API process and the engine core together
                        "gpu_mib": gpu_memory_mib({p.pid for p in processes}),
                    }
                )
            print(json.dumps({k: v for k, v in report.items() if k != "failures"}), flush=True)
            for failure in report["failures"]:
                print("  ", failure, flush=True)
            seed += 1
            if time.monotonic() - start >= args.soak_seconds:
                break
    finally:
        if server is not None:
            server.stop()
    result = {"command": " ".join(sys.argv), "rounds": rounds, "rss_after_each_round": rss, "ok": ok}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if rss:
        print("RSS MiB after each round:", [round(s["rss_mib"]) for s in rss])
        if any(s["gpu_mib"] is not None for s in rss):
            print("GPU MiB after each round:", [s["gpu_mib"] for s in rss])
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
