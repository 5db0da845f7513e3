"""Model folders and the build cache never share a file: the cache's files are read-only and handed out as copies,
and a cached file whose bytes are not the recorded ones (flipped on disk, even between the lookup and the copy) is
never handed out: its entry is built again.

The model is the tiny seeded random checkpoint (seed 7) built in fp32, as in test_optimize.py.
"""

import hashlib
import json
import logging
import os

import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.graph.llama import BuildOptions
from llama_ort.pipeline import cache as pipeline_cache
from llama_ort.pipeline import optimize
from llama_ort.pipeline.cache import Cache, copy_hashed
from llama_ort_testing.reference import Stepper, random_checkpoint, tiny_spec

DATA = "decoder_model.onnx.data"


@pytest.fixture
def checkpoint():
    return random_checkpoint(tiny_spec(), seed=7)


def run(checkpoint, tmp_path):
    return optimize(None, tmp_path / "out", BuildOptions(precision="fp32"), tmp_path / "cache",
                    checkpoint=checkpoint, show_progress=False)


def cached_file(tmp_path, pass_name: str, name: str):
    return next((tmp_path / "cache" / pass_name).glob(f"*/{name}"))


def flip_in_place(path, start: int, count: int = 4096) -> None:
    """Overwrite `count` bytes from `start` with their complement, in the file itself (as a failing disk or a stray
    write would: any other name for the same file sees the change)."""
    os.chmod(path, 0o644)  # the cache's files are read-only, which root ignores and other users do not
    with open(path, "r+b") as f:
        f.seek(start)
        data = f.read(count)
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in data))


def test_cache_files_are_read_only_and_no_model_file_is_one_of_them(tmp_path, checkpoint):
    run(checkpoint, tmp_path)
    cache_files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cache_files and all(p.stat().st_mode & 0o777 == 0o444 for p in cache_files)
    cache_inodes = {p.stat().st_ino for p in cache_files}
    model_files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {p.relative_to(tmp_path / "out").as_posix() for p in model_files} >= {DATA, "decoder_model.onnx",
                                                                                "llama-ort.json", "spec.json"}
    assert all(p.stat().st_ino not in cache_inodes and p.stat().st_nlink == 1 for p in model_files)
    assert all(os.access(p, os.W_OK) and p.stat().st_mode & 0o200 for p in model_files)


def test_editing_the_model_folder_leaves_the_cache_alone(tmp_path, checkpoint):
    run(checkpoint, tmp_path)
    original = (tmp_path / "out" / DATA).read_bytes()
    flip_in_place(tmp_path / "out" / DATA, 8192)
    entry = cached_file(tmp_path, "build", DATA)
    recorded = json.loads((entry.parent / "entry.json").read_text())["files"][DATA][1]
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == recorded
    assert run(checkpoint, tmp_path).cached == {"load": True, "build": True, "verify": True}
    assert (tmp_path / "out" / DATA).read_bytes() == original


@pytest.mark.parametrize("pass_name, name", [("build", DATA), ("load", "spec.json"), ("verify", "verify.json")])
def test_flipped_bytes_in_a_cached_file_are_never_handed_out(tmp_path, checkpoint, caplog, pass_name, name):
    run(checkpoint, tmp_path)
    model = {p.name: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    corrupted = cached_file(tmp_path, pass_name, name)
    flip_in_place(corrupted, corrupted.stat().st_size // 2, min(4096, corrupted.stat().st_size // 2))
    assert (tmp_path / "out" / DATA).read_bytes() == model[DATA]  # the model folder has its own copy
    caplog.set_level(logging.WARNING, logger="llama_ort.pipeline")
    result = run(checkpoint, tmp_path)
    assert f"{pass_name}: cache entry {corrupted.parent} is corrupt: {name} does not match its recorded sha256; " \
           "rebuilding it" in caplog.text
    assert result.cached == {"load": True, "build": True, "verify": True, pass_name: False}
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == model
    assert result.verify_report["cosine"] > 0.99999
    stepper = Stepper(tmp_path / "out", max_seq_len=16)
    assert stepper.start([[1, 2, 3]])["logits"].shape == (1, checkpoint.spec.vocab_size)


def test_a_file_corrupted_between_the_lookup_and_the_copy_is_caught(tmp_path, checkpoint, caplog, monkeypatch):
    run(checkpoint, tmp_path)
    model = (tmp_path / "out" / DATA).read_bytes()
    lookup = Cache.lookup

    def lookup_then_corrupt(cache, pass_name, key):
        found = lookup(cache, pass_name, key)
        if found and pass_name == "build":
            flip_in_place(found / DATA, 4096)
        return found

    monkeypatch.setattr(Cache, "lookup", lookup_then_corrupt)
    caplog.set_level(logging.WARNING, logger="llama_ort.pipeline")
    assert run(checkpoint, tmp_path).cached["build"] is False
    assert "is corrupt" in caplog.text
    assert (tmp_path / "out" / DATA).read_bytes() == model


def test_an_entry_that_changes_as_soon_as_it_is_written_is_an_error(tmp_path, checkpoint, monkeypatch):
    """A disk that corrupts what was just written: no retry loop, no output."""
    monkeypatch.setattr(pipeline_cache, "copy_hashed", lambda source, target: "0" * 64)
    with pytest.raises(LlamaOrtError, match="load: cache entry .* is corrupt: spec.json does not match its "
                                             "recorded sha256, just after it was written: check the disk"):
        run(checkpoint, tmp_path)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no scratch folder left beside the output


def test_a_reflink_is_hashed_as_it_landed(tmp_path, monkeypatch):
    """Where the filesystem clones files (Btrfs, XFS), the digest is of the clone's bytes, not the source's."""
    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 64)

    def clone_with_a_flip(src, dst) -> bool:
        data = bytearray(src.read())
        data[100] ^= 1
        dst.write(data)
        dst.flush()
        return True

    monkeypatch.setattr(pipeline_cache, "reflink", clone_with_a_flip)
    landed = (tmp_path / "target")
    assert copy_hashed(source, landed) == hashlib.sha256(landed.read_bytes()).hexdigest()
    assert landed.read_bytes() != source.read_bytes()
