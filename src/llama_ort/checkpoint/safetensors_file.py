"""One safetensors file, read through a memory map without torch, and written through the safetensors package.

numpy has no bfloat16, so the `safetensors` package cannot hand us BF16 tensors without torch. We parse the
format ourselves instead (8-byte little-endian header length, a JSON header, then the raw data) and map the
data with np.memmap: F32 and F16 tensors are views of the map, BF16 ones become float32 on read.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors

from ..errors import fail

# Header dtype -> how its bits are held in numpy
STORED = {"F32": np.dtype(np.float32), "F16": np.dtype(np.float16), "BF16": np.dtype(np.uint16)}
# The dtypes we write, by the names config.json and the safetensors package use
WRITTEN = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": np.dtype(np.uint16)}
MAX_HEADER_BYTES = 100_000_000  # the format's own limit; a larger length means a corrupt file


@dataclass(frozen=True)
class Entry:
    """Where one tensor lives in the data section."""

    dtype: str  # header name: "F32", "BF16" ...
    shape: tuple[int, ...]
    begin: int
    end: int


class SafetensorsFile:
    """A safetensors file opened for lazy reading: the header is parsed and checked now, data mapped on first read."""

    def __init__(self, path: Path):
        self.path = path
        self.entries, self.data_start = read_header(path)
        self._data: np.memmap | None = None

    def names(self) -> list[str]:
        return list(self.entries)

    def read(self, name: str) -> np.ndarray:
        """The tensor as float32 or float16: a view of the map, or (BF16) a float32 copy."""
        entry = self.entries[name]
        if entry.dtype not in STORED:
            raise fail(self.path, f"tensor {name} has dtype {entry.dtype}; llama-ort reads F32, F16 and BF16")
        if self._data is None:
            self._data = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.data_start)
        # np.asarray: a plain ndarray view, not a np.memmap whose arithmetic results stay memmaps
        raw = np.asarray(self._data[entry.begin:entry.end]).view(STORED[entry.dtype]).reshape(entry.shape)
        return bfloat16_to_float32(raw) if entry.dtype == "BF16" else raw

    def close(self) -> None:
        self._data = None


def read_header(path: Path) -> tuple[dict[str, Entry], int]:
    """The tensor entries of a safetensors file and where its data starts, failing on anything inconsistent."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            header_len = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else None
            header_bytes = f.read(header_len) if header_len is not None and header_len <= MAX_HEADER_BYTES else b""
    except FileNotFoundError:
        raise fail(path, "no such file") from None
    if header_len is None:
        raise fail(path, f"is truncated: {size} bytes, shorter than the 8-byte safetensors header length")
    if header_len > MAX_HEADER_BYTES or len(header_bytes) < header_len:
        raise fail(path, f"is truncated or not safetensors: its header claims {header_len} bytes, the file has {size}")
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise fail(path, f"has a corrupt safetensors header (not JSON: {e})") from None
    if not isinstance(header, dict):
        raise fail(path, "has a corrupt safetensors header (not a JSON object)")
    data_start = 8 + header_len
    data_bytes = size - data_start
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        entry = parse_entry(path, name, info)
        if entry.end > data_bytes:
            raise fail(path, f"is truncated: tensor {name} ends at data byte {entry.end} but the file holds {data_bytes}")
        entries[name] = entry
    return entries, data_start


def parse_entry(path: Path, name: str, info: object) -> Entry:
    try:
        dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        valid = (isinstance(dtype, str) and all(isinstance(n, int) and n >= 0 for n in (*shape, begin, end))
                 and begin <= end)
    except (TypeError, KeyError, ValueError):
        valid = False
    if not valid:
        raise fail(path, f"has a corrupt safetensors header: bad entry for tensor {name}: {info!r}")
    if dtype in STORED and end - begin != math.prod(shape) * STORED[dtype].itemsize:
        raise fail(path, f"has a corrupt safetensors header: tensor {name} of shape {list(shape)} and dtype {dtype} "
                         f"cannot take {end - begin} bytes")
    return Entry(dtype, shape, begin, end)


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """BF16 bits (uint16) -> float32: the bits are the upper half of a float32."""
    wide = bits.astype(np.uint32)
    wide <<= 16
    return wide.view(np.float32)


def float32_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 -> BF16 bits (uint16), rounding to nearest even as torch does."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def encode(x: np.ndarray, dtype: str) -> np.ndarray:
    """A float tensor as `dtype` ("float32", "float16" or "bfloat16") would store it: what `write` takes."""
    if dtype == "bfloat16":
        return float32_to_bfloat16(x)
    return np.ascontiguousarray(x, dtype=WRITTEN[dtype])


def write(path: Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """Write `encode`d tensors, all of one dtype, as a safetensors file that transformers loads."""
    specs = {
        name: safetensors.TensorSpec(dtype=dtype, shape=list(t.shape), data_ptr=t.ctypes.data,
                                     data_len=t.nbytes)
        for name, t in tensors.items()
    }
    # transformers refuses safetensors files whose metadata does not name the framework.
    safetensors.serialize_file(specs, str(path), metadata={"format": "pt"})
