"""load_model: checkpoint layouts, dummy weights, the GGUF hand-off, weight loaders, and clear errors."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from model_harness import build_hf_model, prompt_logits, save_hf_model
from safetensors.torch import load_file, save_file

from pagedllm.model.config import ModelArchConfig
from pagedllm.model.layers import (
    MergedColumnParallelLinear,
    ParallelLMHead,
    QKVParallelLinear,
    RowParallelLinear,
    VocabParallelEmbedding,
)
from pagedllm.model.loader import load_model
from pagedllm.model.models import LlamaForCausalLM

CPU = torch.device("cpu")
SHARED_MODELS = Path(__file__).parents[2] / "shared" / "models"


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_hf_model(build_hf_model("LlamaForCausalLM"), tmp_path_factory.mktemp("llama"))


def _load(source: object, **kwargs: object) -> tuple[torch.nn.Module, ModelArchConfig]:
    return load_model(source, dtype=torch.float32, device=CPU, **kwargs)  # type: ignore[arg-type]


def _state_dicts_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _copy_checkpoint(src: Path, dst: Path, tensors: dict[str, torch.Tensor]) -> Path:
    dst.mkdir()
    (dst / "config.json").write_text((src / "config.json").read_text())
    save_file(tensors, str(dst / "model.safetensors"))
    return dst


# --- checkpoint layouts -------------------------------------------------------------------------------


def test_sharded_checkpoint_with_index_loads_the_same_weights(llama_dir: Path, tmp_path: Path) -> None:
    hf_model = build_hf_model("LlamaForCausalLM")
    save_hf_model(hf_model, tmp_path, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 1
    sharded, _ = _load(tmp_path)
    single, _ = _load(llama_dir)
    assert _state_dicts_equal(sharded, single)


def test_loaded_model_is_in_eval_mode_without_gradients(llama_dir: Path) -> None:
    model, cfg = _load(llama_dir)
    assert isinstance(model, LlamaForCausalLM)
    assert cfg.architectures == ("LlamaForCausalLM",)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_model_is_built_in_the_requested_dtype_and_default_dtype_is_restored(llama_dir: Path) -> None:
    model, _ = load_model(llama_dir, dtype=torch.float16, device=CPU)
    assert {p.dtype for p in model.parameters()} == {torch.float16}
    assert torch.get_default_dtype() == torch.float32


def test_tied_checkpoint_that_also_stores_lm_head_loads(tmp_path: Path) -> None:
    src = save_hf_model(build_hf_model("Qwen2ForCausalLM", tie_word_embeddings=True), tmp_path / "src")
    tensors = load_file(str(src / "model.safetensors"))
    assert "lm_head.weight" not in tensors
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    model, _ = _load(_copy_checkpoint(src, tmp_path / "dst", tensors))
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_checkpoint_with_legacy_rotary_inv_freq_loads(llama_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(str(llama_dir / "model.safetensors"))
    tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    _load(_copy_checkpoint(llama_dir, tmp_path / "ckpt", tensors))


# --- dummy weights ------------------------------------------------------------------------------------


def test_dummy_weights_are_deterministic_by_seed() -> None:
    config = json.loads((SHARED_MODELS / "qwen3-0.6b.json").read_text())
    tiny = {**config, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 256}
    tiny.update(num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64)
    a, _ = _load(tiny, load_format="dummy", seed=7)
    b, _ = _load(tiny, load_format="dummy", seed=7)
    c, _ = _load(tiny, load_format="dummy", seed=8)
    assert _state_dicts_equal(a, b)
    assert not _state_dicts_equal(a, c)
    assert torch.all(a.model.norm.weight == 1)
    assert 0.01 < a.model.layers[0].mlp.down_proj.weight.std().item() < 0.03


def test_dummy_model_from_config_json_path_produces_finite_logits(llama_dir: Path) -> None:
    model, cfg = _load(llama_dir / "config.json", load_format="dummy")
    logits = prompt_logits(model, cfg, [1, 2, 3, 4, 5])
    assert logits.shape == (5, cfg.vocab_size)
    assert torch.isfinite(logits).all()


def test_dummy_format_on_a_checkpoint_directory_ignores_its_weights(llama_dir: Path) -> None:
    dummy, _ = _load(llama_dir, load_format="dummy")
    real, _ = _load(llama_dir)
    assert not _state_dicts_equal(dummy, real)


# --- GGUF hand-off ------------------------------------------------------------------------------------


def test_gguf_file_loads_through_read_gguf(
    llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GGUF reader's contract: ``read_gguf(path)`` has ``.hf_config`` and ``.iter_tensors()``."""
    hf_config = json.loads((llama_dir / "config.json").read_text())
    tensors = load_file(str(llama_dir / "model.safetensors"))
    seen: list[Path] = []

    class FakeGGUF:
        def __init__(self, path: Path) -> None:
            seen.append(Path(path))
            self.hf_config = hf_config

        def iter_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
            return iter(tensors.items())

    fake_module = types.ModuleType("pagedllm.model.loader.gguf_loader")
    fake_module.read_gguf = FakeGGUF  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pagedllm.model.loader.gguf_loader", fake_module)
    gguf_path = tmp_path / "tiny.gguf"
    gguf_path.write_bytes(b"GGUF")
    from_gguf, _ = _load(gguf_path)
    from_safetensors, _ = _load(llama_dir)
    assert seen == [gguf_path]
    assert _state_dicts_equal(from_gguf, from_safetensors)


