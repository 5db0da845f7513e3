"""Seeded random Llama checkpoints, written in any layout: for tests, and for `make-random`.

`random_tensors` yields canonical (Hugging Face) tensors one at a time; the writers stream them to disk in
Hugging Face, Meta or GGUF layout, converting names, row order and dtype as the format's own tools do.
Each writer builds its output under a temporary name beside the target and renames it into place at the
end, so an interrupted write leaves nothing that looks like a checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import gguf
import numpy as np

from ..errors import fail
from . import names, safetensors_file
from .hf import INDEX, SINGLE, config_from_spec
from .meta import import_torch, params_from_spec
from .spec import ModelSpec

Tensors = Iterable[tuple[str, np.ndarray]]
Q_F32 = gguf.GGMLQuantizationType.F32  # GGUF keeps norm weights in float32 whatever the matrices' type
GGUF_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")  # those gguf can quantize to


def tiny_spec(**overrides) -> ModelSpec:
    """A Llama small enough for unit tests (2 layers, hidden 64, 4 heads sharing 2 KV heads, vocab 128)."""
    fields = dict(num_layers=2, hidden_size=64, num_heads=4, num_kv_heads=2, intermediate_size=128,
                  vocab_size=128, context_length=128, name="tiny-random")
    return ModelSpec(**{**fields, **overrides})


def random_tensors(spec: ModelSpec, seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of `spec` in canonical order and layout, float32: matrices ~ N(0, 0.02) as in Llama's
    initialization, norm weights ~ 1 + N(0, 0.1) so that they are not all ones. Same seed, same tensors.

    Each tensor has a generator of its own (seeded by the seed and its index), so a few are drawn at once on
    threads (numpy draws without the GIL) while the writer takes them in order: a 7B checkpoint's 6.7
    billion draws are most of make-random's time on one core.
    """
    canonical = names.canonical_names(spec.num_layers, spec.tie_word_embeddings)

    def draw(index: int) -> np.ndarray:
        shape = names.expected_shape(canonical[index], spec)
        w = np.random.default_rng([seed, index]).standard_normal(shape, dtype=np.float32)
        if len(shape) == 1:
            w *= 0.1
            w += 1.0
        else:
            w *= 0.02
        return w

    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        drawing = deque()  # at most `workers` tensors ahead of the writer
        for index in range(len(canonical)):
            drawing.append(pool.submit(draw, index))
            if len(drawing) > workers:
                yield canonical[index - workers], drawing.popleft().result()
        for index in range(len(canonical) - len(drawing), len(canonical)):
            yield canonical[index], drawing.popleft().result()


