"""Benchmarks shipped with the package: ``pagedllm bench throughput``, ``decode``, ``kernels`` (offline)
and ``serve`` (online, against the HTTP server)."""
