"""GGUF loading: config and tensors in Hugging Face layout, checked against transformers on the real
SmolLM2 file and against known HF tensors on tiny files we write ourselves."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import gguf
import numpy as np
import pytest
import reference_fixtures
import torch

from pagedllm.model.loader.gguf_loader import GGUFCheckpoint, read_gguf
from pagedllm.model.loader.model_loader import load_model

# pytest finds fixtures by module attribute; these come from the shared session fixtures.
smollm_gguf_path = reference_fixtures.smollm_gguf_path
smollm_checkpoint = reference_fixtures.smollm_checkpoint
hf_smollm_model = reference_fixtures.hf_smollm_model

Q = gguf.GGMLQuantizationType
HIDDEN, NUM_HEADS, NUM_KV_HEADS, INTERMEDIATE, VOCAB, NUM_LAYERS = 64, 4, 2, 96, 80, 2


def llama_cpp_permute(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """What llama.cpp's converter does to q/k rows: each head's halves interleaved into pairs."""
    half = weight.shape[0] // num_heads // 2
    return weight.reshape(num_heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_tiny_gguf(
    path: Path,
    architecture: str = "llama",
    head_dim: int = HIDDEN // NUM_HEADS,
    tie_embeddings: bool = True,
    tensor_type: Q = Q.F32,
    extra_tensors: dict[str, np.ndarray] | None = None,
    rope_scaling: tuple[gguf.RopeScalingType, float] | None = None,
    has_bias: bool | None = None,
) -> dict[str, np.ndarray]:
    """Writes a random tiny model as llama.cpp would and returns the HF state dict it stands for."""
    rng = np.random.default_rng(0)
    has_bias = architecture == "qwen2" if has_bias is None else has_bias
    has_qk_norm = architecture == "qwen3"

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    hf = {"model.embed_tokens.weight": rand(VOCAB, HIDDEN), "model.norm.weight": rand(HIDDEN)}
    file_tensors = {
        "token_embd.weight": hf["model.embed_tokens.weight"],
        "output_norm.weight": hf["model.norm.weight"],
    }
    if not tie_embeddings:
        hf["lm_head.weight"] = file_tensors["output.weight"] = rand(VOCAB, HIDDEN)
    for i in range(NUM_LAYERS):
        layer = {
            "attn_norm.weight": ("input_layernorm.weight", rand(HIDDEN)),
            "ffn_norm.weight": ("post_attention_layernorm.weight", rand(HIDDEN)),
            "attn_q.weight": ("self_attn.q_proj.weight", rand(NUM_HEADS * head_dim, HIDDEN)),
            "attn_k.weight": ("self_attn.k_proj.weight", rand(NUM_KV_HEADS * head_dim, HIDDEN)),
            "attn_v.weight": ("self_attn.v_proj.weight", rand(NUM_KV_HEADS * head_dim, HIDDEN)),
            "attn_output.weight": ("self_attn.o_proj.weight", rand(HIDDEN, NUM_HEADS * head_dim)),
            "ffn_gate.weight": ("mlp.gate_proj.weight", rand(INTERMEDIATE, HIDDEN)),
            "ffn_up.weight": ("mlp.up_proj.weight", rand(INTERMEDIATE, HIDDEN)),
            "ffn_down.weight": ("mlp.down_proj.weight", rand(HIDDEN, INTERMEDIATE)),
        }
        if has_bias:
            layer["attn_q.bias"] = ("self_attn.q_proj.bias", rand(NUM_HEADS * head_dim))
            layer["attn_k.bias"] = ("self_attn.k_proj.bias", rand(NUM_KV_HEADS * head_dim))
            layer["attn_v.bias"] = ("self_attn.v_proj.bias", rand(NUM_KV_HEADS * head_dim))
            if architecture == "llama":  # attention_bias: the output projection's too (Qwen2 has none)
                layer["attn_output.bias"] = ("self_attn.o_proj.bias", rand(HIDDEN))
        if has_qk_norm:
            layer["attn_q_norm.weight"] = ("self_attn.q_norm.weight", rand(head_dim))
            layer["attn_k_norm.weight"] = ("self_attn.k_norm.weight", rand(head_dim))
        for gguf_name, (hf_name, value) in layer.items():
            hf[f"model.layers.{i}.{hf_name}"] = value
            if architecture == "llama" and gguf_name.startswith(("attn_q.", "attn_k.")):
                value = llama_cpp_permute(
                    value, NUM_HEADS if gguf_name.startswith("attn_q.") else NUM_KV_HEADS
                )
            file_tensors[f"blk.{i}.{gguf_name}"] = value
    file_tensors.update(extra_tensors or {})

    writer = gguf.GGUFWriter(path, architecture)
    writer.add_block_count(NUM_LAYERS)
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(NUM_HEADS)
    writer.add_head_count_kv(NUM_KV_HEADS)
    writer.add_key_length(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_eos_token_id(2)
    if rope_scaling is not None:
        writer.add_rope_scaling_type(rope_scaling[0])
        writer.add_rope_scaling_factor(rope_scaling[1])
    for name, value in file_tensors.items():
        if value.ndim == 2 and tensor_type not in (Q.F32, Q.F16):
            writer.add_tensor(name, gguf.quants.quantize(value, tensor_type), raw_dtype=tensor_type)
        elif value.ndim == 2 and tensor_type == Q.F16:
            writer.add_tensor(name, value.astype(np.float16))
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return hf


def test_llama_q_and_k_rows_come_back_in_hf_order(tmp_path: Path) -> None:
    path = tmp_path / "llama.gguf"
    expected = write_tiny_gguf(path)
    ours = dict(read_gguf(path).iter_tensors())
    assert ours.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(ours[name], torch.from_numpy(value)), name


def test_llama_q_and_k_biases_are_reordered_like_their_weights_and_o_proj_keeps_its_own(
    tmp_path: Path,
) -> None:
    # (Found in review: attn_output.bias, which llama.cpp writes for a Llama with attention_bias, was
    # refused as an unsupported tensor.)
    path = tmp_path / "llama-bias.gguf"
    expected = write_tiny_gguf(path, has_bias=True)
    ours = dict(read_gguf(path).iter_tensors())
    assert ours.keys() == expected.keys()
    for name in (
        "model.layers.0.self_attn.q_proj.bias",
        "model.layers.1.self_attn.k_proj.bias",
        "model.layers.1.self_attn.o_proj.bias",
    ):
        assert torch.equal(ours[name], torch.from_numpy(expected[name])), name


def test_qwen2_keeps_qkv_biases_and_leaves_rows_unpermuted(tmp_path: Path) -> None:
    path = tmp_path / "qwen2.gguf"
    expected = write_tiny_gguf(path, architecture="qwen2")
    checkpoint = read_gguf(path)
    ours = dict(checkpoint.iter_tensors())
    assert "model.layers.1.self_attn.k_proj.bias" in ours
    for name, value in expected.items():
        assert torch.equal(ours[name], torch.from_numpy(value)), name
    assert checkpoint.hf_config["architectures"] == ["Qwen2ForCausalLM"]
    assert checkpoint.hf_config["attention_bias"] is True


def test_qwen3_reads_head_dim_from_key_length_and_loads_qk_norms(tmp_path: Path) -> None:
    path = tmp_path / "qwen3.gguf"
    # Qwen3 heads are wider than hidden_size / num_heads; only key_length tells.
    expected = write_tiny_gguf(path, architecture="qwen3", head_dim=32)
    checkpoint = read_gguf(path)
    ours = dict(checkpoint.iter_tensors())
    for name, value in expected.items():
        assert torch.equal(ours[name], torch.from_numpy(value)), name
    assert ours["model.layers.0.self_attn.q_norm.weight"].shape == (32,)
    assert checkpoint.hf_config["head_dim"] == 32
    assert checkpoint.hf_config["model_type"] == "qwen3"


def test_untied_checkpoint_yields_lm_head_and_says_untied(tmp_path: Path) -> None:
    path = tmp_path / "untied.gguf"
    expected = write_tiny_gguf(path, tie_embeddings=False)
    checkpoint = read_gguf(path)
    assert checkpoint.hf_config["tie_word_embeddings"] is False
    assert torch.equal(
        dict(checkpoint.iter_tensors())["lm_head.weight"], torch.from_numpy(expected["lm_head.weight"])
    )


@pytest.mark.parametrize("tensor_type", [Q.F16, Q.Q8_0, Q.Q4_1])
def test_quantized_tensors_dequantize_close_to_the_originals(tmp_path: Path, tensor_type: Q) -> None:
    path = tmp_path / f"{tensor_type.name}.gguf"
    expected = write_tiny_gguf(path, tensor_type=tensor_type)
    # Half a quantization step of each format, for standard-normal weights.
    tolerance = {Q.F16: 2e-3, Q.Q8_0: 3e-2, Q.Q4_1: 0.25}[tensor_type]
    ours = dict(read_gguf(path).iter_tensors())
    for name, value in expected.items():
        assert ours[name].dtype == torch.float32
        assert ours[name].shape == value.shape, name
        assert torch.allclose(ours[name], torch.from_numpy(value), atol=tolerance), name


def test_config_describes_the_tiny_llama(tmp_path: Path) -> None:
    path = tmp_path / "llama.gguf"
    write_tiny_gguf(path, rope_scaling=(gguf.RopeScalingType.LINEAR, 4.0))
    config = read_gguf(path).hf_config
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]) == (64, 96, 2)
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (4, 2, 16)
    assert (config["vocab_size"], config["max_position_embeddings"]) == (VOCAB, 256)
    assert config["rms_norm_eps"] == 1e-6  # float32 in the file, read back as the decimal written
    assert config["rope_scaling"] == {"rope_type": "linear", "factor": 4.0}
    assert config["tie_word_embeddings"] is True
    assert config["eos_token_id"] == 2


def test_smollm_config_and_tensor_names(smollm_checkpoint: GGUFCheckpoint) -> None:
    checkpoint = smollm_checkpoint
    config = checkpoint.hf_config
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["num_hidden_layers"] == 30
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (9, 3, 64)
    assert (config["vocab_size"], config["tie_word_embeddings"], config["eos_token_id"]) == (49152, True, 2)
    assert (config["rope_theta"], config["rms_norm_eps"]) == (100000.0, 1e-5)
    names = checkpoint.tensor_names
    assert len(names) == 2 + 30 * 9 and "lm_head.weight" not in names
    assert "model.layers.29.self_attn.k_proj.weight" in names


def test_streaming_smollm_tensors_never_holds_the_whole_model(smollm_checkpoint: GGUFCheckpoint) -> None:
    checkpoint = smollm_checkpoint
    num_bytes = 0
    tracemalloc.start()
    try:
        for _, tensor in checkpoint.iter_tensors():
            num_bytes += tensor.numel() * tensor.element_size()
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The float32 model is ~540 MB; one dequantized tensor at a time peaks at the embedding (~113 MB).
    assert peak_bytes < num_bytes / 2, (peak_bytes, num_bytes)


@pytest.mark.slow
def test_smollm_tensors_equal_transformers_dequantized_weights(
    smollm_checkpoint: GGUFCheckpoint, hf_smollm_model: torch.nn.Module
) -> None:
    checkpoint = smollm_checkpoint
    reference = hf_smollm_model.state_dict()
    ours = dict(checkpoint.iter_tensors())
    # Tied embeddings: transformers lists the LM head too, as the embedding itself.
    assert set(reference) - set(ours) == {"lm_head.weight"}
    assert set(ours) <= set(reference)
    for name, tensor in ours.items():
        assert tensor.shape == reference[name].shape, name
        assert torch.equal(tensor, reference[name]), name
    hf_config = hf_smollm_model.config
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        assert checkpoint.hf_config[key] == getattr(hf_config, key), key
    for key in ("num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings"):
        assert checkpoint.hf_config[key] == getattr(hf_config, key), key
    assert checkpoint.hf_config["rope_theta"] == hf_config.rope_parameters["rope_theta"]
    assert checkpoint.hf_config["rms_norm_eps"] == pytest.approx(hf_config.rms_norm_eps, rel=1e-6)
    assert checkpoint.hf_config["tie_word_embeddings"] == hf_config.tie_word_embeddings


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError, match=r"nope\.gguf"):
        read_gguf(missing)


def test_truncated_file_raises_value_error_naming_the_path(
    tmp_path: Path,
    smollm_gguf_path: Path,
) -> None:
    truncated = tmp_path / "truncated.gguf"
    with smollm_gguf_path.open("rb") as file:
        truncated.write_bytes(file.read(1 << 20))
    with pytest.raises(ValueError, match=r"truncated\.gguf.*truncated or corrupt"):
        read_gguf(truncated)


def test_file_cut_inside_the_tensor_data_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    write_tiny_gguf(path)
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(ValueError, match=r"cut\.gguf"):
        read_gguf(path)


@pytest.mark.parametrize("content", [b"", b'{"not": "gguf"}', b"GGU"])
def test_non_gguf_file_raises_value_error_naming_the_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"model\.gguf is not a GGUF file"):
        read_gguf(path)


def write_one_tensor_gguf(
    path: Path, architecture: str, name: str, data: np.ndarray, raw_dtype: Q | None
) -> None:
    writer = gguf.GGUFWriter(path, architecture)
    writer.add_block_count(1)
    writer.add_tensor(name, data, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_unsupported_architecture_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gemma.gguf"
    write_one_tensor_gguf(path, "gemma", "token_embd.weight", np.zeros((4, 4), dtype=np.float32), None)
    with pytest.raises(ValueError, match="unsupported GGUF architecture 'gemma'"):
        read_gguf(path)


def test_unsupported_quantization_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "iq.gguf"
    # IQ4_NL: a type the gguf package knows but we do not accept.
    block_size, type_size = gguf.GGML_QUANT_SIZES[Q.IQ4_NL]
    raw = np.zeros((4, HIDDEN // block_size * type_size), dtype=np.uint8)
    write_one_tensor_gguf(path, "llama", "blk.0.ffn_up.weight", raw, Q.IQ4_NL)
    with pytest.raises(ValueError, match=r"'blk\.0\.ffn_up\.weight'.*IQ4_NL"):
        read_gguf(path)


def test_llama3_rope_frequency_tensor_is_rejected_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "llama3.gguf"
    write_tiny_gguf(path, extra_tensors={"rope_freqs.weight": np.ones(8, dtype=np.float32)})
    with pytest.raises(ValueError, match=r"rope_freqs\.weight"):
        read_gguf(path)


def test_a_gguf_file_is_recognized_whatever_the_case_of_its_suffix(tmp_path: Path) -> None:
    # Found in review: "model.GGUF" was refused by the model loader, though the tokenizer took it.
    path = tmp_path / "tiny.GGUF"
    expected = write_tiny_gguf(path)
    model, arch = load_model(path, dtype=torch.float32, device=torch.device("cpu"))
    assert arch.num_hidden_layers == NUM_LAYERS
    weight = dict(model.named_parameters())["model.embed_tokens.weight"]
    assert torch.equal(weight, torch.from_numpy(expected["model.embed_tokens.weight"]))