def require_dtype(dtype: str, choices) -> None:
    if dtype not in choices:
        raise fail("dtype", f"{dtype!r} is not one of {', '.join(choices)}")


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to build a file or folder at; renamed to `target` once complete."""
    target = Path(target)
    if target.is_dir() and any(target.iterdir()):
        raise fail(target, "already exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        yield partial
        os.replace(partial, target)  # also replaces an empty folder
    except BaseException:
        if partial.is_dir():
            shutil.rmtree(partial)
        else:
            partial.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_hf(spec: ModelSpec, folder: Path, tensors: Tensors, dtype: str = "float32",
             shard_bytes: int | None = None) -> None:
    """A Hugging Face folder: config.json and model.safetensors, or, when the weights pass `shard_bytes`,
    model-0000i-of-0000n.safetensors shards with model.safetensors.index.json. Holds one shard at a time."""
    require_dtype(dtype, safetensors_file.WRITTEN)
    with atomic_path(folder) as partial:
        partial.mkdir()
        write_json(partial / "config.json", config_from_spec(spec, dtype))
        shard_files: list[list[str]] = []  # tensor names per shard written so far
        shard: dict[str, np.ndarray] = {}
        total_bytes = 0

        def flush():
            safetensors_file.write(partial / f"shard-{len(shard_files)}", shard, dtype)
            shard_files.append(list(shard))
            shard.clear()

        for name, w in tensors:
            stored = safetensors_file.encode(w, dtype)
            shard_size = sum(t.nbytes for t in shard.values())
            if shard and shard_bytes is not None and shard_size + stored.nbytes > shard_bytes:
                flush()
            shard[name] = stored
            total_bytes += stored.nbytes
        flush()

        if len(shard_files) == 1:
            os.replace(partial / "shard-0", partial / SINGLE)
            return
        weight_map = {}
        for i, shard_names in enumerate(shard_files):
            file = f"model-{i + 1:05d}-of-{len(shard_files):05d}.safetensors"
            os.replace(partial / f"shard-{i}", partial / file)
            weight_map.update(dict.fromkeys(shard_names, file))
        write_json(partial / INDEX, {"metadata": {"total_size": total_bytes}, "weight_map": weight_map})


def write_meta(spec: ModelSpec, folder: Path, tensors: Tensors, num_shards: int = 1,
               dtype: str = "bfloat16") -> None:
    """Meta's layout: params.json and consolidated.NN.pth, split for `num_shards`-way model parallelism with Q/K
    rows in interleaved rotary order, as Meta's own checkpoints (bfloat16 by default). Holds the whole model:
    every shard needs a slice of every tensor."""
    require_dtype(dtype, safetensors_file.WRITTEN)
    torch = import_torch()
    for what, size in (("num_heads", spec.num_heads), ("num_kv_heads", spec.num_kv_heads)):
        if size % num_shards:
            raise fail("num_shards", f"{what} ({size}) does not split into {num_shards} shards")
    shards: list[dict] = [{} for _ in range(num_shards)]
    for name, w in tensors:
        meta_name, split_dim = names.to_meta(name)
        heads = names.rotary_heads(name, spec)
        if heads is not None:
            w = names.interleave_rows(w, heads)
        t = torch.from_numpy(np.ascontiguousarray(w)).to(getattr(torch, dtype))
        if split_dim is None:
            for shard in shards:
                shard[meta_name] = t
            continue
        if t.shape[split_dim] % num_shards:
            raise fail("num_shards", f"{name} (dim {split_dim} of {t.shape[split_dim]}) does not split into "
                                     f"{num_shards} shards")
        for shard, piece in zip(shards, t.chunk(num_shards, split_dim)):
            shard[meta_name] = piece.clone()  # a view would save the whole tensor's storage
    with atomic_path(folder) as partial:
        partial.mkdir()
        write_json(partial / "params.json", params_from_spec(spec))
        for i, shard in enumerate(shards):
            torch.save(shard, partial / f"consolidated.{i:02d}.pth")


def write_gguf(spec: ModelSpec, path: Path, tensors: Tensors, dtype: str = "F16") -> None:
    """A GGUF file as llama.cpp's converter writes it: llama.* metadata, Q/K rows interleaved, matrices in
    `dtype` (one of GGUF_TYPES), norms in F32. Llama 3.1 rope scaling becomes a rope_freqs tensor.
    No tokenizer metadata besides the special token ids."""
    require_dtype(dtype, GGUF_TYPES)
    qtype = gguf.GGMLQuantizationType[dtype]
    writer = gguf.GGUFWriter(None, spec.architecture)
    writer.add_block_count(spec.num_layers)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.hidden_size)
    writer.add_feed_forward_length(spec.intermediate_size)
    writer.add_head_count(spec.num_heads)
    writer.add_head_count_kv(spec.num_kv_heads)
    writer.add_key_length(spec.head_dim)
    writer.add_value_length(spec.head_dim)
    writer.add_rope_dimension_count(spec.head_dim)
    writer.add_rope_freq_base(spec.rope_theta)
    writer.add_layer_norm_rms_eps(spec.rms_norm_eps)
    writer.add_vocab_size(spec.vocab_size)
    if spec.bos_token_id is not None:
        writer.add_bos_token_id(spec.bos_token_id)
    if spec.eos_token_ids:
        writer.add_eos_token_id(spec.eos_token_ids[0])

    def stored(name: str, w: np.ndarray) -> np.ndarray:
        heads = names.rotary_heads(name, spec)
        if heads is not None:
            w = names.interleave_rows(w, heads)
        return gguf.quants.quantize(np.ascontiguousarray(w, dtype=np.float32), qtype if w.ndim > 1 else Q_F32)

    extra: list[tuple[str, np.ndarray]] = []
    scaling = spec.rope_scaling
    if scaling is not None and scaling.kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(scaling.factor)
    elif scaling is not None:
        inv_freq = spec.rope_theta ** (-np.arange(0, spec.head_dim, 2, dtype=np.float64) / spec.head_dim)
        extra.append(("rope_freqs.weight", (inv_freq / scaling.scale_inv_freq(inv_freq)).astype(np.float32)))
    # Tensor infos precede all data in a GGUF file: declare every tensor from the spec, then stream the data.
    canonical = names.canonical_names(spec.num_layers, spec.tie_word_embeddings)
    for name, w in extra:
        writer.add_tensor_info(name, w.shape, w.dtype, w.nbytes)
    for name in canonical:
        shape = names.expected_shape(name, spec)
        kind = qtype if len(shape) > 1 else Q_F32
        byte_shape = gguf.quant_shape_to_byte_shape(shape, kind)
        writer.add_tensor_info(names.to_gguf(name), byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), kind)
    with atomic_path(path) as partial:
        try:
            writer.write_header_to_file(partial)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for _, w in extra:
                writer.write_tensor_data(w)
            for expected, (name, w) in zip(canonical, tensors, strict=True):
                if name != expected:
                    raise ValueError(f"write_gguf takes tensors in canonical order: got {name}, expected {expected}")
                writer.write_tensor_data(stored(name, w).view(np.uint8))
        finally:
            writer.close()

