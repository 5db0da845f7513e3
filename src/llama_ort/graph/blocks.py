"""The blocks of a Llama decoder layer, each a function that emits its nodes, in forward-pass order.

Shapes: B batch, S sequence length, H hidden size, M max_seq_len, D head_dim.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checkpoint import names
from ..checkpoint.spec import ModelSpec
from .builder import MS_DOMAIN, GraphBuilder
from .target import Target
from .weights import Weights


@dataclass(frozen=True)
class AttentionState:
    """What every layer's attention reads besides its own cache, computed once per step."""

    input_ids: str  # [B, S], the target's index dtype
    step_tokens: str  # [B]: S, counted on the device from input_ids
    seqlens_k: str  # int32 [B]: tokens in the cache after this step, minus one
    total_sequence_length: str  # int32 scalar: the longest row's total length
    # How Q and K get their rotary embeddings:
    # "fused": GroupQueryAttention rotates them (do_rotary) from the cos/sin tables [positions, D/2] by position;
    # "op": com.microsoft.RotaryEmbedding does, from the same tables at position_ids (int64 [B, S]);
    # "fed": plain arithmetic with the step's own cos/sin, the model's inputs, as [B, S, 1, D] factors: cos twice,
    #        and sin with its first half negated, so that x * cos + swap_halves(x) * sin is the rotation.
    rotary: str
    cos: str
    sin: str
    position_ids: str | None = None


def rms_norm(b: GraphBuilder, w: Weights, x: str, weight: str, eps: float) -> str:
    return b.op("SimplifiedLayerNormalization", x, w.vector(b, weight), axis=-1, epsilon=eps, stash_type=1,
                name="norm")


def residual_rms_norm(b: GraphBuilder, w: Weights, target: Target, x: str, residual: str, weight: str,
                      eps: float) -> tuple[str, str]:
    """(rms_norm(x + residual), x + residual): one SkipSimplifiedLayerNormalization where the target has it."""
    if target.skip_simplified_layer_norm:
        # Outputs: normed, mean, inv_std_var, x + residual. Leave the statistics unnamed: DirectML rejects them.
        normed, total = b.value_name("residual_norm"), b.value_name("residual")
        b.op("SkipSimplifiedLayerNormalization", x, residual, w.vector(b, weight), outputs=[normed, "", "", total],
             name="residual_norm", domain=MS_DOMAIN, epsilon=eps)
        return normed, total
    total = b.op("Add", x, residual, name="residual")
    return rms_norm(b, w, total, weight, eps), total


def attention(b: GraphBuilder, w: Weights, target: Target, spec: ModelSpec, i: int, x: str,
              past_key: str, past_value: str, state: AttentionState,
              present_key: str, present_value: str) -> str:
    """Grouped-query attention with rotary embeddings, writing this step's K/V into the static cache."""
    with b.scope("attn"):
        proj = lambda p: names.layer(i, f"self_attn.{p}_proj.weight")  # noqa: E731
        if target.packed_qkv:
            q = w.linear(b, x, [proj("q"), proj("k"), proj("v")], f"layers.{i}.attn.qkv")  # [B, S, (Hq + 2 Hkv) D]
            k = v = None
            if state.rotary != "fused":  # rotating outside attention needs Q and K apart
                q, k, v = b.op("Split", q, b.const([spec.q_size, spec.kv_size, spec.kv_size]), axis=-1, outputs=3,
                               name="qkv_split")
        else:
            q = w.linear(b, x, [proj("q")], f"layers.{i}.attn.q")  # [B, S, Hq D]
            k = w.linear(b, x, [proj("k")], f"layers.{i}.attn.k")  # [B, S, Hkv D]
            v = w.linear(b, x, [proj("v")], f"layers.{i}.attn.v")
        rotary = {}
        if state.rotary == "fused":
            rotary = dict(do_rotary=1, rotary_interleaved=0)
            tables = (state.cos, state.sin)
        else:
            q = rotate(b, q, state, spec.num_heads, spec.head_dim, "q_rotary")
            k = rotate(b, k, state, spec.num_kv_heads, spec.head_dim, "k_rotary")
            tables = ()
        out = b.value_name("gqa")
        b.op("GroupQueryAttention", q, k, v, past_key, past_value, state.seqlens_k, state.total_sequence_length,
             *tables, outputs=[out, present_key, present_value], name="gqa", domain=MS_DOMAIN,
             num_heads=spec.num_heads, kv_num_heads=spec.num_kv_heads, scale=spec.head_dim ** -0.5, **rotary)
        return w.linear(b, out, [proj("o")], f"layers.{i}.attn.o_proj")  # [B, S, H]


def rotate(b: GraphBuilder, x: str, state: AttentionState, num_heads: int, head_dim: int, name: str) -> str:
    """Rotary embeddings on x [B, S, heads D], outside GroupQueryAttention."""
    if state.rotary == "op":
        return b.op("RotaryEmbedding", x, state.position_ids, state.cos, state.sin, name=name, domain=MS_DOMAIN,
                    num_heads=num_heads, interleaved=0)
    with b.scope(name):
        heads = b.op("Reshape", x, b.const([0, 0, num_heads, head_dim]))  # [B, S, heads, D]
        first, second = b.op("Split", heads, axis=-1, num_outputs=2, outputs=2)
        swapped = b.op("Concat", second, first, axis=-1)
        rotated = b.op("Add", b.op("Mul", heads, state.cos), b.op("Mul", swapped, state.sin))
        return b.op("Reshape", rotated, b.const([0, 0, num_heads * head_dim]), name="rotated")


def mlp(b: GraphBuilder, w: Weights, target: Target, i: int, x: str) -> str:
    """SwiGLU: down(silu(gate(x)) * up(x))."""
    with b.scope("mlp"):
        gate_w, up_w, down_w = (names.layer(i, f"mlp.{p}_proj.weight") for p in ("gate", "up", "down"))
        if w.precision in target.packs_gate_up_at:
            gate_up = w.linear(b, x, [gate_w, up_w], f"layers.{i}.mlp.gate_up")  # [B, S, 2 F]
            gate, up = b.op("Split", gate_up, axis=-1, num_outputs=2, outputs=2, name="split")
        else:
            gate = w.linear(b, x, [gate_w], f"layers.{i}.mlp.gate")
            up = w.linear(b, x, [up_w], f"layers.{i}.mlp.up")
        silu = b.op("Mul", gate, b.op("Sigmoid", gate), name="silu")
        return w.linear(b, b.op("Mul", silu, up, name="gated"), [down_w], f"layers.{i}.mlp.down_proj")
