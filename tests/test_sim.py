"""The simulator: workloads through the real scheduler and KV cache manager, per-step accounting, the CLI."""

import json
import subprocess
import sys

import pytest

from pagedllm.cli import main
from pagedllm.report.markdown import pool_size
from pagedllm.sim.simulator import SimConfig, simulate
from pagedllm.sim.study import (
    CONTIGUOUS,
    PAGED,
    PAGED_NO_PREFIX_CACHE,
    derived_metrics,
    sustains,
    variants_for,
)
from pagedllm.sim.workloads import (
    SimRequest,
    Workload,
    load_trace,
    save_trace,
    shared_prefix,
    synthetic_trace,
)


def trace(*requests: tuple[int, int, float]) -> Workload:
    return Workload("trace", "test", tuple(SimRequest(p, o, t) for p, o, t in requests))


def test_every_sample_splits_the_held_blocks_into_tokens_tails_and_reservation():
    workload = synthetic_trace(200, request_rate=50.0)
    for policy in ("paged", "contiguous"):
        run = simulate(
            workload, SimConfig(num_blocks=400, block_size=16, max_model_len=2048, kv_policy=policy)
        )
        assert run.summary.num_finished == 200
        for sample in run.samples:
            assert sample.num_allocated_slots == sample.num_used_blocks * 16
            assert sample.num_token_slots <= sample.num_allocated_slots
        if policy == "paged":
            assert run.summary.num_preemptions > 0  # a tight pool: preemption is part of what is replayed
            assert all(s.num_reserved_slots == 0 for s in run.samples)
        else:
            assert run.summary.num_preemptions == 0
            assert run.summary.peak_running == 400 // 128


def test_a_run_is_deterministic():
    workload = synthetic_trace(100, request_rate=30.0, seed=3)
    config = SimConfig(num_blocks=150, max_model_len=1024, enable_prefix_caching=True)
    first, second = simulate(workload, config).to_dict(), simulate(workload, config).to_dict()
    first.pop("wall_seconds"), second.pop("wall_seconds")
    assert first == second


def test_requests_wait_for_their_arrival_time_and_idle_gaps_are_skipped():
    # One step lasts 10 ms + 0.1 ms per token: the second request arrives long after the first is done.
    run = simulate(trace((8, 3, 0.0), (8, 3, 100.0)), SimConfig(num_blocks=64, max_model_len=256))
    assert [s.num_running for s in run.samples] == [1, 1, 1, 1, 1, 1]
    assert run.samples[3].time >= 100.0
    assert run.summary.num_finished == 2


def test_requests_that_can_never_fit_are_counted_as_rejected():
    run = simulate(trace((300, 5, 0.0), (10, 5, 0.0)), SimConfig(num_blocks=64, max_model_len=256))
    assert run.num_rejected == 1 and run.summary.num_finished == 1


def test_responses_are_capped_at_max_model_len_like_the_engine():
    run = simulate(trace((200, 500, 0.0)), SimConfig(num_blocks=64, max_model_len=256))
    assert run.recorder.num_full_length_tokens == 255  # prompt + 56 responses; the last is never cached


def test_shared_prefix_saves_most_of_the_system_prompts_memory_only_with_the_prefix_cache():
    workload = shared_prefix(10)
    config = SimConfig(num_blocks=2048)
    saved = {
        v.name: derived_metrics(simulate(workload, v.apply(config)))["prefix_memory_saved"]
        for v in (CONTIGUOUS, PAGED_NO_PREFIX_CACHE, PAGED)
    }
    # 12 of the prompt's 12.5 blocks are full and shared by the 9 later requests: 9 * 12 * 16 / 2000.
    assert saved == {"contiguous": 0.0, "paged-no-prefix-cache": 0.0, "paged": pytest.approx(0.864)}


def test_shared_prefix_block_map_marks_the_shared_blocks():
    run = simulate(shared_prefix(10), PAGED.apply(SimConfig(num_blocks=256)), block_map_step="peak")
    block_map = run.block_map
    assert block_map is not None
    shared = [h for h in block_map.num_holders if h > 1]
    assert shared == [run.samples[block_map.step].num_running] * 12  # the prompt's 12 full blocks
    assert sum(o >= 0 for o in block_map.owner) == run.samples[block_map.step].num_used_blocks


def test_traces_load_from_json_and_csv_and_round_trip(tmp_path):
    workload = synthetic_trace(50, seed=7)
    for suffix in (".json", ".csv"):
        path = tmp_path / f"trace{suffix}"
        save_trace(workload, path)
        assert load_trace(path).requests == workload.requests
    (tmp_path / "alt.json").write_text(json.dumps([{"prompt_tokens": 5, "max_tokens": 2}]))
    assert load_trace(tmp_path / "alt.json").requests == (SimRequest(5, 2, 0.0),)
    (tmp_path / "bad.csv").write_text("prompt_len,output_len\n5,x\n")
    with pytest.raises(ValueError, match="request 0"):
        load_trace(tmp_path / "bad.csv")


