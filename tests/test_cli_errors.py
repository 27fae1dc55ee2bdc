"""The command line: bad arguments and unreadable files end in one ``error: ...`` line and exit code 2,
never a traceback (each case found in review, session 34)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from model_harness import TINY_CONFIG

from pagedllm.cli import main


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def test_a_directory_given_as_the_prompts_file_is_named(tmp_path, capsys):
    assert main(["generate", "--prompts-file", str(tmp_path)]) == 2
    assert _error_line(capsys) == f"error: [Errno 21] Is a directory: '{tmp_path}'"


def test_serve_refuses_a_port_out_of_range(capsys):
    # It listened on 99999 mod 65536 while its log said 99999.
    assert main(["serve", "--port", "99999"]) == 2
    assert _error_line(capsys) == "error: --port must be in [0, 65535], got 99999"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_device_cuda_on_a_machine_without_cuda_is_named(capsys):
    assert main(["generate", "hi", "--device", "cuda"]) == 2
    assert _error_line(capsys) == "error: device='cuda', but this machine has no CUDA GPU torch can use"


def test_triton_attention_on_the_cpu_is_refused_at_start_up_not_in_the_first_step(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "architectures": ["LlamaForCausalLM"]}))
    argv = ["generate", "--model", str(config), "--load-format", "dummy", "--device", "cpu"]
    argv += ["--attention-backend", "triton", "--max-tokens", "1", "hi"]
    assert main(argv) == 2
    assert _error_line(capsys).startswith("error: attention_backend='triton' runs on CUDA devices, not cpu")


def test_block_sizes_below_one_are_refused_by_the_sizing_commands(capsys):
    for command in (["kv-size", "llama-2-7b"], ["simulate", "--quiet"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--block-size", "0"])
        assert exit_info.value.code == 2
        assert _error_line(capsys).endswith("argument --block-size: must be >= 1, got 0")


def test_bench_serve_without_a_server_says_none_answers(capsys):
    argv = ["bench", "serve", "--base-url", "http://127.0.0.1:9", "--num-prompts", "1"]
    assert main(argv) == 2
    assert _error_line(capsys).startswith("error: no server answers at http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--output-len", "600"], "error: prompt 0 needs 8 + 600 = 608 tokens, more than max_model_len=128"),
        (["--warmup-prompts", "-1"], "error: --warmup-prompts must be >= 0, got -1"),
        (["--peer-batch-size", "0"], "error: --peer-batch-size must be >= 1, got 0"),
    ],
)
def test_bench_throughput_refuses_a_workload_it_cannot_run_before_running_it(
    tmp_path, capsys, options, message
):
    """An output past max_model_len ran the whole workload, then raised RuntimeError (fewer tokens than
    asked); -1 warm-up prompts warmed all but the last; a peer batch of 0 silently became the default."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_CONFIG, "architectures": ["LlamaForCausalLM"]}))
    argv = ["bench", "throughput", "--model", str(config), "--load-format", "dummy", "--device", "cpu"]
    argv += ["--max-model-len", "128", "--num-prompts", "2", "--input-len", "8", "--output-len", "4"]
    assert main([*argv, *options]) == 2
    assert _error_line(capsys).startswith(message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_bench_kernels_without_cuda_says_so_and_points_at_smoke(capsys):
    assert main(["bench", "kernels"]) == 2
    assert _error_line(capsys).startswith("error: bench kernels times the Triton kernels on a CUDA GPU")


def test_generate_on_smollm_shows_the_logprobs_it_was_asked_for(capsys):
    argv = ["generate", "The capital of France is", "--max-tokens", "2", "--logprobs", "2", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(record["logprobs"]) == len(record["token_ids"]) == 2
    for token_id, entry in zip(record["token_ids"], record["logprobs"], strict=True):
        assert next(iter(entry)) == str(token_id)  # the sampled token first, then the top 2
        assert 2 <= len(entry) <= 3 and all(lp <= 0 for lp in entry.values())


def test_serve_with_a_missing_model_prints_one_line_not_the_engines_traceback(tmp_path):
    missing = tmp_path / "no-such-model"
    run = subprocess.run(
        [sys.executable, "-m", "pagedllm.cli", "serve", str(missing), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1] == f"error: model path {missing} does not exist"


def test_generate_chat_and_serve_take_the_engines_memory_graph_and_cache_options(capsys):
    # Found in review: only `bench throughput` had --gpu-memory-utilization, though the KV sizing error
    # tells every user to raise it; --enforce-eager and prefix caching had no flag at all.
    from pagedllm.cli import _engine_kwargs, build_parser

    for command in ("generate", "chat", "serve"):
        argv = [command, "--gpu-memory-utilization", "0.5", "--enforce-eager", "--no-prefix-caching"]
        kwargs = _engine_kwargs(build_parser().parse_args(argv))
        assert (kwargs["gpu_memory_utilization"], kwargs["enforce_eager"]) == (0.5, True)
        assert kwargs["enable_prefix_caching"] is False
    assert main(["generate", "hi", "--gpu-memory-utilization", "1.5"]) == 2
    assert _error_line(capsys) == "error: gpu_memory_utilization must be in (0, 1], got 1.5"
