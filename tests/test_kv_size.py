"""KV bytes per token from model configs: the numbers the memory study stands on."""

import json
from pathlib import Path

import pytest

from pagedllm.cli import main
from pagedllm.sim.models import (
    PACKAGED_MODELS_DIR,
    SHARED_MODELS_DIR,
    known_model_names,
    kv_size,
    load_model_spec,
    parse_memory_size,
)


def test_llama_2_7b_fp16_costs_exactly_half_a_mebibyte_per_token():
    size = kv_size(load_model_spec("llama-2-7b"), "float16")
    assert size.bytes_per_token == 2 * 32 * 32 * 128 * 2 == 512 * 1024
    assert size.tokens_per_gib == 2048
    assert size.bytes_per_block == 8 * 2**20 and size.blocks_per_gib == 128


@pytest.mark.parametrize(
    ("model", "dtype", "bytes_per_token"),
    [
        ("llama-3.1-8b", "bfloat16", 128 * 1024),  # BENCHMARKS.md's example: GQA with 8 KV heads
        ("llama-3.1-8b", "float32", 256 * 1024),
        ("qwen3-8b", "auto", 2 * 36 * 8 * 128 * 2),  # head_dim from the config, not hidden / heads
        ("smollm2-135m", "float32", 2 * 30 * 3 * 64 * 4),
    ],
)
def test_bytes_per_token_is_two_x_layers_x_kv_heads_x_head_dim_x_dtype(model, dtype, bytes_per_token):
    assert kv_size(load_model_spec(model), dtype).bytes_per_token == bytes_per_token


def test_auto_dtype_is_the_checkpoints():
    assert kv_size(load_model_spec("llama-2-7b")).dtype == "bfloat16"


def test_a_config_json_path_works_like_a_name(tmp_path):
    source = load_model_spec("llama-2-7b").source
    (tmp_path / "config.json").write_bytes(Path(source).read_bytes())
    assert kv_size(load_model_spec(str(tmp_path)), "fp16").bytes_per_token == 512 * 1024


def test_unknown_model_and_dtype_are_named_errors():
    with pytest.raises(ValueError, match=r"known: .*llama-2-7b"):
        load_model_spec("gpt-5")
    with pytest.raises(ValueError, match="dtype"):
        kv_size(load_model_spec("llama-2-7b"), "int3")


def test_packaged_model_configs_are_the_shared_ones():
    shared = sorted(p.name for p in SHARED_MODELS_DIR.glob("*.json"))
    if not shared:
        pytest.skip(f"{SHARED_MODELS_DIR} is not present in this checkout")
    for name in shared:
        assert json.loads((PACKAGED_MODELS_DIR / name).read_text()) == json.loads(
            (SHARED_MODELS_DIR / name).read_text()
        ), name
    assert {n.removesuffix(".json") for n in shared} <= set(known_model_names())


@pytest.mark.parametrize(
    ("text", "num_bytes"),
    [
        ("16GiB", 16 * 2**30),
        ("512MiB", 512 * 2**20),
        ("2.5GB", 2_500_000_000),
        ("1e9", 10**9),
        ("4096", 4096),
    ],
)
def test_memory_sizes_parse_with_binary_and_decimal_units(text, num_bytes):
    assert parse_memory_size(text) == num_bytes


def test_kv_size_cli_prints_the_table_and_json(capsys):
    assert main(["kv-size", "llama-2-7b", "--dtype", "float16"]) == 0
    out = capsys.readouterr().out
    assert "| llama-2-7b | float16 |" in out and "| 524288 | 512 KiB | 2048 |" in out
    assert main(["kv-size", "llama-2-7b", "llama-3.1-8b", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["bytes_per_token"] for r in rows] == [512 * 1024, 128 * 1024]


def test_a_gguf_file_is_sized_from_its_metadata_and_other_files_are_named(tmp_path):
    # Found in review: a .gguf path failed with a raw "'utf-8' codec can't decode" message.
    from pagedllm.model.default_model import default_model_path

    size = kv_size(load_model_spec(str(default_model_path())), "bfloat16")  # SmolLM2-135M
    assert (size.num_layers, size.num_kv_heads, size.head_dim) == (30, 3, 64)
    assert size.bytes_per_token == 2 * 30 * 3 * 64 * 2
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match=r"weights.bin is not a JSON config"):
        load_model_spec(str(binary))
