"""Benchmarks run from the command line: ``pagedllm bench serve`` (online, against the HTTP server)."""
