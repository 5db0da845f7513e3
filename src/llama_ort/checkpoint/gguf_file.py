"""GGUF's layout (llama.cpp's docs/gguf.md) read with struct over a memory map: metadata and tensor views.

gguf's GGUFReader makes a numpy view of the map for every element of every metadata array: 3.8 s for the
embedded model's 49,152 tokens and 48,900 merges, before anything asks for them. Here the metadata become
Python values in a tenth of that, and each tensor is a view of the map shaped as GGUFReader shapes it:
[*dims] of its element type for float and integer tensors, [*rows, bytes a row] of uint8 for quantized ones.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quant_shape_to_byte_shape

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # GGUFReader's too: version 1 counted lengths in 32 bits
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
STRING, ARRAY = 8, 9  # gguf.GGUFValueType
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
Q = GGMLQuantizationType
ELEMENT_TYPES = {Q.F32: np.float32, Q.F16: np.float16, Q.F64: np.float64, Q.I8: np.int8, Q.I16: np.int16,
                 Q.I32: np.int32, Q.I64: np.int64}


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    tensor_type: GGMLQuantizationType
    shape: tuple[int, ...]  # numpy order: ggml lists dims fastest first, so its [in, out] is [out, in] here
    data: np.ndarray  # a read-only view of the map


class GGUFFile:
    """`fields`: every metadata key and its value (a number, bool, string or list); `tensors`: in file order.

    Raises ValueError (UnicodeDecodeError included) on a damaged or truncated file."""

    def __init__(self, path: str | Path):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self._map[:4] != MAGIC:
            raise ValueError("GGUF magic invalid")
        if len(self._map) < 24:
            raise ValueError("shorter than a GGUF header")
        (version,) = struct.unpack_from("<I", self._map, 4)
        self._order = "<"
        if version & 0xFFFF == 0:  # written on a machine of the other byte order
            self._order, version = ">", struct.unpack_from(">I", self._map, 4)[0]
        if version not in VERSIONS:
            raise ValueError(f"GGUF version {version}, not one of {VERSIONS}")
        self._offset = 8
        tensor_count, field_count = self._unpack("QQ")
        self.fields = {}
        for _ in range(field_count):
            key = self._string()
            if key in self.fields:
                raise ValueError(f"metadata key {key} listed twice")
            self.fields[key] = self._value(self._unpack("I")[0])
        infos = [self._tensor_info() for _ in range(tensor_count)]
        alignment = self.fields.get("general.alignment", DEFAULT_ALIGNMENT)
        if alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"general.alignment {alignment} is not a power of two")
        data_start = -(-self._offset // alignment) * alignment
        self.tensors = [self._tensor(data_start, *info) for info in infos]
        if len({t.name for t in self.tensors}) != len(self.tensors):
            raise ValueError("a tensor name is listed twice")

    def _unpack(self, codes: str) -> tuple:
        layout = struct.Struct(self._order + codes)
        if self._offset + layout.size > len(self._map):
            raise ValueError("the metadata run past the end of the file")
        values = layout.unpack_from(self._map, self._offset)
        self._offset += layout.size
        return values

    def _string(self) -> str:
        (length,) = self._unpack("Q")
        start, self._offset = self._offset, self._offset + length
        if self._offset > len(self._map):
            raise ValueError("a string runs past the end of the file")
        return self._map[start:self._offset].decode("utf-8")

    def _value(self, kind: int):
        if kind == STRING:
            return self._string()
        if kind in SCALARS:
            return self._unpack(SCALARS[kind])[0]
        if kind != ARRAY:
            raise ValueError(f"unknown metadata value type {kind}")
        item_kind, count = self._unpack("IQ")
        if item_kind in SCALARS:  # numbers in one read
            dtype = np.dtype(SCALARS[item_kind]).newbyteorder(self._order)
            values = np.frombuffer(self._map, dtype, count, self._offset)
            self._offset += values.nbytes
            return values.tolist()
        return [self._value(item_kind) for _ in range(count)]

    def _tensor_info(self) -> tuple[str, tuple[int, ...], GGMLQuantizationType, int]:
        name = self._string()
        (dims,) = self._unpack("I")
        if dims > MAX_DIMS:
            raise ValueError(f"tensor {name} has {dims} dimensions; ggml has at most {MAX_DIMS}")
        shape = self._unpack("Q" * dims)[::-1]
        kind, offset = self._unpack("IQ")
        return name, shape, GGMLQuantizationType(kind), offset

    def _tensor(self, data_start: int, name: str, shape: tuple[int, ...], kind: GGMLQuantizationType,
                offset: int) -> GGUFTensor:
        if kind in ELEMENT_TYPES:
            dtype, data_shape = np.dtype(ELEMENT_TYPES[kind]).newbyteorder(self._order), shape
        else:
            dtype, data_shape = np.dtype(np.uint8), quant_shape_to_byte_shape(shape, kind)
        block_size, block_bytes = GGML_QUANT_SIZES[kind]
        count = int(np.prod(shape, dtype=np.int64)) * block_bytes // block_size // dtype.itemsize
        data = np.frombuffer(self._map, dtype, count, data_start + offset).reshape(data_shape)
        return GGUFTensor(name, kind, shape, data)
