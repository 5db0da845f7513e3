"""`make-random`: a random-weight checkpoint of a named shape, written tensor by tensor with a progress bar.

The writers (checkpoint/random.py) build the checkpoint beside its final path and rename it into place, so an
interrupted run leaves nothing that looks like a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..checkpoint import names
from ..checkpoint.random import atomic_path, random_tensors, write_hf, write_meta
from ..checkpoint.spec import ModelSpec
from ..errors import fail
from .placeholder_tokenizer import write_hf_tokenizer, write_sentencepiece_tokenizer
from .shapes import get_shape

DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}  # flag -> the name config.json uses
FORMATS = ("hf", "meta")
# Hugging Face folders are written in shards of at most this size: the writer holds one shard at a time.
SHARD_BYTES = 1 << 30


def checkpoint_bytes(spec: ModelSpec, dtype: str) -> int:
    itemsize = np.dtype(np.float32).itemsize if dtype == "fp32" else 2
    shapes = (names.expected_shape(n, spec) for n in names.canonical_names(spec.num_layers, spec.tie_word_embeddings))
    return sum(math.prod(shape) for shape in shapes) * itemsize


def with_progress(tensors: Iterable[tuple[str, np.ndarray]], progress: Progress, task,
                  itemsize: int) -> Iterator[tuple[str, np.ndarray]]:
    for name, tensor in tensors:
        yield name, tensor
        progress.update(task, advance=tensor.size * itemsize, tensor=name)


def make_random(shape: str | ModelSpec, output: Path, dtype: str = "fp16", format: str = "hf", seed: int = 0,
                show_progress: bool = True) -> Path:
    """Write a seeded random checkpoint of `shape` (a name in SHAPES, or a ModelSpec) to the folder `output`,
    with a placeholder tokenizer. Returns `output`."""
    spec = get_shape(shape) if isinstance(shape, str) else shape
    if dtype not in DTYPES:
        raise fail("--dtype", f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if format not in FORMATS:
        raise fail("--format", f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if Path(output).exists() and not Path(output).is_dir():
        raise fail("--output", f"{output} is a file: give a path for the checkpoint's folder")
    columns = (TextColumn("[bold]{task.description}[/] {task.fields[tensor]}"), BarColumn(), DownloadColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    # The tokenizer goes in before the folder gets its final name: a checkpoint without one is not complete.
    with atomic_path(Path(output)) as partial, Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task(f"random {spec.name}", total=checkpoint_bytes(spec, dtype), tensor="")
        tensors = with_progress(random_tensors(spec, seed), progress, task, 4 if dtype == "fp32" else 2)
        if format == "hf":
            write_hf(spec, partial, tensors, DTYPES[dtype], shard_bytes=SHARD_BYTES)
            write_hf_tokenizer(spec, partial)
        else:
            # Meta's writer holds the whole model: each .pth shard is one pickle, saved at once.
            write_meta(spec, partial, tensors, dtype=DTYPES[dtype])
            write_sentencepiece_tokenizer(spec, partial)
    return Path(output)
