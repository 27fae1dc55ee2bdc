"""The memory simulator: workloads replayed through the real scheduler and KV cache manager, no model.

``pagedllm simulate`` drives it; ``pagedllm.sim.study`` holds the named studies of BENCHMARKS.md.
"""
