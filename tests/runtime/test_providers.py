"""Providers: the CPU is always there; a missing one is an error that names what to install."""

import dataclasses
import importlib.util

import onnxruntime as ort
import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.model_format import Manifest
from llama_ort.runtime.providers import PROVIDERS, get_provider
from llama_ort.runtime.session import check_graph_capture, load_model


def test_the_cpu_session_runs_on_the_cpu(tiny):
    model = load_model(tiny.folder)
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    assert model.is_static is False


@pytest.mark.parametrize("name, install", [("cuda", "pip install onnxruntime-gpu"),
                                           ("dml", "pip install onnxruntime-directml")])
def test_a_provider_missing_from_onnxruntime_names_its_package(tiny, name, install):
    if PROVIDERS[name].ep in ort.get_available_providers():
        pytest.skip(f"this onnxruntime has {name}")
    with pytest.raises(LlamaOrtError, match=f"--provider {name}: this onnxruntime has no .*{install}"):
        load_model(tiny.folder, name)


def test_a_missing_plugin_names_its_package(tiny):
    if importlib.util.find_spec("onnxruntime_ep_webgpu"):
        pytest.skip("onnxruntime-ep-webgpu is installed")
    with pytest.raises(LlamaOrtError, match="--provider webgpu: the plugin is not installed; "
                                            "install it with `pip install onnxruntime-ep-webgpu`"):
        load_model(tiny.folder, "webgpu")


def test_an_unknown_provider_lists_the_known_ones():
    with pytest.raises(LlamaOrtError, match="unknown provider 'tpu'; choose one of cpu, cuda, dml, webgpu"):
        get_provider("tpu")


@pytest.mark.parametrize("setup, message", [
    (lambda folder: None, "no such model folder"),
    (lambda folder: folder.mkdir(), "not a llama-ort model folder"),
])
def test_a_folder_that_is_not_a_model_is_refused(tmp_path, setup, message):
    folder = tmp_path / "nothing-here"
    setup(folder)
    with pytest.raises(LlamaOrtError, match=message):
        load_model(folder)


@pytest.mark.parametrize("target, layout, capturable", [("cuda", "single", True), ("cuda", "merged", False),
                                                        ("cpu", "single", False), ("webgpu", "merged", False)])
def test_cuda_graphs_capture_only_a_model_without_control_flow_or_host_reads(tiny, target, layout, capturable):
    manifest = dataclasses.replace(Manifest.load(tiny.folder), target=target, layout=layout)
    if capturable:
        check_graph_capture(PROVIDERS["cuda"], manifest, max_seq_len=64)
        return
    with pytest.raises(LlamaOrtError, match=f"--cuda-graph: a CUDA graph cannot capture a model built for {target} "
                                            f"in the {layout} layout: build it with --target cuda"):
        check_graph_capture(PROVIDERS["cuda"], manifest, max_seq_len=64)
