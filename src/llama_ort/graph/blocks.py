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
    cos_cache: str  # [positions, D/2]: GroupQueryAttention's tables, or the rows that position_ids index
    sin_cache: str
    position_ids: str | None = None  # int64, where Q and K are rotated outside GroupQueryAttention
    # The step's cos/sin come from the model's inputs, one row a token: rotate the B*S tokens as one sequence
    # whose positions 0..B*S-1 index those rows (position_ids is then [0], the first position).
    rotate_as_one_sequence: bool = False


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
            if state.position_ids is not None:  # the separate rotary op needs Q and K apart
                q, k, v = b.op("Split", q, b.const([spec.q_size, spec.kv_size, spec.kv_size]), axis=-1, outputs=3,
                               name="qkv_split")
        else:
            q = w.linear(b, x, [proj("q")], f"layers.{i}.attn.q")  # [B, S, Hq D]
            k = w.linear(b, x, [proj("k")], f"layers.{i}.attn.k")  # [B, S, Hkv D]
            v = w.linear(b, x, [proj("v")], f"layers.{i}.attn.v")
        rotary = {}
        if state.position_ids is None:
            rotary = dict(do_rotary=1, rotary_interleaved=0)
            tables = (state.cos_cache, state.sin_cache)
        else:
            q = rotate(b, q, state, spec.num_heads, spec.head_dim, "q_rotary")
            k = rotate(b, k, state, spec.num_kv_heads, spec.head_dim, "k_rotary")
            tables = ()
        out = b.value_name("gqa")
        b.op("GroupQueryAttention", q, k, v, past_key, past_value, state.seqlens_k, state.total_sequence_length,
             *tables, outputs=[out, present_key, present_value], name="gqa", domain=MS_DOMAIN,
             num_heads=spec.num_heads, kv_num_heads=spec.num_kv_heads, scale=spec.head_dim ** -0.5,
             local_window_size=spec.extra.get("sliding_window") or -1, **rotary)
        return w.linear(b, out, [proj("o")], f"layers.{i}.attn.o_proj")  # [B, S, H]


def rotate(b: GraphBuilder, x: str, state: AttentionState, num_heads: int, head_dim: int, name: str) -> str:
    """Rotary embeddings on x [B, S, heads D] with com.microsoft.RotaryEmbedding, outside GroupQueryAttention."""
    rows = x
    if state.rotate_as_one_sequence:
        rows = b.op("Reshape", x, b.const([1, -1, num_heads * head_dim]))  # [1, B S, heads D]
    rotated = b.op("RotaryEmbedding", rows, state.position_ids, state.cos_cache, state.sin_cache, name=name,
                   domain=MS_DOMAIN, num_heads=num_heads, interleaved=0)
    if state.rotate_as_one_sequence:
        rotated = b.op("Reshape", rotated, b.op("Shape", x), name=name)
    return rotated


def mlp(b: GraphBuilder, w: Weights, target: Target, i: int, x: str) -> str:
    """SwiGLU: down(silu(gate(x)) * up(x))."""
    with b.scope("mlp"):
        gate_w, up_w, down_w = (names.layer(i, f"mlp.{p}_proj.weight") for p in ("gate", "up", "down"))
        if target.packed_gate_up:
            gate_up = w.linear(b, x, [gate_w, up_w], f"layers.{i}.mlp.gate_up")  # [B, S, 2 F]
            gate, up = b.op("Split", gate_up, axis=-1, num_outputs=2, outputs=2, name="split")
        else:
            gate = w.linear(b, x, [gate_w], f"layers.{i}.mlp.gate")
            up = w.linear(b, x, [up_w], f"layers.{i}.mlp.up")
        silu = b.op("Mul", gate, b.op("Sigmoid", gate), name="silu")
        return w.linear(b, b.op("Mul", silu, up, name="gated"), [down_w], f"layers.{i}.mlp.down_proj")
