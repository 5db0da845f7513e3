"""What every checkpoint reader offers: a ModelSpec and lazy tensors by canonical name."""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import fail
from . import names
from .spec import ModelSpec

if TYPE_CHECKING:
    from ..quant.int4 import Int4Weight


class Checkpoint(abc.ABC):
    """A checkpoint opened for reading. Tensors are read one at a time, never all at once.

    `read(name)` returns a float32 or float16 array in canonical layout (names.py); it may be a view of a
    memory map, so callers copy it if they keep it past the checkpoint's life.
    """

    path: Path
    spec: ModelSpec
    format: str  # "hf", "meta" or "gguf": the tokenizer package exports each format's vocabulary

    @abc.abstractmethod
    def tensor_names(self) -> list[str]:
        """Canonical names of the tensors this checkpoint holds."""

    @abc.abstractmethod
    def read(self, name: str) -> np.ndarray:
        """One tensor by canonical name, in canonical layout."""

    def fingerprint(self) -> str:
        """A cheap identity of the checkpoint's content, for cache keys: names, sizes and mtimes of its files."""
        parts = []
        for p in sorted(self.source_files()):
            st = p.stat()
            parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
        return "|".join(parts)

    def source_files(self) -> list[Path]:
        return [self.path] if self.path.is_file() else [p for p in self.path.iterdir() if p.is_file()]

    def tensors(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, tensor) in forward-pass order, each checked against the spec's shape."""
        for name in names.canonical_names(self.spec.num_layers, self.spec.tie_word_embeddings):
            yield name, self.checked(name)

    def checked(self, name: str) -> np.ndarray:
        """`read(name)`, failing with the file named if the shape disagrees with the config or a value is NaN or
        infinite (a model built from it would generate nothing)."""
        tensor = self.read(name)
        self._check_shape(name, tuple(tensor.shape))
        self._check_finite(name, tensor)
        return tensor

    def int4_blocks(self, name: str, block_size: int) -> Int4Weight | None:
        """The tensor as symmetric 4-bit blocks of `block_size` (code 8 is zero), exactly as stored, where the
        checkpoint holds it so (GGUF Q4_0 at block 32); None where it would have to be quantized."""
        return None

    def checked_int4_blocks(self, name: str, block_size: int) -> Int4Weight | None:
        """`int4_blocks`, failing with the file named if the shape disagrees with the config or a scale is NaN or
        infinite (the 4-bit codes are integers: the scales carry every float of the tensor)."""
        blocks = self.int4_blocks(name, block_size)
        if blocks is not None:
            self._check_shape(name, (blocks.n, blocks.k))
            self._check_finite(name, blocks.scales)
        return blocks

    def _check_shape(self, name: str, shape: tuple[int, ...]) -> None:
        want = names.expected_shape(name, self.spec)
        if shape != want:
            raise fail(self.path, f"tensor {name} has shape {shape} but the config implies {want}")

    def _check_finite(self, name: str, tensor: np.ndarray) -> None:
        if not all_finite(tensor):
            raise fail(self.path, f"tensor {name} holds {non_finite_count(tensor)}: the checkpoint is damaged; "
                                  "download or convert it again")

    def close(self) -> None:
        """Release file handles and maps."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Each float dtype as unsigned bits, and its exponent field: all ones there means NaN or infinity.
EXPONENT_BITS = {np.dtype(np.float16): (np.uint16, 0x7C00), np.dtype(np.float32): (np.uint32, 0x7F80_0000),
                 np.dtype(np.float64): (np.uint64, 0x7FF0_0000_0000_0000)}
FINITE_CHUNK = 1 << 16  # elements checked at a time: the scratch stays in the CPU cache, whatever the tensor


def all_finite(tensor: np.ndarray) -> bool:
    """Whether no value of the float tensor is NaN or infinite. Reads the exponent bits a chunk of rows at a time:
    several GB/s in float16 and float32 alike (np.isfinite manages 1 GB/s in float16), with no array of the
    tensor's size (a 7B embedding table would need 131 MB of booleans)."""
    if tensor.size == 0:
        return True
    if tensor.ndim < 2:
        tensor = tensor.reshape(1, -1)
    elif tensor.flags.f_contiguous:  # a transposed view: order does not matter here, but reading along rows does
        tensor = tensor.T
    bits, exponent = EXPONENT_BITS[tensor.dtype]
    rows = max(1, FINITE_CHUNK // tensor[0].size)
    scratch = np.empty((min(rows, len(tensor)), *tensor.shape[1:]), bits)
    as_bits = tensor.view(bits)
    for start in range(0, len(tensor), rows):
        part = as_bits[start:start + rows]
        if np.bitwise_and(part, exponent, out=scratch[:len(part)]).max() == exponent:
            return False
    return True


def non_finite_count(tensor: np.ndarray) -> str:
    """"3 NaN and 1 infinite values": what `all_finite` found, counted (only on the way to an error)."""
    return f"{np.count_nonzero(np.isnan(tensor))} NaN and {np.count_nonzero(np.isinf(tensor))} infinite values"


def read_json(path: Path) -> dict:
    """A checkpoint's JSON description file (config.json, params.json, an index), as a dict."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise fail(path, "no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise fail(path, f"is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise fail(path, f"should hold a JSON object, found {type(data).__name__}")
    return data


def json_number(data: dict, key: str, where: Path, default: float | None = None, integer: bool = True):
    """`data[key]` checked to be a number (an integer unless `integer` is False); `default` if absent or null."""
    found = data.get(key)
    if found is None:
        found = default
    if found is None:
        raise fail(where, f"field {key!r} is missing")
    kinds = int if integer else (int, float)
    if not isinstance(found, kinds) or isinstance(found, bool):
        raise fail(where, f"field {key!r} should be {'an integer' if integer else 'a number'}, found {found!r}")
    return found
