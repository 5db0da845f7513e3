"""GGUFFile reads what gguf's own GGUFReader reads: every metadata value and every tensor view, byte for byte."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from llama_ort.checkpoint.gguf_file import GGUFFile
from llama_ort.checkpoint.random import random_tensors, write_gguf


def assert_reads_as_gguf_does(path, flattened: tuple[str, ...] = ()):
    """`flattened`: keys of arrays of arrays, which GGUFReader flattens into one list (and GGUFFile does not)."""
    ours, theirs = GGUFFile(path), gguf.GGUFReader(path)
    expected = {key: field.contents() for key, field in theirs.fields.items() if not key.startswith("GGUF.")}
    assert list(ours.fields) == list(expected)
    for key, value in expected.items():
        mine = sum(ours.fields[key], []) if key in flattened else ours.fields[key]
        assert mine == value and type(mine) is type(value), key
    assert [t.name for t in ours.tensors] == [t.name for t in theirs.tensors]
    for mine, reference in zip(ours.tensors, theirs.tensors):
        assert mine.tensor_type == reference.tensor_type, mine.name
        assert mine.shape == tuple(reversed(reference.shape.tolist())), mine.name
        assert mine.data.shape == reference.data.shape and mine.data.dtype == reference.data.dtype, mine.name
        np.testing.assert_array_equal(mine.data, reference.data, err_msg=mine.name)


def test_the_embedded_model(embedded_gguf):
    """Its vocabulary (49,152 strings, 48,900 merges, a token type each) and Q4_1, Q6_K and F32 tensors."""
    assert_reads_as_gguf_does(embedded_gguf)


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_1"])
def test_tensor_types(tiny_spec, tmp_path, dtype):
    path = tmp_path / f"tiny-{dtype}.gguf"
    write_gguf(tiny_spec, path, random_tensors(tiny_spec, 0), dtype)
    assert_reads_as_gguf_does(path)


def test_big_endian_file_and_every_value_type(tmp_path):
    path = tmp_path / "big.gguf"
    writer = gguf.GGUFWriter(path, "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_uint8("t.u8", 200)
    writer.add_int16("t.i16", -300)
    writer.add_uint64("t.u64", 1 << 40)
    writer.add_float64("t.f64", 0.125)
    writer.add_bool("t.bool", True)
    writer.add_array("t.floats", [0.5, -1.5])
    writer.add_array("t.strings", ["a", "ü", ""])
    writer.add_array("t.nested", [[1, 2], [3]])
    writer.add_tensor("w", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert_reads_as_gguf_does(path, flattened=("t.nested",))
    ours = GGUFFile(path)
    assert ours.fields["t.nested"] == [[1, 2], [3]] and ours.fields["t.strings"] == ["a", "ü", ""]
    np.testing.assert_array_equal(ours.tensors[0].data, np.arange(12, dtype=np.float32).reshape(3, 4))
