"""MetaCheckpoint against transformers loading the same weights in Hugging Face layout, and against Meta's own
rotary convention."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from llama_ort_testing.hf_reference import assert_same_tensors, assert_spec_matches_config

from llama_ort.checkpoint import open_checkpoint
from llama_ort.checkpoint.meta import LLAMA3_BOS, LLAMA3_EOS, LLAMA3_VOCAB, MetaCheckpoint, params_from_spec
from llama_ort.checkpoint.random import random_tensors, tiny_spec, write_hf, write_meta
from llama_ort.checkpoint.spec import RopeScaling
from llama_ort.errors import LlamaOrtError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("num_shards", [1, 2])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_matches_transformers_on_hf_layout(tiny_spec, tmp_path, num_shards, dtype):
    write_meta(tiny_spec, tmp_path / "meta", random_tensors(tiny_spec, 0), num_shards, dtype)
    write_hf(tiny_spec, tmp_path / "hf", random_tensors(tiny_spec, 0), dtype)
    assert len(list((tmp_path / "meta").glob("consolidated.*.pth"))) == num_shards
    reference = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32)
    with open_checkpoint(tmp_path / "meta") as checkpoint:
        assert isinstance(checkpoint, MetaCheckpoint) and checkpoint.format == "meta"
        assert_spec_matches_config(checkpoint.spec, reference.config)
        assert_same_tensors(checkpoint, reference.state_dict())
        # float16 shards come back as float16; bfloat16 ones widened to float32
        assert checkpoint.read("model.norm.weight").dtype == np.dtype(np.float16 if dtype == "float16" else np.float32)


def meta_rotary(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Meta's apply_rotary_emb (llama/model.py): consecutive pairs of each head are complex numbers."""
    seq_len, _, head_dim = x.shape
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2).double() / head_dim)
    freqs_cis = torch.polar(torch.ones(seq_len, head_dim // 2, dtype=torch.float64),
                            torch.outer(torch.arange(seq_len).double(), inv_freq))
    pairs = torch.view_as_complex(x.double().reshape(seq_len, -1, head_dim // 2, 2))
    return torch.view_as_real(pairs * freqs_cis[:, None, :]).flatten(2)


def test_attention_scores_match_metas_rotary_convention(tiny_spec, tmp_path):
    """Q.K after rotary, computed Meta's way on Meta's rows, equals transformers' way on the rows we read.

    This checks the direction of the row reordering against both conventions, not against our own writer.
    """
    write_meta(tiny_spec, tmp_path / "meta", random_tensors(tiny_spec, 3), num_shards=2, dtype="float32")
    shards = [torch.load(p, weights_only=True) for p in sorted((tmp_path / "meta").glob("*.pth"))]
    hf = MetaCheckpoint(tmp_path / "meta")
    x = torch.randn(7, tiny_spec.hidden_size, generator=torch.Generator().manual_seed(0))
    group = tiny_spec.num_heads // tiny_spec.num_kv_heads

    def heads(w, n):  # (T, n, head_dim)
        return (x @ w.T).reshape(len(x), n, tiny_spec.head_dim)

    meta_q = heads(torch.cat([s["layers.1.attention.wq.weight"] for s in shards]), tiny_spec.num_heads)
    meta_k = heads(torch.cat([s["layers.1.attention.wk.weight"] for s in shards]), tiny_spec.num_kv_heads)
    meta_scores = torch.einsum("thd,shd->hts", meta_rotary(meta_q, tiny_spec.rope_theta),
                               meta_rotary(meta_k, tiny_spec.rope_theta).repeat_interleave(group, dim=1))

    hf_q = heads(torch.from_numpy(hf.read("model.layers.1.self_attn.q_proj.weight")), tiny_spec.num_heads)
    hf_k = heads(torch.from_numpy(hf.read("model.layers.1.self_attn.k_proj.weight")), tiny_spec.num_kv_heads)
    config = transformers.LlamaConfig(**{k: v for k, v in json.loads(
        (tmp_path / "meta" / "params.json").read_text()).items() if k == "rope_theta"},
        hidden_size=tiny_spec.hidden_size, num_attention_heads=tiny_spec.num_heads)
    rotary = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(config)
    cos, sin = rotary(hf_q, torch.arange(len(x))[None])
    q, k = transformers.models.llama.modeling_llama.apply_rotary_pos_emb(
        hf_q.transpose(0, 1)[None], hf_k.transpose(0, 1)[None], cos, sin)
    hf_scores = torch.einsum("htd,hsd->hts", q[0], k[0].repeat_interleave(group, dim=0))

    torch.testing.assert_close(hf_scores.double(), meta_scores, rtol=1e-4, atol=1e-6)


def test_llama3_layout(tmp_path):
    """Llama 3 (as Meta ships it): vocabulary-split embeddings, vocab_size -1 in params.json, scaled rope."""
    spec = tiny_spec(vocab_size=LLAMA3_VOCAB, hidden_size=32, num_heads=2, num_kv_heads=2, tie_word_embeddings=True)
    tensors = dict(random_tensors(spec, 0))
    folder = tmp_path / "meta"
    write_meta(spec, folder, tensors.items(), num_shards=2, dtype="float32")
    params = json.loads((folder / "params.json").read_text())
    params.update(vocab_size=-1, use_scaled_rope=True, rope_theta=500000.0)
    del params["max_seq_len"]
    (folder / "params.json").write_text(json.dumps(params))
    embedding = torch.from_numpy(tensors["model.embed_tokens.weight"])
    for path, piece in zip(sorted(folder.glob("*.pth")), embedding.chunk(2, dim=0)):
        shard = torch.load(path, weights_only=True)
        shard["tok_embeddings.weight"] = piece.clone()
        torch.save(shard, path)

    with MetaCheckpoint(folder) as checkpoint:
        assert checkpoint.spec == tiny_spec(
            vocab_size=LLAMA3_VOCAB, hidden_size=32, num_heads=2, num_kv_heads=2, tie_word_embeddings=True,
            rope_theta=500000.0, rope_scaling=RopeScaling("llama3", 8.0), context_length=131072,
            bos_token_id=LLAMA3_BOS, eos_token_ids=LLAMA3_EOS, name="meta")
        for name, w in checkpoint.tensors():
            np.testing.assert_array_equal(w, tensors[name], err_msg=name)


def test_without_torch_says_how_to_install(tiny_meta, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(LlamaOrtError, match=r"need torch, to read and to write: run `pip install -e '\.\[torch\]'`"):
        MetaCheckpoint(tiny_meta)


def test_tiny_meta_fixture_round_trips(tiny_meta, tiny_tensors):
    with MetaCheckpoint(tiny_meta) as checkpoint:
        assert sorted(checkpoint.tensor_names()) == sorted(tiny_tensors)
        for name, w in checkpoint.tensors():
            np.testing.assert_array_equal(w, tiny_tensors[name], err_msg=name)


@pytest.mark.parametrize("hidden_size, intermediate_size", [(64, 128), (576, 1536), (4096, 11008), (4096, 14336)])
def test_params_json_gives_back_the_mlp_width(hidden_size, intermediate_size):
    """Meta's code computes the MLP width from params.json (llama/model.py FeedForward); ours must land on it."""
    params = params_from_spec(tiny_spec(hidden_size=hidden_size, intermediate_size=intermediate_size))
    width = int(params["ffn_dim_multiplier"] * int(2 * 4 * params["dim"] / 3))
    width = params["multiple_of"] * ((width + params["multiple_of"] - 1) // params["multiple_of"])
    assert width == intermediate_size
