"""The contract between the graph builder and the runtime: input/output names, the symbolic dimensions,
and the manifest (llama-ort.json) that describes a built model folder. docs/model-format.md explains it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import fail

# Symbolic dimensions. max_seq_len is fixed when a session is created (a free-dimension override).
BATCH, SEQ_LEN, MAX_SEQ_LEN = "batch", "seq_len", "max_seq_len"

INPUT_IDS = "input_ids"  # [batch, seq_len], the manifest's index_dtype (int64; int32 for webgpu)
ATTENTION_MASK = "attention_mask"  # [batch, max_seq_len], index_dtype: 1 where the cache holds a token or a current one
LOGITS = "logits"  # float32 [batch, vocab] (last position of each row) or [batch, seq_len, vocab]
NEXT_TOKEN = "next_token"  # int64 [batch]: argmax of the logits, so greedy decoding downloads no logits
NEXT_ATTENTION_MASK = "next_attention_mask"  # [batch, max_seq_len], index_dtype: the mask for the next step
# The seed's rotary contract (layout "merged"): the rotary embeddings of this step's tokens go in, and those of
# each row's next position come out, to be fed back as the next step's.
COS, SIN = "cos", "sin"  # KV dtype [batch, seq_len, head_dim / 2]
NEXT_COS, NEXT_SIN = "next_cos", "next_sin"  # KV dtype [batch, 1, head_dim / 2]


def past_key(i: int) -> str:
    return f"past_key.{i}"  # [batch, kv_heads, max_seq_len, head_dim], updated in place


def past_value(i: int) -> str:
    return f"past_value.{i}"


def present_key(i: int) -> str:
    return f"present_key.{i}"  # the same buffer as past_key.{i} when bound through IO binding


def present_value(i: int) -> str:
    return f"present_value.{i}"


MANIFEST = "llama-ort.json"
FORMAT_VERSION = 1


@dataclass
class Manifest:
    """What a model folder holds: the runtime's only description of the model."""

    model_file: str  # the decoder, e.g. decoder_model_merged.onnx
    target: str  # cpu, cuda, dml, webgpu
    precision: str  # fp32, fp16, int4
    layout: str  # "merged" (If: decoder | decoder_with_past) or "single"
    spec: dict  # ModelSpec.to_dict()
    kv_dtype: str  # float32 or float16
    index_dtype: str = "int64"  # of input_ids and the masks: int32 for webgpu, which has no 64-bit integers
    has_next_token: bool = True
    rotary_io: bool = False  # inputs cos, sin and outputs next_cos, next_sin (the merged layout has them)
    all_logits: bool = False
    quantization: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def save(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = Path(folder) / MANIFEST
        if not path.exists():
            raise fail(folder, f"not a llama-ort model folder (no {MANIFEST}): build one with `llama-ort optimize`")
        try:
            data = json.loads(path.read_text())
            manifest = cls(**data)
        except (json.JSONDecodeError, TypeError) as e:
            raise fail(path, f"corrupt manifest ({e}): rebuild the model with `llama-ort optimize`")
        if manifest.format_version != FORMAT_VERSION:
            raise fail(path, f"format version {manifest.format_version}, this llama-ort reads {FORMAT_VERSION}: rebuild the model")
        return manifest
