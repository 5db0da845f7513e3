"""Named model shapes: the real models' configurations, to build random-weight checkpoints of.

Speed depends on a model's shape, not on its weight values, so a benchmark of a random checkpoint of
Llama 2 7B's shape measures what the real one would, without downloading it.
"""

from __future__ import annotations

from ..checkpoint.spec import ModelSpec
from ..errors import fail

# Each entry is the model's Hugging Face config.json, in ModelSpec's words.
SHAPES = {
    "llama2-7b": ModelSpec(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=32, intermediate_size=11008,
                           vocab_size=32000, context_length=4096, name="llama2-7b"),
    "llama2-13b": ModelSpec(num_layers=40, hidden_size=5120, num_heads=40, num_kv_heads=40, intermediate_size=13824,
                            vocab_size=32000, context_length=4096, name="llama2-13b"),
    # Two of the 80 layers: the per-layer cost and the 8-way grouped-query attention, on one GPU.
    "llama2-70b-2layers": ModelSpec(num_layers=2, hidden_size=8192, num_heads=64, num_kv_heads=8,
                                    intermediate_size=28672, vocab_size=32000, context_length=4096,
                                    name="llama2-70b-2layers"),
    "smollm2-135m": ModelSpec(num_layers=30, hidden_size=576, num_heads=9, num_kv_heads=3, intermediate_size=1536,
                              vocab_size=49152, rope_theta=100000.0, tie_word_embeddings=True, context_length=8192,
                              name="smollm2-135m"),
    "tinyllama-1.1b": ModelSpec(num_layers=22, hidden_size=2048, num_heads=32, num_kv_heads=4,
                                intermediate_size=5632, vocab_size=32000, context_length=2048,
                                name="tinyllama-1.1b"),
    # v0.3: no sliding window, a 32768-token vocabulary.
    "mistral-7b": ModelSpec(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=8, intermediate_size=14336,
                            vocab_size=32768, rope_theta=1_000_000.0, context_length=32768, architecture="mistral",
                            name="mistral-7b"),
    "llama3-8b": ModelSpec(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=8, intermediate_size=14336,
                           vocab_size=128256, rope_theta=500_000.0, context_length=8192, bos_token_id=128000,
                           eos_token_ids=(128001,), name="llama3-8b"),
}


def get_shape(name: str) -> ModelSpec:
    try:
        return SHAPES[name]
    except KeyError:
        raise fail("--shape", f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}") from None

