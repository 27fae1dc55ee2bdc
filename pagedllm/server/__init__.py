"""The OpenAI-compatible HTTP server: ``pagedllm serve`` (FastAPI on uvicorn) over the async engine."""
