"""The canonical tensor names, and where each one lives in every checkpoint format.

Canonical names and layouts are Hugging Face's LlamaForCausalLM: weights are [out_features, in_features]
and the rows of the Q and K projections are in rotate-half order (`rotary_interleaved=0`). Readers of
other formats convert to this, so the graph builder sees one scheme.
"""

from __future__ import annotations

EMBED = "model.embed_tokens.weight"  # [vocab, hidden]
FINAL_NORM = "model.norm.weight"  # [hidden]
LM_HEAD = "lm_head.weight"  # [vocab, hidden]; absent when embeddings are tied

# Per-layer tensors: canonical suffix -> (Meta name, GGUF name, Meta shard split dim or None if replicated)
LAYER_TENSORS = {
    "self_attn.q_proj.weight": ("attention.wq.weight", "attn_q.weight", 0),  # [num_heads*head_dim, hidden]
    "self_attn.k_proj.weight": ("attention.wk.weight", "attn_k.weight", 0),  # [kv_heads*head_dim, hidden]
    "self_attn.v_proj.weight": ("attention.wv.weight", "attn_v.weight", 0),  # [kv_heads*head_dim, hidden]
    "self_attn.o_proj.weight": ("attention.wo.weight", "attn_output.weight", 1),  # [hidden, num_heads*head_dim]
    "mlp.gate_proj.weight": ("feed_forward.w1.weight", "ffn_gate.weight", 0),  # [intermediate, hidden]
    "mlp.up_proj.weight": ("feed_forward.w3.weight", "ffn_up.weight", 0),  # [intermediate, hidden]
    "mlp.down_proj.weight": ("feed_forward.w2.weight", "ffn_down.weight", 1),  # [hidden, intermediate]
    "input_layernorm.weight": ("attention_norm.weight", "attn_norm.weight", None),  # [hidden]
    "post_attention_layernorm.weight": ("ffn_norm.weight", "ffn_norm.weight", None),  # [hidden]
}

# Global tensors: canonical -> (Meta name, GGUF name, Meta shard split dim or None)
GLOBAL_TENSORS = {
    EMBED: ("tok_embeddings.weight", "token_embd.weight", 1),
    FINAL_NORM: ("norm.weight", "output_norm.weight", None),
    LM_HEAD: ("output.weight", "output.weight", 0),
}


def layer(i: int, suffix: str) -> str:
    """`layer(3, "self_attn.q_proj.weight")` -> "model.layers.3.self_attn.q_proj.weight"."""
    return f"model.layers.{i}.{suffix}"


def canonical_names(num_layers: int, tie_word_embeddings: bool) -> list[str]:
    """Every tensor a complete checkpoint has, in forward-pass order."""
    names = [EMBED]
    for i in range(num_layers):
        names += [layer(i, suffix) for suffix in LAYER_TENSORS]
    names.append(FINAL_NORM)
    if not tie_word_embeddings:
        names.append(LM_HEAD)
    return names


def expected_shape(name: str, spec) -> tuple[int, ...]:
    """The shape `name` must have under `spec` (a ModelSpec)."""
    h, q, kv, ff, v = spec.hidden_size, spec.q_size, spec.kv_size, spec.intermediate_size, spec.vocab_size
    if name in (EMBED, LM_HEAD):
        return (v, h)
    if name == FINAL_NORM:
        return (h,)
    suffix = name.split(".", 3)[3]
    return {
        "self_attn.q_proj.weight": (q, h),
        "self_attn.k_proj.weight": (kv, h),
        "self_attn.v_proj.weight": (kv, h),
        "self_attn.o_proj.weight": (h, q),
        "mlp.gate_proj.weight": (ff, h),
        "mlp.up_proj.weight": (ff, h),
        "mlp.down_proj.weight": (h, ff),
        "input_layernorm.weight": (h,),
        "post_attention_layernorm.weight": (h,),
    }[suffix]


def to_meta(name: str) -> tuple[str, int | None]:
    """Canonical name -> (Meta name, shard split dim)."""
    if name in GLOBAL_TENSORS:
        meta, _, dim = GLOBAL_TENSORS[name]
        return meta, dim
    _, _, i, suffix = name.split(".", 3)
    meta, _, dim = LAYER_TENSORS[suffix]
    return f"layers.{i}.{meta}", dim


def to_gguf(name: str) -> str:
    """Canonical name -> GGUF tensor name."""
    if name in GLOBAL_TENSORS:
        return GLOBAL_TENSORS[name][1]
    _, _, i, suffix = name.split(".", 3)
    return f"blk.{i}.{LAYER_TENSORS[suffix][1]}"


def rotary_heads(name: str, spec) -> int | None:
    """How many heads the rows of `name` hold if it is a Q or K projection (the tensors whose row order
    depends on the rotary convention), else None."""
    if name.endswith("self_attn.q_proj.weight"):
        return spec.num_heads
    if name.endswith("self_attn.k_proj.weight"):
        return spec.num_kv_heads
    return None


def rotate_half_rows(w, n_heads: int):
    """Reorder Q/K projection rows from interleaved (Meta, GGUF) rotary pairs to rotate-half (HF) order.

    Interleaved pairs (x0, x1), (x2, x3) ... become halves (x0, x2, ...), (x1, x3, ...) within each head.
    """
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def interleave_rows(w, n_heads: int):
    """The inverse of `rotate_half_rows`: rotate-half (HF) Q/K rows back to interleaved (Meta, GGUF) order."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