# --- errors -------------------------------------------------------------------------------------------


def test_missing_path_raises_file_not_found_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        _load(tmp_path / "nowhere")


def test_directory_without_config_json_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        _load(tmp_path)


def test_directory_without_safetensors_is_rejected(llama_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((llama_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match=r"no \*\.safetensors files"):
        _load(tmp_path)


def test_index_naming_a_missing_shard_is_rejected(llama_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((llama_dir / "config.json").read_text())
    index = {"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(FileNotFoundError, match="model-00001-of-00002"):
        _load(tmp_path)


def test_unknown_architecture_lists_the_supported_ones(llama_dir: Path, tmp_path: Path) -> None:
    config = json.loads((llama_dir / "config.json").read_text())
    config["architectures"] = ["GPTNeoXForCausalLM"]
    with pytest.raises(ValueError, match=r"GPTNeoXForCausalLM.*supported: LlamaForCausalLM, Mistral"):
        _load(config, load_format="dummy")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_safetensors_file_is_named_in_the_error(llama_dir: Path, tmp_path: Path, damage: str) -> None:
    (tmp_path / "config.json").write_text((llama_dir / "config.json").read_text())
    data = (llama_dir / "model.safetensors").read_bytes()
    broken = b"\x00not a safetensors file at all" if damage == "garbage" else data[: len(data) // 2]
    (tmp_path / "model.safetensors").write_bytes(broken)
    with pytest.raises(ValueError, match=r"corrupt safetensors file .*model\.safetensors"):
        _load(tmp_path)


def test_missing_tensor_is_named(llama_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(str(llama_dir / "model.safetensors"))
    del tensors["model.layers.1.self_attn.k_proj.weight"]
    del tensors["model.layers.0.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match=r"lacks 2 tensor.*model\.layers\.0\.mlp\.up_proj\.weight.*k_proj"):
        _load(_copy_checkpoint(llama_dir, tmp_path / "ckpt", tensors))


def test_unexpected_tensor_is_named(llama_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(str(llama_dir / "model.safetensors"))
    tensors["model.layers.0.mlp.extra_proj.weight"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"unexpected tensor 'model\.layers\.0\.mlp\.extra_proj\.weight'"):
        _load(_copy_checkpoint(llama_dir, tmp_path / "ckpt", tensors))


def test_shape_mismatch_names_the_tensor_and_both_shapes(llama_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(str(llama_dir / "model.safetensors"))
    tensors["model.layers.0.self_attn.v_proj.weight"] = torch.zeros(16, 64)  # model expects (32, 64)
    with pytest.raises(ValueError, match=r"v_proj\.weight.*\(16, 64\).*\(32, 64\)"):
        _load(_copy_checkpoint(llama_dir, tmp_path / "ckpt", tensors))


def test_config_dict_without_dummy_format_is_rejected(llama_dir: Path) -> None:
    config = json.loads((llama_dir / "config.json").read_text())
    with pytest.raises(ValueError, match="load_format='dummy'"):
        _load(config)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"load_format": "pt"}, "load_format='pt'"), ({"dtype": torch.int8}, "dtype=torch.int8")],
)
def test_bad_load_format_or_dtype_is_rejected(
    llama_dir: Path, kwargs: dict[str, object], message: str
) -> None:
    options: dict[str, object] = {"dtype": torch.float32, "device": CPU, **kwargs}
    with pytest.raises(ValueError, match=message):
        load_model(llama_dir, **options)  # type: ignore[arg-type]


def test_sliding_window_model_is_rejected(llama_dir: Path) -> None:
    config = json.loads((llama_dir / "config.json").read_text())
    config.update(architectures=["MistralForCausalLM"], sliding_window=16)
    with pytest.raises(ValueError, match="sliding_window=16"):
        _load(config, load_format="dummy")


# --- tensor-parallel weight loaders (two ranks simulated in one process) ------------------------------


def _shards(make: type, *args: object, **kwargs: object) -> list[torch.nn.Module]:
    return [make(*args, **kwargs, tp_size=2, tp_rank=rank) for rank in range(2)]


def test_column_then_row_shards_sum_to_the_unsharded_mlp() -> None:
    torch.manual_seed(0)
    gate, up, down = torch.randn(12, 8), torch.randn(12, 8), torch.randn(8, 12)
    down_bias = torch.randn(8)
    x = torch.randn(3, 8)
    expected = F.linear(F.silu(x @ gate.T) * (x @ up.T), down, down_bias)
    total = torch.zeros(3, 8)
    gate_ups = _shards(MergedColumnParallelLinear, 8, [12, 12])
    downs = _shards(RowParallelLinear, 12, 8, bias=True, reduce_results=False)
    for gate_up, row in zip(gate_ups, downs, strict=True):
        gate_up.weight.weight_loader(gate_up.weight, gate, 0)
        gate_up.weight.weight_loader(gate_up.weight, up, 1)
        row.weight.weight_loader(row.weight, down, None)
        row.bias.weight_loader(row.bias, down_bias, None)
        g, u = gate_up(x).chunk(2, dim=-1)  # this rank's halves of gate and up
        total += row(F.silu(g) * u)
    torch.testing.assert_close(total, expected)


def test_qkv_shards_split_query_heads_and_replicate_a_single_kv_head() -> None:
    q, k, v = torch.randn(4 * 2, 6), torch.randn(1 * 2, 6), torch.randn(1 * 2, 6)  # 4 q heads, 1 kv head
    ranks = _shards(QKVParallelLinear, 6, 2, 4, 1)
    for layer in ranks:
        for shard_id, tensor in (("q", q), ("k", k), ("v", v)):
            layer.weight.weight_loader(layer.weight, tensor, shard_id)
    assert [layer.num_heads for layer in ranks] == [2, 2]
    assert [layer.num_kv_heads for layer in ranks] == [1, 1]
    torch.testing.assert_close(torch.cat([r.weight[:4] for r in ranks]), q)
    for layer in ranks:
        torch.testing.assert_close(layer.weight[4:6], k)
        torch.testing.assert_close(layer.weight[6:8], v)


def test_vocab_shards_pad_the_last_rank_and_cover_the_vocabulary() -> None:
    table = torch.randn(5, 3)
    embeddings = _shards(VocabParallelEmbedding, 5, 3)
    heads = _shards(ParallelLMHead, 5, 3)
    for layer in [*embeddings, *heads]:
        layer.weight.weight_loader(layer.weight, table, None)
    assert [e.weight.shape[0] for e in embeddings] == [3, 3]
    torch.testing.assert_close(torch.cat([e.weight for e in embeddings])[:5], table)
    assert torch.all(embeddings[1].weight[2] == 0)  # the padding row
