"""The architecture of a decoder-only model, parsed from a Hugging Face ``config.json``.

Two generations of ``config.json`` exist: transformers < 5 writes ``rope_theta`` and ``rope_scaling``
(keyed ``type`` or ``rope_type``) at the top level; transformers >= 5 nests both under
``rope_parameters``. ``ModelArchConfig.from_hf_dict`` accepts either and stores one normal form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
SUPPORTED_ACTIVATIONS = ("silu",)
# Architectures whose q/k/v projections carry a bias whatever ``attention_bias`` says (it is absent there).
_QKV_BIAS_ARCHITECTURES = frozenset({"Qwen2ForCausalLM"})
_DEFAULT_ROPE_THETA = 10000.0


@dataclass(frozen=True, slots=True)
class RopeScaling:
    """Non-default RoPE frequency scaling (``rope_type`` ``linear`` or ``llama3``)."""

    rope_type: str
    factor: float
    # llama3 only (Llama-3.1 long-context scaling); None for linear.
    low_freq_factor: float | None = None
    high_freq_factor: float | None = None
    original_max_position_embeddings: int | None = None

    def __post_init__(self) -> None:
        if self.rope_type not in ("linear", "llama3"):
            raise ValueError(
                f"rope_scaling.rope_type={self.rope_type!r} is not supported; "
                f"supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
            )
        if not self.factor > 0:
            raise ValueError(f"rope_scaling.factor={self.factor} must be > 0")
        if self.rope_type == "llama3":
            low, high = self.low_freq_factor, self.high_freq_factor
            if low is None or high is None or self.original_max_position_embeddings is None:
                raise ValueError(
                    "llama3 rope_scaling needs low_freq_factor, high_freq_factor and "
                    f"original_max_position_embeddings; got {self}"
                )
            if not 0 < low < high:
                raise ValueError(
                    "llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor; "
                    f"got low_freq_factor={low}, high_freq_factor={high}"
                )
            if self.original_max_position_embeddings <= 0:
                raise ValueError(
                    "rope_scaling.original_max_position_embeddings="
                    f"{self.original_max_position_embeddings} must be > 0"
                )


@dataclass(frozen=True, slots=True)
class ModelArchConfig:
    architectures: tuple[str, ...]
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    rms_norm_eps: float
    tie_word_embeddings: bool
    attention_bias: bool  # bias on the q/k/v projections
    rope_theta: float
    rope_scaling: RopeScaling | None  # None = plain RoPE
    hidden_act: str = "silu"
    mlp_bias: bool = False
    # None when every layer attends to the whole context.
    sliding_window: int | None = None
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    dtype: str | None = None  # the checkpoint's dtype name ("bfloat16"), informational

    def __post_init__(self) -> None:
        if not self.architectures:
            raise ValueError("architectures is empty; config.json must name the model class")
        for name in (
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "vocab_size",
            "max_position_embeddings",
        ):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name}={value} must be > 0")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even (RoPE rotates pairs of dimensions)")
        if not self.rms_norm_eps > 0:
            raise ValueError(f"rms_norm_eps={self.rms_norm_eps} must be > 0")
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta={self.rope_theta} must be > 0")
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ValueError(
                f"hidden_act={self.hidden_act!r} is not supported; "
                f"supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
            )
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise ValueError(f"sliding_window={self.sliding_window} must be > 0 or None")

    @property
    def q_size(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_key_value_heads * self.head_dim

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> ModelArchConfig:
        """Parses a Hugging Face ``config.json`` dict; raises ``ValueError`` naming a bad or missing field."""
        if not isinstance(d, dict):
            raise ValueError(f"a model config must be a dict, got {type(d).__name__}")
        architectures = d.get("architectures")
        if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
            raise ValueError(f"architectures={architectures!r} must be a list of class names")
        hidden_size = _int(d, "hidden_size")
        num_heads = _int(d, "num_attention_heads")
        if num_heads <= 0:
            raise ValueError(f"num_attention_heads={num_heads} must be > 0")
        num_kv_heads = _int(d, "num_key_value_heads", default=num_heads)
        # transformers' Qwen3Config defaults head_dim to 128 (its heads are wider than hidden / heads);
        # the other architectures to hidden / heads.
        is_qwen3 = "Qwen3ForCausalLM" in architectures or d.get("model_type") == "qwen3"
        head_dim = _int(d, "head_dim", default=128 if is_qwen3 else hidden_size // num_heads)
        max_positions = _int(d, "max_position_embeddings")
        rope_theta, rope_scaling = _parse_rope(d, max_positions)
        attention_bias = _bool(d, "attention_bias", default=False) or any(
            a in _QKV_BIAS_ARCHITECTURES for a in architectures
        )
        return cls(
            architectures=tuple(architectures),
            model_type=_str(d, "model_type", default=""),
            hidden_size=hidden_size,
            intermediate_size=_int(d, "intermediate_size"),
            num_hidden_layers=_int(d, "num_hidden_layers"),
            num_attention_heads=num_heads,
            num_key_value_heads=num_kv_heads,
            head_dim=head_dim,
            vocab_size=_int(d, "vocab_size"),
            max_position_embeddings=max_positions,
            rms_norm_eps=_float(d, "rms_norm_eps", default=1e-6),
            tie_word_embeddings=_bool(d, "tie_word_embeddings", default=False),
            attention_bias=attention_bias,
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            hidden_act=_str(d, "hidden_act", default="silu"),
            mlp_bias=_bool(d, "mlp_bias", default=False),
            sliding_window=_parse_sliding_window(d, _int(d, "num_hidden_layers")),
            bos_token_id=_optional_int(d, "bos_token_id"),
            eos_token_ids=_parse_eos(d),
            dtype=_optional_str(d, "dtype") or _optional_str(d, "torch_dtype"),
        )


def kv_bytes_per_token(cfg: ModelArchConfig, dtype_bytes: int) -> int:
    """KV cache bytes one token occupies across all layers (K and V)."""
    if dtype_bytes <= 0:
        raise ValueError(f"dtype_bytes={dtype_bytes} must be > 0")
    return 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * dtype_bytes


def _parse_rope(d: dict[str, Any], max_positions: int) -> tuple[float, RopeScaling | None]:
    """(theta, scaling) as transformers >= 5 reads them (``convert_rope_params_to_dict``): a legacy
    ``rope_scaling`` dict, where there is one, replaces ``rope_parameters`` (model cards tell users to add
    one for YaRN beside the saved rope_parameters); theta falls back to the top-level key."""
    scaling = d.get("rope_scaling")
    if scaling is not None and not isinstance(scaling, dict):
        raise ValueError(f"rope_scaling={scaling!r} must be a dict or null")
    params = d.get("rope_parameters")
    if params is not None and not isinstance(params, dict):
        raise ValueError(f"rope_parameters={params!r} must be a dict")
    if not scaling:
        scaling = params
        if scaling and all(isinstance(v, dict) for v in scaling.values()):
            raise ValueError(f"per-layer-type rope_parameters={scaling!r} are not supported")
    top_level_theta = _float(d, "rope_theta", default=_DEFAULT_ROPE_THETA)
    theta = _float(scaling, "rope_theta", default=top_level_theta) if scaling else top_level_theta
    if not scaling:
        return theta, None
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type == "default":
        return theta, None
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ValueError(
            f"rope_type={rope_type!r} is not supported; supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
        )
    if rope_type == "linear":
        return theta, RopeScaling("linear", factor=_float(scaling, "factor"))
    # NOTE: transformers gives a top-level original_max_position_embeddings priority over the nested one
    # (Phi-3 saves it there), and falls back to max_position_embeddings where neither is given.
    original = _optional_int(d, "original_max_position_embeddings")
    if original is None:
        original = _int(scaling, "original_max_position_embeddings", default=max_positions)
    return theta, RopeScaling(
        "llama3",
        factor=_float(scaling, "factor"),
        low_freq_factor=_float(scaling, "low_freq_factor"),
        high_freq_factor=_float(scaling, "high_freq_factor"),
        original_max_position_embeddings=original,
    )


# transformers' MistralConfig.sliding_window when config.json has no such key (Mistral-7B-v0.1's window).
_MISTRAL_DEFAULT_SLIDING_WINDOW = 4096
# transformers' Qwen2Config / Qwen3Config.max_window_layers when config.json has no such key.
_QWEN_DEFAULT_MAX_WINDOW_LAYERS = 28


def _parse_sliding_window(d: dict[str, Any], num_layers: int) -> int | None:
    """The attention window, as transformers builds it for the architecture; None: full attention."""
    if d.get("model_type") in ("qwen2", "qwen3") or "use_sliding_window" in d:
        # Qwen2/Qwen3 carry a sliding_window that applies only with use_sliding_window (default false),
        # and then only to the layers from max_window_layers on (transformers' layer_types).
        if not _bool(d, "use_sliding_window", default=False):
            return None
        if _int(d, "max_window_layers", default=_QWEN_DEFAULT_MAX_WINDOW_LAYERS) >= num_layers:
            return None
    elif d.get("model_type") == "mistral" and "sliding_window" not in d:
        # NOTE: a missing key is transformers' default window, not full attention (null is full).
        return _MISTRAL_DEFAULT_SLIDING_WINDOW
    return _optional_int(d, "sliding_window")


def _parse_eos(d: dict[str, Any]) -> tuple[int, ...]:
    eos = d.get("eos_token_id")
    if eos is None:
        return ()
    if isinstance(eos, int) and not isinstance(eos, bool):
        return (eos,)
    if isinstance(eos, list) and all(isinstance(e, int) and not isinstance(e, bool) for e in eos):
        return tuple(eos)
    raise ValueError(f"eos_token_id={eos!r} must be an int or a list of ints")


_MISSING = object()


def _int(d: dict[str, Any], key: str, default: Any = _MISSING) -> int:
    value = d.get(key, default)
    if value is _MISSING:
        raise ValueError(f"config is missing the required field {key!r}")
    if value is None and default is not _MISSING:
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}={value!r} must be an integer")
    return value


def _optional_int(d: dict[str, Any], key: str) -> int | None:
    return None if d.get(key) is None else _int(d, key)


def _float(d: dict[str, Any], key: str, default: Any = _MISSING) -> float:
    value = d.get(key, default)
    if value is _MISSING:
        raise ValueError(f"config is missing the required field {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key}={value!r} must be a number")
    return float(value)


def _bool(d: dict[str, Any], key: str, default: bool) -> bool:
    value = d.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"{key}={value!r} must be true or false")
    return value


def _str(d: dict[str, Any], key: str, default: str) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key}={value!r} must be a string")
    return value


def _optional_str(d: dict[str, Any], key: str) -> str | None:
    return None if d.get(key) is None else _str(d, key, default="")
