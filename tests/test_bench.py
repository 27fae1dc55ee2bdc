"""The benchmark tools on the CPU: workloads, the roofline floor, `pagedllm bench throughput` end to end,
`pagedllm bench kernels --smoke`."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from pagedllm.bench.roofline import Ceilings, ideal_decode_steps, throughput_floor
from pagedllm.bench.workload import parse_range, random_workload, workload_from_file
from pagedllm.cli import main
from pagedllm.model.config import ModelArchConfig

TINY = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "max_position_embeddings": 512,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}


def test_ideal_decode_steps_refill_finished_slots_at_once():
    # Two requests of 3 outputs: the first token comes from prefill, then 2 decode steps of both.
    assert ideal_decode_steps([10, 10], [3, 3], max_num_seqs=4) == (2, 4, 11 + 11 + 12 + 12)
    # One slot: the second request starts when the first is done.
    assert ideal_decode_steps([10, 10], [3, 3], max_num_seqs=1) == (4, 4, 11 + 12 + 11 + 12)


def test_floor_adds_prefill_flops_and_decode_bytes():
    arch = ModelArchConfig.from_hf_dict(TINY)
    ceilings = Ceilings(matmul_flops_per_s=1e12, copy_bytes_per_s=1e11)
    floor = throughput_floor(arch, [100], [11], 8, ceilings, dtype_bytes=2)
    assert floor["decode_steps"] == 10
    assert floor["floor_s"] == pytest.approx(floor["prefill_floor_s"] + floor["decode_floor_s"])
    assert floor["roofline_output_tokens_per_s"] == pytest.approx(11 / floor["floor_s"])


def test_random_workload_lengths_are_fixed_or_uniform_in_range():
    assert parse_range("512") == (512, 512)
    with pytest.raises(ValueError, match="LOW"):
        parse_range("9-3")
    w = random_workload(50, "100-200", "7", vocab_size=1000, seed=1)
    assert all(100 <= n <= 200 for n in w.prompt_lens) and w.output_lens == [7] * 50
    assert w.prompts == random_workload(50, "100-200", "7", vocab_size=1000, seed=1).prompts


def test_dataset_file_lengths_come_from_json_objects_pairs_or_a_csv_with_any_suffix_case(tmp_path):
    as_json = tmp_path / "lengths.json"
    as_json.write_text(json.dumps([{"input_len": 5, "output_len": 2}, [7, 3]]))
    as_csv = tmp_path / "lengths.CSV"  # a spreadsheet's export: upper-case suffix, byte-order mark
    as_csv.write_text("input_len,output_len\n5,2\n7, 3\n", encoding="utf-8-sig")
    for file in (as_json, as_csv):
        workload = workload_from_file(file, vocab_size=1000)
        assert (workload.prompt_lens, workload.output_lens) == ([5, 7], [2, 3]), file


@pytest.mark.parametrize(
    ("suffix", "text", "message"),
    [
        (".json", "[5, 6]", "entry 0 must be"),
        (".json", "[[8]]", "entry 0 must be"),
        (".json", "null", "must hold a JSON list"),
        (".json", '{"input_len": 5, "output_len": 2}', "must hold a JSON list"),
        (".json", '[[5, 2], {"prompt_len": 5, "output_len": 2}]', "entry 1 has no input_len"),
        (".json", "[[8.7, 2]]", "whole numbers >= 1, got 8.7"),
        (".json", "[[true, 2]]", "whole numbers >= 1, got True"),
        (".json", "[[0, 2]]", "whole numbers >= 1, got 0"),
        (".json", "[]", "at least one"),
        (".json", "[[5, 2]", "is not valid JSON"),
        (".csv", "input_len,output_len\n5\n", "row 0 has no output_len"),
        (".csv", "prompt_len,output_len\n5,2\n", "row 0 has no input_len"),
        (".csv", "input_len,output_len\n5,x\n", "whole numbers >= 1, got 'x'"),
    ],
)
def test_a_malformed_dataset_file_names_the_entry_at_fault(tmp_path, suffix, text, message):
    """Each of these was a traceback (TypeError, KeyError, IndexError) or silently cut (8.7 -> 8)."""
    file = tmp_path / f"lengths{suffix}"
    file.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        workload_from_file(file, vocab_size=1000)


def test_results_record_the_commit_of_the_pagedllm_checkout_not_of_the_working_directory(
    tmp_path, monkeypatch
):
    import pathlib

    import pagedllm
    from pagedllm.bench.environment import git_commit

    package = pathlib.Path(pagedllm.__file__).resolve().parent
    expected = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=package
    ).stdout.strip()
    if not expected:
        pytest.skip("pagedllm is not running from a git checkout")
    other = tmp_path / "another-repository"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    subprocess.run(
        ["git", "-C", str(other), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
         "--allow-empty", "-m", "other"],
        check=True,
    )  # fmt: skip
    monkeypatch.chdir(other)
    assert git_commit() == expected


def test_bench_throughput_runs_on_cpu_and_writes_the_json(tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "result.json"
    argv = ["bench", "throughput", "--model", str(config), "--load-format", "dummy", "--device", "cpu"]
    argv += ["--input-len", "8-24", "--output-len", "3-9", "--num-prompts", "6", "--max-num-seqs", "4"]
    argv += ["--warmup-prompts", "1", "--output-json", str(out)]
    assert main(argv) == 0
    assert "Throughput:" in capsys.readouterr().out
    result = json.loads(out.read_text())
    for key in ("model", "workload", "device", "output_tokens_per_s", "roofline_output_tokens_per_s"):
        assert key in result
    assert 0 < result["fraction_of_roofline"] < 1


def test_the_warm_up_leaves_nothing_in_the_prefix_cache_for_the_timed_run(tmp_path):
    from pagedllm import LLM
    from pagedllm.bench.throughput import run_pagedllm

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    llm = LLM(model=str(config), load_format="dummy", device="cpu", max_model_len=128)
    workload = random_workload(4, "48", "2", TINY["vocab_size"])  # three full blocks of 16 per prompt
    kv = llm.engine.scheduler.kv
    assert kv.enable_prefix_caching
    result = run_pagedllm(llm, workload, n=1, warmup_prompts=2)
    assert result["output_tokens"] == 8
    assert kv.num_prefix_hits == 0  # the warm-up's prompts share no block with the timed ones


def test_bench_kernels_smoke_runs_the_decode_launch_it_is_given_and_records_every_row(tmp_path):
    """`bench kernels --smoke` in the CPU interpreter (a process of its own: the interpreter must be chosen
    before Triton's kernels are first imported), with the table's decode launch overridden."""
    out = tmp_path / "kernels.json"
    argv = ["bench", "kernels", "--smoke", "--carry-block-ids", "--decode-block-n", "32", "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "pagedllm.cli", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert not [r for r in rows if r["kernel"] == "error"], "a configuration failed"
    decodes = [r for r in rows if r["kernel"] == "decode"]
    assert decodes, "no decode rows"
    for row in decodes:
        assert row["launch"]["block_n"] == 32 and row["launch"]["carry_block_ids"] is True
        assert row["layout"] == "token-major"  # the engine's cache order on a CPU, read off the cache
        assert row["max_rel_error_vs_sdpa"] < 1e-4  # fp32 in the smoke run
    prefills = [r for r in rows if r["kernel"] == "prefill"]
    assert prefills, "no prefill rows"
    for row in prefills:
        assert row["max_rel_error_vs_sdpa"] < 1e-4
        # GPU time from graph replays beside do_bench's; no graphs on a CPU.
        assert row["ms_graph"] is None and row["sdpa_ms_graph"] is None and row["sdpa_ratio_graph"] is None
