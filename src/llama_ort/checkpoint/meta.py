"""Meta's original Llama layout: params.json <-> ModelSpec, weights in consolidated.NN.pth model-parallel shards.

Each shard holds a slice of every split tensor (names.py says along which dim) and a copy of the replicated
ones. Q and K rows are in Meta's interleaved rotary order, turned into rotate-half order on read. torch is
needed to unpickle .pth files and is imported here only, lazily: nothing on the build or run paths needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LlamaOrtError, fail
from . import names
from .base import Checkpoint, json_number, read_json
from .spec import ModelSpec, RopeScaling

LLAMA2_CONTEXT = 4096  # params.json has no context length; Llama 2's is 4096 ...
LLAMA31_CONTEXT = 131072  # ... and a Llama 3.1 (scaled rope) is trained to 128K
LLAMA3_VOCAB = 128256  # Llama 3's tiktoken vocabulary, whose special token ids are fixed:
LLAMA3_BOS = 128000  # <|begin_of_text|>
LLAMA3_EOS = (128001, 128008, 128009)  # <|end_of_text|>, <|eom_id|>, <|eot_id|>


def import_torch():
    try:
        import torch
    except ImportError:
        raise LlamaOrtError("Meta's .pth checkpoints need torch, to read and to write: run "
                            "`pip install -e '.[torch]'`") from None
    return torch


class MetaCheckpoint(Checkpoint):
    """A folder with params.json and consolidated.00.pth, consolidated.01.pth ..."""

    format = "meta"

    def __init__(self, folder: str | Path):
        self.path = Path(folder)
        params_path = self.path / "params.json"
        params = read_json(params_path)
        self._shard_paths = sorted(self.path.glob("consolidated.*.pth"))
        if not self._shard_paths:
            raise fail(self.path, "has params.json but no consolidated.NN.pth weight files")
        self._torch = import_torch()
        self._shards = [load_shard(self._torch, p) for p in self._shard_paths]
        self.spec = self._spec_from_params(params, params_path)

    def _spec_from_params(self, params: dict, where: Path) -> ModelSpec:
        def integer(key: str, default: int | None = None) -> int:
            return json_number(params, key, where, default)

        def number(key: str, default: float) -> float:
            return float(json_number(params, key, where, default, integer=False))

        num_heads = integer("n_heads")
        vocab_size = integer("vocab_size", -1)
        if vocab_size <= 0:  # -1: "defined later by the tokenizer"; the embedding table knows it
            vocab_size = self._joined_shape(names.EMBED)[0]
        is_scaled = bool(params.get("use_scaled_rope"))
        is_llama3 = vocab_size == LLAMA3_VOCAB
        return ModelSpec(
            num_layers=integer("n_layers"),
            hidden_size=integer("dim"),
            num_heads=num_heads,
            num_kv_heads=integer("n_kv_heads", num_heads),
            intermediate_size=self._joined_shape(names.layer(0, "mlp.gate_proj.weight"))[0],
            vocab_size=vocab_size,
            rope_theta=number("rope_theta", 10000.0),
            # Llama 3.1's scaling; the factor is 8 unless params.json says otherwise
            rope_scaling=RopeScaling("llama3", number("rope_scaling_factor", 8.0)) if is_scaled else None,
            rms_norm_eps=number("norm_eps", 1e-5),
            tie_word_embeddings=names.to_meta(names.LM_HEAD)[0] not in self._shards[0],
            bos_token_id=LLAMA3_BOS if is_llama3 else 1,
            eos_token_ids=LLAMA3_EOS if is_llama3 else (2,),
            context_length=integer("max_seq_len", LLAMA31_CONTEXT if is_scaled else LLAMA2_CONTEXT),
            name=self.path.resolve().name,
            where=where,
        )

    def tensor_names(self) -> list[str]:
        return [n for n in names.canonical_names(self.spec.num_layers, False)
                if names.to_meta(n)[0] in self._shards[0]]

    def read(self, name: str) -> np.ndarray:
        """Join the shards' slices, in one preallocated array, Q/K rows turned to rotate-half order per slice."""
        torch = self._torch
        parts = self._parts(name)
        heads = names.rotary_heads(name, self.spec)
        if heads is not None:
            # Shards split Q/K by whole heads, so each slice can be reordered on its own.
            parts = [names.rotate_half_rows(p, heads // len(parts)) for p in parts]
        if len(parts) == 1 and parts[0].dtype in (torch.float32, torch.float16):
            return parts[0].numpy()  # a view of the mapped file
        dim = self._split_dim(name)
        out = torch.empty(self._joined_shape(name), dtype=torch.float16 if parts[0].dtype == torch.float16
                          else torch.float32)
        start = 0
        for part in parts:
            out.narrow(dim, start, part.shape[dim]).copy_(part)
            start += part.shape[dim]
        return out.numpy()

    def _parts(self, name: str) -> list:
        """The slices of `name`, one per shard (one in all if replicated)."""
        meta_name, split_dim = names.to_meta(name)
        shards = self._shards if split_dim is not None else self._shards[:1]
        for path, shard in zip(self._shard_paths, shards):
            if meta_name not in shard:
                raise fail(path, f"holds no tensor {meta_name} (the {name} of Hugging Face's layout)")
        return [shard[meta_name] for shard in shards]

    def _split_dim(self, name: str) -> int:
        meta_name, split_dim = names.to_meta(name)
        if split_dim is None or len(self._shards) == 1:
            return 0
        if name == names.EMBED:
            # Llama 2 splits the embedding table by hidden dim, Llama 3 by vocabulary: see which one is whole.
            hidden_size = self._parts(names.FINAL_NORM)[0].shape[0]
            return 0 if self._shards[0][meta_name].shape[1] == hidden_size else 1
        return split_dim

    def _joined_shape(self, name: str) -> tuple[int, ...]:
        parts = self._parts(name)
        dim = self._split_dim(name)
        shape = list(parts[0].shape)
        shape[dim] = sum(p.shape[dim] for p in parts)
        return tuple(shape)


def load_shard(torch, path: Path) -> dict:
    """A shard's tensors, memory-mapped: each is read from disk only when used."""
    try:
        shard = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError ... for damaged files
        first_line = next(iter(str(e).splitlines()), "")
        raise fail(path, f"is not a readable PyTorch checkpoint ({type(e).__name__}: {first_line})") from None
    if not isinstance(shard, dict):
        raise fail(path, f"should hold a dict of tensors, found {type(shard).__name__}")
    return shard


def params_from_spec(spec: ModelSpec) -> dict:
    """The params.json Meta's code would write for `spec`."""
    scaling = spec.rope_scaling
    if scaling is not None and scaling != RopeScaling("llama3", scaling.factor):
        raise fail("rope_scaling", "Meta's params.json can only say Llama 3.1's llama3 scaling (use_scaled_rope)")
    # Meta derives the MLP width as multiple_of * ceil(ffn_dim_multiplier * int(8 * dim / 3) / multiple_of):
    # this choice lands exactly on intermediate_size.
    base_width = int(8 * spec.hidden_size / 3)
    params = {
        "dim": spec.hidden_size,
        "n_layers": spec.num_layers,
        "n_heads": spec.num_heads,
        "n_kv_heads": spec.num_kv_heads,
        "vocab_size": spec.vocab_size,
        "multiple_of": spec.intermediate_size,
        "ffn_dim_multiplier": spec.intermediate_size / base_width,
        "norm_eps": spec.rms_norm_eps,
        "rope_theta": spec.rope_theta,
        "max_seq_len": spec.context_length,
    }
    if scaling is not None:
        params.update(use_scaled_rope=True, rope_scaling_factor=scaling.factor)
    return params