def test_simulate_cli_writes_json_and_markdown_for_a_trace(tmp_path, capsys):
    path = tmp_path / "trace.csv"
    save_trace(synthetic_trace(40, seed=1), path)
    out_json, out_md = tmp_path / "report.json", tmp_path / "report.md"
    argv = [
        "simulate",
        "--workload",
        str(path),
        "--model",
        "llama-3.2-1b",
        "--kv-memory",
        "64MiB",
        "--json",
        str(out_json),
        "--markdown",
        str(out_md),
        "--quiet",
    ]
    assert main(argv) == 0
    report = json.loads(out_json.read_text())
    assert report["pool"]["num_blocks"] == 64 * 2**20 // (16 * 32 * 1024)
    assert [r["variant"] for r in report["runs"]] == ["contiguous", "paged"]
    for run in report["runs"]:
        assert run["summary"]["num_finished"] == 40
        assert len(run["steps"]["utilization"]) == run["summary"]["num_steps"]
        assert run["block_map"]["step"] < run["summary"]["num_steps"]
    assert report["command"].startswith("pagedllm simulate --workload")
    assert out_md.read_text() in capsys.readouterr().out
    assert "| trace trace.csv | paged |" in out_md.read_text()


def test_simulate_cli_rejects_a_pool_smaller_than_one_sequence(capsys):
    assert main(["simulate", "--num-blocks", "4", "--quiet"]) == 2
    assert "max_model_len=2048 does not fit" in capsys.readouterr().err


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("empty-object.json", "{}", 'expected a list of requests or {"requests": [...]}'),
        ("no-list.json", '{"requests": 5}', 'expected a list of requests or {"requests": [...]}'),
        ("inf.csv", "prompt_len,output_len\n10,5\ninf,5\n", "request 1: prompt_len='inf' is not a finite"),
        ("nan.csv", "prompt_len,output_len\nnan,5\n", "request 0: prompt_len='nan' is not a finite number"),
        ("huge.json", '[{"prompt_len": 1' + "0" * 400 + ', "output_len": 5}]', "is not a finite number"),
        ("bool.json", '[{"prompt_len": true, "output_len": 3}]', "prompt_len=True is not a number"),
        ("half.json", '[{"prompt_len": 2.5, "output_len": 3}]', "prompt_len=2.5 is not a whole number"),
        ("broken.json", "{bad", "is not valid JSON"),
    ],
)
def test_a_bad_trace_is_one_error_line_naming_the_file_and_request(tmp_path, capsys, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    assert main(["simulate", "--workload", str(path), "--quiet"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: {path}") and problem in line, line


def test_a_csv_trace_saved_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("prompt_len,output_len\n10,5\n".encode("utf-8-sig"))
    assert load_trace(path).requests == (SimRequest(10, 5, 0.0),)


@pytest.mark.parametrize("rate", ["0", "-1", "nan"])
def test_a_request_rate_that_is_not_positive_is_refused_naming_the_flag(capsys, rate):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--workload", "synthetic", "--num-requests", "5", "--request-rate", rate])
    assert exit_info.value.code == 2
    assert _error_line(capsys).endswith(
        f"argument --request-rate: must be > 0 requests per second (inf: all at once), got {rate}"
    )


def test_a_request_rate_of_inf_sends_every_request_at_once_as_in_vllm():
    workload = synthetic_trace(20, request_rate=float("inf"))
    assert {r.arrival_time for r in workload.requests} == {0.0}
    with pytest.raises(ValueError, match="request_rate must be > 0"):
        synthetic_trace(20, request_rate=0.0)


def test_a_kv_memory_beyond_floats_range_is_refused_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--kv-memory", "1e400"])
    assert exit_info.value.code == 2
    assert _error_line(capsys).endswith("argument --kv-memory: memory size '1e400' is too large")


def test_the_report_gives_the_pool_it_holds_and_names_the_size_asked_for(tmp_path, capsys):
    path = tmp_path / "trace.csv"
    path.write_text("prompt_len,output_len\n10,5\n")
    out_json = tmp_path / "report.json"
    argv = ["simulate", "--workload", str(path), "--kv-memory", "1.99GiB", "--json", str(out_json), "--quiet"]
    assert main(argv) == 0
    pool = json.loads(out_json.read_text())["pool"]
    # llama-2-7b: 8 MiB blocks, so 1.99 GiB holds 254 of them: 1.98 GiB.
    assert pool["num_blocks"] == 254 and pool["kv_memory_bytes"] == 254 * 8 * 2**20
    assert pool["kv_memory_bytes_requested"] == int(1.99 * 2**30)
    assert "KV pool 254 blocks of 16 tokens (1.98 GiB; 1.99 GiB asked for)." in capsys.readouterr().out


def test_rejected_requests_are_reported_in_the_markdown_the_json_and_a_warning(tmp_path, capsys):
    path = tmp_path / "long.csv"
    path.write_text("prompt_len,output_len\n300,5\n10,5\n")
    out_json = tmp_path / "report.json"
    argv = ["simulate", "--workload", str(path), "--max-model-len", "256", "--json", str(out_json), "--quiet"]
    assert main(argv) == 0
    line = "trace long.csv: 1 of 2 requests rejected (a prompt of max_model_len=256 tokens or more"
    captured = capsys.readouterr()
    assert f"warning: {line}" in captured.err
    assert f"**Rejected**: {line}" in captured.out
    assert "| trace long.csv | paged | 2 | 1 |" in captured.out  # requests, rejected
    runs = json.loads(out_json.read_text())["runs"]
    assert [(r["num_requests"], r["num_rejected"], r["summary"]["num_finished"]) for r in runs] == [
        (2, 1, 1)
    ] * 2


def test_seed_memory_refuses_a_max_model_len_that_would_reject_or_cut_its_sequences(capsys):
    # It rejected half of each batch and still called the table "batch 10" and the largest batch 1.
    assert main(["simulate", "--batch-sizes", "10", "--max-model-len", "256", "--quiet"]) == 2
    assert _error_line(capsys).startswith(
        "error: seed-memory sequences reach 999 tokens: max_model_len must be >= 1000, got 256"
    )


def test_a_batch_with_a_rejected_request_is_not_sustained():
    run = simulate(trace((300, 5, 0.0), (10, 5, 0.0)), SimConfig(num_blocks=64, max_model_len=256))
    assert not sustains(run)


def test_a_shared_prefix_run_whose_prompts_are_all_rejected_reports_no_saving_instead_of_failing(capsys):
    run = simulate(shared_prefix(3), PAGED.apply(SimConfig(num_blocks=64, max_model_len=150)))
    assert run.num_rejected == 3 and not run.samples
    assert derived_metrics(run) == {}
    argv = ["simulate", "--workload", "shared-prefix", "--num-requests", "3", "--max-model-len", "150"]
    assert main([*argv, "--quiet"]) == 0


def test_a_run_without_a_step_has_the_whole_pool_free():
    summary = simulate(trace((300, 5, 0.0)), SimConfig(num_blocks=64, max_model_len=256)).summary
    assert summary.num_steps == 0 and summary.pool_free_fraction == 1.0
    parts = ("token", "tail", "reserved", "other", "free")
    assert sum(getattr(summary, f"pool_{part}_fraction") for part in parts) == 1.0


def test_a_prompt_of_a_billion_tokens_is_rejected_without_building_its_token_list(tmp_path):
    # It built the 10^9-token prompt before the max_model_len check: a MemoryError under 3 GB.
    path = tmp_path / "huge.csv"
    path.write_text("prompt_len,output_len\n1000000000,5\n10,5\n")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))\n"
        "from pagedllm.sim.simulator import SimConfig, simulate\n"
        "from pagedllm.sim.workloads import load_trace\n"
        f"run = simulate(load_trace({str(path)!r}), SimConfig(num_blocks=256))\n"
        "print(run.num_rejected, run.summary.num_finished)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "1"]


def test_no_prefix_caching_runs_shared_prefix_without_the_prefix_cache():
    # The shared-prefix study added paging with the prefix cache even when --no-prefix-caching was given.
    policies = ["contiguous", "paged"]
    assert variants_for(policies, False, "shared-prefix") == [CONTIGUOUS, PAGED_NO_PREFIX_CACHE]
    assert variants_for(policies, True, "shared-prefix") == [CONTIGUOUS, PAGED_NO_PREFIX_CACHE, PAGED]


def test_the_pool_size_asked_for_is_left_out_where_it_rounds_to_the_pools():
    # 16 GiB of qwen2.5-0.5b holds 87,381 whole blocks, 188 KiB short: the header said "16.00 GiB; 16 GiB".
    pool = {"num_blocks": 87381, "kv_memory_bytes": 87381 * 196608, "kv_memory_bytes_requested": 2**34}
    assert pool_size(pool) == "16.00 GiB"


def test_a_block_map_step_past_a_run_is_a_warning_and_a_negative_one_an_error(capsys):
    """Past the last step the picture was silently left out; a negative step matched nothing either."""
    argv = ["simulate", "--workload", "shared-prefix", "--num-requests", "3", "--num-blocks", "256"]
    argv += ["--kv-policy", "paged", "--no-prefix-caching", "--quiet"]
    assert main([*argv, "--block-map-step", "5000"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no block map, --block-map-step=5000 is past its" in warnings[0]
    assert main([*argv, "--block-map-step", "-2"]) == 2
    assert capsys.readouterr().err.strip().endswith("give a step index (>= 0), 'peak' or 'none'")


@pytest.mark.parametrize("pool", [["--num-blocks", "100000000000"], ["--kv-memory", "1e300"]])
def test_a_pool_past_what_the_simulator_models_is_refused_before_it_is_built(capsys, pool):
    """10^11 blocks was a MemoryError traceback after minutes of building Python objects."""
    assert main(["simulate", *pool, "--quiet"]) == 2
    assert "is more than the simulator models (4,194,304" in capsys.readouterr().err
