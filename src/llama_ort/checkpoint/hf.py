"""Hugging Face folders: config.json <-> ModelSpec, weights from safetensors (one file or an indexed set of shards)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import fail
from . import names
from .base import Checkpoint, json_number, read_json
from .safetensors_file import SafetensorsFile
from .spec import ModelSpec, RopeScaling

# config.json's `architectures` -> ModelSpec.architecture
ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral"}
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


class HFCheckpoint(Checkpoint):
    """A Hugging Face model folder: config.json plus model.safetensors or shards listed in its index."""

    format = "hf"

    def __init__(self, folder: str | Path):
        self.path = Path(folder)
        config_path = self.path / "config.json"
        self.spec = spec_from_config(read_json(config_path), config_path, name=self.path.resolve().name)
        self._file_of = open_weights(self.path)

    def tensor_names(self) -> list[str]:
        return [n for n in names.canonical_names(self.spec.num_layers, False) if n in self._file_of]

    def read(self, name: str) -> np.ndarray:
        if name not in self._file_of:
            raise fail(self.path, f"holds no tensor {name}")
        return self._file_of[name].read(name)

    def close(self) -> None:
        for file in set(self._file_of.values()):
            file.close()


def open_weights(folder: Path) -> dict[str, SafetensorsFile]:
    """Tensor name -> the safetensors file holding it, headers parsed and checked, data not yet mapped."""
    index_path = folder / INDEX
    if index_path.exists():
        weight_map = read_json(index_path).get("weight_map")
        if not isinstance(weight_map, dict):
            raise fail(index_path, "field 'weight_map' is missing or not an object")
        files = {shard: SafetensorsFile(folder / shard) for shard in sorted(set(weight_map.values()))}
        for name, shard in weight_map.items():
            if name not in files[shard].entries:
                raise fail(files[shard].path, f"holds no tensor {name}, though {INDEX} says it does")
        return {name: files[shard] for name, shard in weight_map.items()}
    if (folder / SINGLE).exists():
        file = SafetensorsFile(folder / SINGLE)
        return {name: file for name in file.names()}
    raise fail(folder, f"has no {SINGLE} or {INDEX}: llama-ort reads Hugging Face weights in safetensors format")


def spec_from_config(config: dict, where: Path, name: str) -> ModelSpec:
    """config.json's fields (as transformers' LlamaConfig / MistralConfig read them) -> ModelSpec."""
    architectures = config.get("architectures")
    known = ", ".join(ARCHITECTURES)
    if not isinstance(architectures, list) or not architectures:
        raise fail(where, f"field 'architectures' is missing; llama-ort reads {known}")
    if architectures[0] not in ARCHITECTURES:
        raise fail(where, f"field 'architectures' is {architectures[0]!r}; llama-ort reads {known}")

    def integer(key: str, default: int | None = None) -> int:
        return json_number(config, key, where, default)

    num_heads = integer("num_attention_heads")
    context_length = integer("max_position_embeddings")
    # Sliding-window attention equals full attention within the window: cap the context there.
    sliding_window = config.get("sliding_window")
    if isinstance(sliding_window, int) and 0 < sliding_window < context_length:
        context_length = sliding_window
    rope_theta, rope_scaling = rope_from_config(config, where)
    eos = config.get("eos_token_id")
    return ModelSpec(
        num_layers=integer("num_hidden_layers"),
        hidden_size=integer("hidden_size"),
        num_heads=num_heads,
        num_kv_heads=integer("num_key_value_heads", num_heads),
        intermediate_size=integer("intermediate_size"),
        vocab_size=integer("vocab_size"),
        head_dim=integer("head_dim", 0),
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        rms_norm_eps=float(json_number(config, "rms_norm_eps", where, 1e-6, integer=False)),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        bos_token_id=config.get("bos_token_id"),
        eos_token_ids=tuple(eos) if isinstance(eos, list) else (() if eos is None else (eos,)),
        context_length=context_length,
        architecture=ARCHITECTURES[architectures[0]],
        name=name,
        where=where,
    )


def rope_from_config(config: dict, where: Path) -> tuple[float, RopeScaling | None]:
    """(rope_theta, scaling) from either transformers 5's `rope_parameters` or the older `rope_theta` +
    `rope_scaling` pair (with "type" or "rope_type")."""
    params = config.get("rope_parameters") or {
        **(config.get("rope_scaling") or {}), "rope_theta": config.get("rope_theta", 10000.0)}
    kind = params.get("rope_type", params.get("type", "default"))
    theta = float(params.get("rope_theta", 10000.0))
    if kind == "default":
        return theta, None
    if kind not in ("linear", "llama3"):
        raise fail(where, f"rope scaling type {kind!r} is not supported; llama-ort reads linear and llama3")
    if not isinstance(params.get("factor"), (int, float)):
        raise fail(where, f"rope scaling {kind!r} needs a numeric 'factor'")
    if kind == "linear":
        return theta, RopeScaling("linear", float(params["factor"]))
    defaults = RopeScaling("llama3", float(params["factor"]))
    return theta, RopeScaling(
        "llama3",
        factor=defaults.factor,
        low_freq_factor=float(params.get("low_freq_factor", defaults.low_freq_factor)),
        high_freq_factor=float(params.get("high_freq_factor", defaults.high_freq_factor)),
        original_max_position_embeddings=int(
            params.get("original_max_position_embeddings", defaults.original_max_position_embeddings)),
    )


def config_from_spec(spec: ModelSpec, dtype: str) -> dict:
    """The config.json transformers needs to load a checkpoint of `spec` stored in `dtype`."""
    architecture = {v: k for k, v in ARCHITECTURES.items()}[spec.architecture]
    scaling = spec.rope_scaling
    config = {
        "architectures": [architecture],
        "model_type": spec.architecture,
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "max_position_embeddings": spec.context_length,
        "rms_norm_eps": spec.rms_norm_eps,
        "rope_theta": spec.rope_theta,
        "rope_scaling": None if scaling is None else {
            "rope_type": scaling.kind,
            "factor": scaling.factor,
            **({} if scaling.kind == "linear" else {
                "low_freq_factor": scaling.low_freq_factor,
                "high_freq_factor": scaling.high_freq_factor,
                "original_max_position_embeddings": scaling.original_max_position_embeddings,
            }),
        },
        "tie_word_embeddings": spec.tie_word_embeddings,
        "bos_token_id": spec.bos_token_id,
        "eos_token_id": spec.eos_token_ids[0] if len(spec.eos_token_ids) == 1 else list(spec.eos_token_ids),
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": dtype,
    }
    if spec.architecture == "mistral":
        config["sliding_window"] = None  # MistralConfig's default is a 4096 window; our spec has none
    return config
