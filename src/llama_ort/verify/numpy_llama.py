"""A plain numpy Llama forward pass over a prompt, reading one layer's weights at a time.

Independent of ONNX and of torch: the build's verify pass compares the built model against it, so a
wrong permutation or packing in any reader or pass shows up before the model is used.
"""

from __future__ import annotations

import numpy as np

from ..checkpoint import names
from ..checkpoint.base import Checkpoint
from ..graph.rope import cos_sin_tables


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate-half rotary embedding. x [heads, S, D]; cos, sin [S, D/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def last_logits(checkpoint: Checkpoint, ids: list[int], num_layers: int | None = None, on_read=None) -> np.ndarray:
    """Logits [vocab] of the last token of `ids`, in float64; `on_read(name, nbytes)` as each tensor is read."""
    spec = checkpoint.spec

    def read(name: str) -> np.ndarray:
        tensor = checkpoint.checked(name)
        if on_read:
            on_read(name, tensor.nbytes)
        return np.asarray(tensor, np.float64)

    n, d, hq, hkv = len(ids), spec.head_dim, spec.num_heads, spec.num_kv_heads
    cos, sin = cos_sin_tables(spec, n, "float64")
    causal = np.triu(np.full((n, n), -np.inf), k=1)

    h = read(names.EMBED)[ids]  # [S, H]
    for i in range(num_layers or spec.num_layers):
        w = lambda suffix: read(names.layer(i, suffix))  # noqa: E731
        x = rms_norm(h, w("input_layernorm.weight"), spec.rms_norm_eps)
        q = (x @ w("self_attn.q_proj.weight").T).reshape(n, hq, d).transpose(1, 0, 2)  # [Hq, S, D]
        k = (x @ w("self_attn.k_proj.weight").T).reshape(n, hkv, d).transpose(1, 0, 2)  # [Hkv, S, D]
        v = (x @ w("self_attn.v_proj.weight").T).reshape(n, hkv, d).transpose(1, 0, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k, v = np.repeat(k, hq // hkv, axis=0), np.repeat(v, hq // hkv, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d) + causal  # [Hq, S, S]
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attn = (probs @ v).transpose(1, 0, 2).reshape(n, hq * d)
        h = h + attn @ w("self_attn.o_proj.weight").T
        x = rms_norm(h, w("post_attention_layernorm.weight"), spec.rms_norm_eps)
        gate, up = x @ w("mlp.gate_proj.weight").T, x @ w("mlp.up_proj.weight").T
        h = h + (gate / (1 + np.exp(-gate)) * up) @ w("mlp.down_proj.weight").T
    x = rms_norm(h[-1], read(names.FINAL_NORM), spec.rms_norm_eps)
    return x @ read(names.EMBED if spec.tie_word_embeddings else names.LM_HEAD).T
