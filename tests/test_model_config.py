"""Parsing Hugging Face config.json into ModelArchConfig: both rope formats, defaults, validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pagedllm.model.config import ModelArchConfig, RopeScaling, kv_bytes_per_token
from pagedllm.model.models import get_model_class

SHARED_MODELS = Path(__file__).parents[2] / "shared" / "models"
REAL_CONFIGS = sorted(SHARED_MODELS.glob("*.json"))


def _real(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((SHARED_MODELS / f"{name}.json").read_text())
    return result


def _tiny(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 256,
        "max_position_embeddings": 128,
    }
    return {**base, **overrides}


def test_shared_model_configs_exist() -> None:
    assert len(REAL_CONFIGS) >= 8, f"expected the real configs under {SHARED_MODELS}"


@pytest.mark.parametrize("path", REAL_CONFIGS, ids=lambda p: p.stem)
def test_every_real_config_parses_and_has_a_model_class(path: Path) -> None:
    raw = json.loads(path.read_text())
    cfg = ModelArchConfig.from_hf_dict(raw)
    assert cfg.hidden_size == raw["hidden_size"]
    assert cfg.num_key_value_heads == raw["num_key_value_heads"]
    assert cfg.head_dim == raw.get("head_dim", raw["hidden_size"] // raw["num_attention_heads"])
    assert cfg.dtype == "bfloat16"
    assert get_model_class(list(cfg.architectures)) is not None


def test_llama2_7b_kv_cache_costs_512_kib_per_token_in_fp16() -> None:
    cfg = ModelArchConfig.from_hf_dict(_real("llama-2-7b"))
    assert kv_bytes_per_token(cfg, dtype_bytes=2) == 524288


def test_gqa_shrinks_kv_bytes_by_the_group_factor() -> None:
    cfg = ModelArchConfig.from_hf_dict(_real("llama-3.1-8b"))  # 32 query heads, 8 KV heads
    assert kv_bytes_per_token(cfg, dtype_bytes=2) == 524288 // 4


def test_llama31_old_style_rope_scaling_parses_to_llama3() -> None:
    cfg = ModelArchConfig.from_hf_dict(_real("llama-3.1-8b"))
    assert cfg.rope_theta == 500000.0
    assert cfg.rope_scaling == RopeScaling("llama3", 8.0, 1.0, 4.0, 8192)
    assert cfg.eos_token_ids == (128001, 128008, 128009)


def test_transformers5_rope_parameters_parse_like_the_old_keys() -> None:
    scaling = {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    old = _tiny(rope_theta=500000.0, rope_scaling={"rope_type": "llama3", **scaling})
    new = _tiny(rope_parameters={"rope_theta": 500000.0, "rope_type": "llama3", **scaling})
    assert ModelArchConfig.from_hf_dict(old) == ModelArchConfig.from_hf_dict(new)


def test_rope_scaling_keyed_type_is_accepted() -> None:
    cfg = ModelArchConfig.from_hf_dict(_tiny(rope_scaling={"type": "linear", "factor": 2.0}))
    assert cfg.rope_scaling == RopeScaling("linear", 2.0)


def test_default_rope_type_means_no_scaling() -> None:
    cfg = ModelArchConfig.from_hf_dict(_tiny(rope_parameters={"rope_theta": 1e6, "rope_type": "default"}))
    assert (cfg.rope_theta, cfg.rope_scaling) == (1e6, None)


def test_missing_rope_theta_defaults_to_10000() -> None:
    assert ModelArchConfig.from_hf_dict(_tiny()).rope_theta == 10000.0


def test_llama3_scaling_without_original_length_falls_back_to_max_positions() -> None:
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    cfg = ModelArchConfig.from_hf_dict(_tiny(rope_scaling=scaling))
    assert cfg.rope_scaling is not None
    assert cfg.rope_scaling.original_max_position_embeddings == 128


def test_unsupported_rope_type_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'yarn'"):
        ModelArchConfig.from_hf_dict(_tiny(rope_scaling={"rope_type": "yarn", "factor": 4.0}))


LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}


@pytest.mark.parametrize(
    "overrides",
    [
        # A legacy rope_scaling added beside transformers 5's rope_parameters (as model cards tell users
        # to do for YaRN or a longer context) replaces them: it was ignored, plain RoPE computed.
        {"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"},
         "rope_scaling": {"type": "linear", "factor": 2.0}},
        {"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}, "rope_theta": 1e6,
         "rope_scaling": {"rope_type": "linear", "factor": 4.0}},
        {"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}, "rope_scaling": None},
        # A top-level original_max_position_embeddings wins over the nested one (Phi-3 saves it there).
        {"rope_parameters": {"rope_theta": 5e5, **LLAMA3, "original_max_position_embeddings": 64},
         "original_max_position_embeddings": 32},
        {"rope_scaling": LLAMA3, "rope_theta": 5e5},
    ],
)  # fmt: skip
def test_rope_parameters_are_read_as_transformers_reads_them(overrides: dict[str, Any]) -> None:
    transformers = pytest.importorskip("transformers")
    d = _tiny(**overrides)
    config = transformers.LlamaConfig(**copy.deepcopy(d))  # it writes into the dicts it is given
    config.standardize_rope_params()  # as the rotary embedding does, once every attribute is set
    theirs = config.rope_parameters
    ours = ModelArchConfig.from_hf_dict(d)
    assert ours.rope_theta == theirs["rope_theta"]
    if theirs["rope_type"] == "default":
        assert ours.rope_scaling is None
    else:
        assert ours.rope_scaling is not None
        assert (ours.rope_scaling.rope_type, ours.rope_scaling.factor) == (
            theirs["rope_type"],
            theirs["factor"],
        )
        if theirs["rope_type"] == "llama3":
            assert (
                ours.rope_scaling.original_max_position_embeddings
                == theirs["original_max_position_embeddings"]
            )


def test_a_rope_type_added_as_legacy_rope_scaling_beside_rope_parameters_is_refused_if_unsupported() -> None:
    d = _tiny(
        rope_parameters={"rope_theta": 1e6, "rope_type": "default"},
        rope_scaling={"type": "yarn", "factor": 4.0},
    )
    with pytest.raises(ValueError, match="'yarn'"):
        ModelArchConfig.from_hf_dict(d)


def test_kv_heads_default_to_query_heads_and_head_dim_to_hidden_over_heads() -> None:
    cfg = ModelArchConfig.from_hf_dict(_tiny())
    assert (cfg.num_key_value_heads, cfg.head_dim) == (4, 16)


def test_explicit_head_dim_wins_over_hidden_over_heads() -> None:
    assert ModelArchConfig.from_hf_dict(_tiny(head_dim=32)).head_dim == 32


def test_qwen2_has_qkv_bias_without_an_attention_bias_key() -> None:
    raw = _real("qwen2.5-0.5b")
    assert "attention_bias" not in raw
    assert ModelArchConfig.from_hf_dict(raw).attention_bias is True


def test_llama_and_qwen3_have_no_attention_bias_by_default() -> None:
    assert ModelArchConfig.from_hf_dict(_real("llama-2-7b")).attention_bias is False
    assert ModelArchConfig.from_hf_dict(_real("qwen3-0.6b")).attention_bias is False


def test_qwen_sliding_window_counts_only_when_enabled_for_some_layer() -> None:
    """transformers' Qwen2/Qwen3: the window needs use_sliding_window (default false) and applies to the
    layers from max_window_layers (default 28) on; missing key or all layers below it: full attention."""
    qwen = {**_real("qwen2.5-7b"), "sliding_window": 4096, "num_hidden_layers": 28}
    qwen.pop("use_sliding_window", None)
    qwen.pop("max_window_layers", None)
    assert ModelArchConfig.from_hf_dict(qwen).sliding_window is None  # refused before: the key was missing
    assert ModelArchConfig.from_hf_dict({**qwen, "use_sliding_window": False}).sliding_window is None
    on = {**qwen, "use_sliding_window": True}
    assert ModelArchConfig.from_hf_dict(on).sliding_window is None  # layers 28+ slide: there are none
    assert ModelArchConfig.from_hf_dict({**on, "max_window_layers": 27}).sliding_window == 4096


def test_a_mistral_config_without_a_window_has_transformers_default_window_not_full_attention() -> None:
    """Mistral-7B-v0.1-style configs: a missing sliding_window is MistralConfig's 4096 (silently computed as
    full attention before, wrong past 4096 tokens); null is full attention."""
    mistral = {**_real("mistral-7b-v0.3"), "model_type": "mistral"}
    mistral.pop("sliding_window", None)
    assert ModelArchConfig.from_hf_dict(mistral).sliding_window == 4096
    assert ModelArchConfig.from_hf_dict({**mistral, "sliding_window": None}).sliding_window is None


def test_eos_accepts_an_int_or_a_list() -> None:
    assert ModelArchConfig.from_hf_dict(_tiny(eos_token_id=2)).eos_token_ids == (2,)
    assert ModelArchConfig.from_hf_dict(_tiny(eos_token_id=[2, 3])).eos_token_ids == (2, 3)
    assert ModelArchConfig.from_hf_dict(_tiny()).eos_token_ids == ()


def test_transformers5_dtype_key_is_read() -> None:
    assert ModelArchConfig.from_hf_dict(_tiny(dtype="float16")).dtype == "float16"


def test_config_is_frozen() -> None:
    cfg = ModelArchConfig.from_hf_dict(_tiny())
    with pytest.raises(AttributeError):
        cfg.hidden_size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": None}, "hidden_size"),
        ({"vocab_size": "256"}, "vocab_size"),
        ({"num_hidden_layers": 0}, "num_hidden_layers=0"),
        ({"num_key_value_heads": 3}, "num_key_value_heads=3"),
        ({"head_dim": 15}, "head_dim=15"),
        ({"rms_norm_eps": -1.0}, "rms_norm_eps=-1.0"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
        ({"eos_token_id": "</s>"}, "eos_token_id"),
        ({"architectures": []}, "architectures"),
        ({"architectures": "LlamaForCausalLM"}, "architectures"),
        ({"tie_word_embeddings": "yes"}, "tie_word_embeddings"),
        ({"rope_scaling": {"rope_type": "linear", "factor": 0.0}}, "factor=0.0"),
    ],
)
def test_invalid_field_raises_value_error_naming_it(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ModelArchConfig.from_hf_dict(_tiny(**overrides))


def test_missing_required_field_is_named() -> None:
    raw = _tiny()
    del raw["intermediate_size"]
    with pytest.raises(ValueError, match="'intermediate_size'"):
        ModelArchConfig.from_hf_dict(raw)


def test_kv_bytes_rejects_a_nonpositive_dtype_size() -> None:
    with pytest.raises(ValueError, match="dtype_bytes=0"):
        kv_bytes_per_token(ModelArchConfig.from_hf_dict(_tiny()), 0)
