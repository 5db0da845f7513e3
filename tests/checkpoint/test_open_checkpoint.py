"""open_checkpoint picks the reader from what a path holds; the torch-free formats stay torch-free."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import llama_ort
from llama_ort.checkpoint import open_checkpoint


def test_dispatch(tiny_hf, tiny_meta, tiny_gguf, tmp_path):
    assert open_checkpoint(tiny_hf).format == "hf"
    assert open_checkpoint(tiny_meta).format == "meta"
    assert open_checkpoint(tiny_gguf).format == "gguf"
    folder = tmp_path / "one-gguf"
    folder.mkdir()
    shutil.copy(tiny_gguf, folder)
    assert open_checkpoint(folder).format == "gguf"


def test_default_is_the_embedded_model(embedded_gguf):
    with open_checkpoint() as checkpoint:
        assert checkpoint.path == embedded_gguf and checkpoint.spec.num_layers == 30


@pytest.mark.parametrize("fixture", ["tiny_hf", "tiny_gguf"])
def test_reading_hf_and_gguf_never_imports_torch(fixture, request):
    """The build and run paths must work where torch is not installed."""
    path = request.getfixturevalue(fixture)
    code = ("import sys\nfrom llama_ort.checkpoint import open_checkpoint\n"
            f"list(open_checkpoint({str(path)!r}).tensors())\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(Path(llama_ort.__file__).parents[1])})
    assert done.returncode == 0, done.stderr
