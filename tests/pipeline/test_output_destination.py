"""`optimize --output PATH` where PATH cannot be written fails at once, before any pass runs: one line, exit 2,
nothing written (today's main found out after the build and the verify).

The tests run as root, which writes through any permission bits: a real unwritable folder is tested only when
they do not (test_a_folder_without_write_permission); as root, a stand-in for os.access says "not writable" and
shows that optimize asks before any pass runs. A read-only filesystem answers os.access likewise for root.
"""

import os

import pytest

from llama_ort.checkpoint.random import random_tensors, write_hf
from llama_ort.cli import main
from llama_ort.pipeline import run as pipeline_run


@pytest.fixture
def checkpoint(tiny_spec, tmp_path):
    folder = tmp_path / "hf"
    write_hf(tiny_spec, folder, random_tensors(tiny_spec, 0))
    return folder


@pytest.fixture
def no_pass_may_run(monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("a pass ran before the output was checked")

    for name in ("run_load", "run_build", "run_verify"):
        monkeypatch.setattr(pipeline_run, name, explode)


def optimize_error(capsys, checkpoint, output, cache) -> str:
    assert main(["optimize", str(checkpoint), "--output", str(output), "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not cache.exists()  # nothing ran, nothing was written
    return err.rstrip("\n")


@pytest.mark.parametrize("below", ["model", "deeper/model"])
def test_an_output_below_a_file(capsys, tmp_path, checkpoint, no_pass_may_run, below):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    output = a_file / below
    assert optimize_error(capsys, checkpoint, output, tmp_path / "cache") == \
        f"llama-ort: error: --output: {output} cannot be written: {a_file} is not a folder; give another path"
    assert a_file.read_text() == "mine"


def test_an_output_in_a_folder_that_is_not_writable(capsys, tmp_path, checkpoint, no_pass_may_run, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access
    monkeypatch.setattr(pipeline_run.os, "access", lambda path, mode: access(path, mode) and path != locked)
    output = locked / "new" / "model"
    assert optimize_error(capsys, checkpoint, output, tmp_path / "cache") == \
        (f"llama-ort: error: --output: {output} cannot be written: {locked} is not writable (permissions, or a "
         "read-only filesystem); give another path")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes through permission bits")
def test_a_folder_without_write_permission(capsys, tmp_path, checkpoint, no_pass_may_run):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert "is not writable" in optimize_error(capsys, checkpoint, locked / "model", tmp_path / "cache")
