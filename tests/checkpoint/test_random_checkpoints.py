"""The random model and the writers: seeded, streaming into shards, and never half-written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llama_ort.checkpoint.random import random_tensors, write_hf, write_meta
from llama_ort.errors import LlamaOrtError


def test_same_seed_same_tensors(tiny_spec):
    first, again, other = (dict(random_tensors(tiny_spec, seed)) for seed in (0, 0, 1))
    for name, w in first.items():
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w, again[name])
        assert not np.array_equal(w, other[name])
    assert abs(first["model.norm.weight"].mean() - 1) < 0.1  # norms around 1
    assert abs(first["model.embed_tokens.weight"].std() - 0.02) < 0.002


def test_shards_stay_under_shard_bytes(tiny_spec, tmp_path):
    write_hf(tiny_spec, tmp_path / "hf", random_tensors(tiny_spec, 0), "float16", shard_bytes=40_000)
    index = json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and set(index["weight_map"]) == set(dict(random_tensors(tiny_spec, 0)))
    for file in files:
        # 40 kB of tensors plus a header; only a single tensor larger than the limit may pass it
        assert (tmp_path / "hf" / file).stat().st_size < 40_000 + 4_000
    assert index["metadata"]["total_size"] == sum(
        np.prod(w.shape) * 2 for w in dict(random_tensors(tiny_spec, 0)).values())


def test_interrupted_write_leaves_nothing(tiny_spec, tmp_path):
    def failing_midway():
        for i, item in enumerate(random_tensors(tiny_spec, 0)):
            if i == 5:
                raise KeyboardInterrupt
            yield item

    with pytest.raises(KeyboardInterrupt):
        write_hf(tiny_spec, tmp_path / "hf", failing_midway(), shard_bytes=10_000)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_folder_with_files(tiny_spec, tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "notes.txt").write_text("keep me")
    with pytest.raises(LlamaOrtError, match="already exists and is not empty"):
        write_hf(tiny_spec, tmp_path / "hf", random_tensors(tiny_spec, 0))
    (tmp_path / "empty").mkdir()  # an empty folder is replaced
    write_hf(tiny_spec, tmp_path / "empty", random_tensors(tiny_spec, 0))
    assert (tmp_path / "empty" / "model.safetensors").exists()


def test_meta_shards_must_split_heads(tiny_spec, tmp_path):
    with pytest.raises(LlamaOrtError, match=r"num_kv_heads \(2\) does not split into 4 shards"):
        write_meta(tiny_spec, tmp_path / "meta", random_tensors(tiny_spec, 0), num_shards=4)
