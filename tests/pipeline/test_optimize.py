"""The optimize pipeline: cached passes, --clean-cache, atomic output, bad options (corrupted entries and copies out
of the cache: test_cache_copies.py)."""

import logging
import re
import subprocess
import sys

import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.graph import llama as graph_llama
from llama_ort.graph.llama import BuildOptions
from llama_ort.checkpoint.random import write_hf
from llama_ort.quant.options import QuantOptions
from llama_ort.model_format import Manifest
from llama_ort.pipeline import default_output_name, optimize
from llama_ort_testing.reference import random_checkpoint, tiny_spec


@pytest.fixture
def checkpoint():
    return random_checkpoint(tiny_spec(), seed=7)


def run(checkpoint, tmp_path, **kwargs):
    options = kwargs.pop("options", BuildOptions(precision="fp32"))
    return optimize(None, tmp_path / "out", options, tmp_path / "cache", checkpoint=checkpoint,
                    **{"show_progress": False, **kwargs})


def test_rerun_takes_every_pass_from_the_cache(tmp_path, checkpoint, caplog):
    first = run(checkpoint, tmp_path)
    assert first.cached == {"load": False, "build": False, "verify": False}
    model = (tmp_path / "out" / "decoder_model.onnx").read_bytes()
    caplog.set_level(logging.INFO, logger="llama_ort.pipeline")
    second = run(checkpoint, tmp_path)
    assert second.cached == {"load": True, "build": True, "verify": True}
    assert "build: taken from the cache" in caplog.text
    assert (tmp_path / "out" / "decoder_model.onnx").read_bytes() == model
    assert first.verify_report["cosine"] > 0.99999


def test_other_options_miss_the_build_cache_but_not_load(tmp_path, checkpoint):
    run(checkpoint, tmp_path)
    result = run(checkpoint, tmp_path, options=BuildOptions(precision="int4"))
    assert result.cached == {"load": True, "build": False, "verify": False}


def test_clean_cache_rebuilds(tmp_path, checkpoint):
    run(checkpoint, tmp_path)
    assert run(checkpoint, tmp_path, clean_cache=True).cached["build"] is False


def test_interrupted_build_leaves_no_output_and_no_cache_entry(tmp_path, checkpoint, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(graph_llama, "make_model", explode)
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint, tmp_path)
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache").glob("build/*"))
    assert not list((tmp_path / "cache" / "tmp").iterdir())


@pytest.mark.parametrize("options, message", [
    (BuildOptions(precision="int8"), "unknown precision"),
    (BuildOptions(target="tpu"), "unknown target"),
    (BuildOptions(layout="zigzag"), "unknown layout"),
])
def test_bad_options_are_clear_errors(tmp_path, checkpoint, options, message):
    with pytest.raises(LlamaOrtError, match=message):
        run(checkpoint, tmp_path, options=options)


def test_the_embedded_model_is_built_where_optimize_puts_it_when_missing(tmp_path, monkeypatch):
    from llama_ort.pipeline import embedded_model_folder
    from llama_ort.pipeline import run as pipeline_run

    built = []
    monkeypatch.setattr(pipeline_run, "optimize", lambda *args: built.append(args))
    folder = embedded_model_folder("cpu", models_dir=tmp_path / "models", cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "models" / "smollm2-135m-instruct-cpu-fp32"
    (source, output, options, cache_dir), = built
    assert (source, output, cache_dir) == (None, folder, tmp_path / "cache")
    assert (options.target, options.precision) == ("cpu", "fp32")


def test_an_output_that_is_not_a_model_folder_is_never_replaced(tmp_path, checkpoint):
    notes = tmp_path / "out" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine")
    with pytest.raises(LlamaOrtError, match="is not a llama-ort model folder"):
        run(checkpoint, tmp_path)
    assert notes.read_text() == "mine"
    notes.unlink()
    (tmp_path / "out").rmdir()
    (tmp_path / "out").write_text("a file")
    with pytest.raises(LlamaOrtError, match="is a file"):
        run(checkpoint, tmp_path)
    assert (tmp_path / "out").read_text() == "a file"


def test_a_model_folder_and_an_empty_folder_are_replaced(tmp_path, checkpoint):
    (tmp_path / "out").mkdir()
    run(checkpoint, tmp_path)
    run(checkpoint, tmp_path, options=BuildOptions(precision="fp16"))
    assert Manifest.load(tmp_path / "out").precision == "fp16"


def test_the_checkpoint_folder_is_never_the_output(tmp_path, checkpoint):
    folder = tmp_path / "hf"
    write_hf(checkpoint.spec, folder, checkpoint.tensors())
    for output in (folder, tmp_path):
        with pytest.raises(LlamaOrtError, match="holds the checkpoint being built"):
            optimize(folder, output, BuildOptions(), tmp_path / "cache", show_progress=False)
    assert (folder / "config.json").exists()


def test_num_layers_outside_the_checkpoint_is_an_error(tmp_path, checkpoint):
    with pytest.raises(LlamaOrtError, match="--num-layers: 5 is not between 1 and the checkpoint's 2 layers"):
        run(checkpoint, tmp_path, options=BuildOptions(num_layers=5))


def test_default_names_show_options_off_their_defaults():
    assert default_output_name(None, BuildOptions()) == "smollm2-135m-instruct-cpu-fp32"
    assert default_output_name("models/Llama-2-7b.Q4_0.gguf", BuildOptions(target="cuda", precision="int4")) == \
        "llama-2-7b-cuda-int4"
    debug = BuildOptions(precision="int4", layout="merged", num_layers=2,
                         quant=QuantOptions(block_size=128, embeddings="float"))
    assert default_output_name(None, debug) == \
        "smollm2-135m-instruct-cpu-int4-merged-2layers-block128-embeddings-float"


def test_scratch_left_by_a_killed_run_is_removed_by_the_next(tmp_path, checkpoint):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = tmp_path / "cache" / "tmp" / f"build-{done.stdout.strip()}-0123abcd"
    abandoned.mkdir(parents=True)
    (abandoned / "decoder_model.onnx.data").write_bytes(b"half")
    run(checkpoint, tmp_path)
    assert not abandoned.exists()


def test_every_pass_shows_its_progress_unless_told_not_to(tmp_path, checkpoint, capfd):
    run(checkpoint, tmp_path)  # show_progress=False
    assert "━" not in capfd.readouterr().err
    run(checkpoint, tmp_path, clean_cache=True, show_progress=True)
    err = capfd.readouterr().err  # not a terminal: each bar is printed once, as it ends
    for pass_name in ("load", "build", "verify"):
        assert re.search(rf"^{pass_name} done ━+ (\d+)/\1 ", err, re.MULTILINE), err
