"""Session 31: the host's per-step work for a 256-row decode step, without a GPU.

Drives the real ``Scheduler`` as the async engine does for the Llama-3.2-1B workload's shape (256
requests x (512 in, 128 out), block size 16, prefix caching on): ``schedule_ahead`` of each step, the
graph path's input packing (``DecodeInputPacker``; its arrays in ordinary memory) and
``update_from_output`` of the step before, with a fixed token for every request. Prints the mean time of
each part over the steps that ran all 256 rows.

``python3 session31_host_decode_bench.py``
"""

from __future__ import annotations

import random
import time

from pagedllm.core import KVCacheManager, Request, Scheduler, SchedulerConfig, StopCriteria
from pagedllm.worker.decode_inputs import DecodeInputPacker


def main(prefix_caching: bool) -> None:
    num_requests, prompt_len, output_len, block_size = 256, 512, 128, 16
    config = SchedulerConfig(max_num_seqs=num_requests, max_num_batched_tokens=16384, max_model_len=2048)
    scheduler = Scheduler(config, KVCacheManager(20000, block_size, enable_prefix_caching=prefix_caching))
    packer = DecodeInputPacker(num_requests, 2048 // block_size, block_size, pin_memory=False)
    rng = random.Random(0)
    for i in range(num_requests):
        prompt = [rng.randrange(50000) for _ in range(prompt_len)]
        scheduler.add_request(Request(f"r{i}", prompt, StopCriteria(max_tokens=output_len)))
    in_flight = scheduler.schedule()
    totals = [0.0, 0.0, 0.0]
    steps = 0
    while scheduler.has_unfinished_requests():
        t0 = time.perf_counter()
        ahead = scheduler.schedule_ahead(in_flight)
        t1 = time.perf_counter()
        if ahead is not None:
            packer.pack(ahead.scheduled, num_requests)
        t2 = time.perf_counter()
        scheduler.update_from_output(
            in_flight, {s.request_id: 5 for s in in_flight.scheduled if s.needs_sample}
        )
        t3 = time.perf_counter()
        if ahead is not None and len(ahead.scheduled) == num_requests:
            for i, dt in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                totals[i] += dt
            steps += 1
        in_flight = ahead if ahead is not None else scheduler.schedule()
    us = [f"{t / steps * 1e6:.0f} us" for t in totals]
    print(
        f"prefix caching {prefix_caching}, {steps} steps of 256 rows: schedule_ahead {us[0]}, pack {us[1]}, "
        f"update_from_output {us[2]}"
    )


if __name__ == "__main__":
    for prefix_caching in (True, True, False):
        main(prefix_caching)
