"""Benchmarks shipped with the package: ``pagedllm bench throughput`` and ``pagedllm bench kernels``."""
