"""The systems a benchmark compares, one small class each: how to build a variant, and how to run it.

A peer names its variants (precision, flavor), says why it cannot run here when it cannot (`missing`), gives
the command that builds a variant (run and measured by the harness), and opens a runner for it inside a
worker process. A runner's `generate(prompts, new_tokens)` decodes greedily, ignoring EOS, and times it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .results import Timing
from .workload import Workload

PYTHON = sys.executable
CUDA_GRAPH = "cuda graph"  # the flavor of a row run with CUDA graphs


def slug(text: str) -> str:
    """A file name from a label: "llama.cpp Q4_1" -> "llamacpp-q4_1", "int4 --block-size 16" -> "int4-block-size-16"."""
    words = re.findall(r"[a-z0-9_]+", text.lower().replace(".", ""))
    return "-".join(words)


@dataclass(frozen=True)
class Variant:
    peer: str
    precision: str  # fp32, fp16, int4 (llama.cpp: its GGUF type, e.g. Q4_1)
    flavor: str = ""  # what else tells two rows of one peer apart: "compile", "cuda graph", build arguments
    target: str = "cpu"
    build_args: tuple[str, ...] = ()  # extra arguments to the peer's build command

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.peer, self.precision, self.flavor) if part)

    @property
    def graphed(self) -> bool:
        """Run with CUDA graphs: the flavor is "cuda graph", or ends so after build arguments."""
        return self.flavor.endswith(CUDA_GRAPH)

    @property
    def build_key(self) -> str:
        """Variants with one key share a build (e.g. genai with and without its CUDA graph)."""
        return slug(" ".join((self.peer, self.target, self.precision, *self.build_args)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Variant:
        return cls(**{**d, "build_args": tuple(d.get("build_args", ()))})


@dataclass
class Inputs:
    """The files a variant runs from, as the harness prepared them."""

    built: str | None = None  # the build's output folder
    checkpoint: str | None = None  # what llama-ort builds from; None: the embedded model
    hf_folder: str | None = None
    gguf: str | None = None


class Peer:
    name: str
    # The package that must be importable, and how to get it
    package: str | None = None
    install: str = ""

    def missing(self, workload: Workload) -> str | None:
        """Why this peer cannot run here, or None."""
        if self.package and importlib.util.find_spec(self.package) is None:
            return f"{self.package} is not installed ({self.install})"
        return None

    def variants(self, precisions: tuple[str, ...], workload: Workload) -> list[tuple[Variant, str | None]]:
        """(variant, why it does not apply or None) for each requested precision."""
        raise NotImplementedError

    def inputs(self, variant: Variant, sources) -> Inputs:
        """The files this peer reads, made from the benchmark's model (a Sources) on first use."""
        return Inputs(hf_folder=str(sources.hf_folder()))

    def build_command(self, variant: Variant, inputs: Inputs, out: Path, scratch: Path) -> list[str] | None:
        """The command that writes the variant's model to `out` (None: nothing to build)."""
        return None

    def open(self, variant: Variant, inputs: Inputs, workload: Workload):
        """A runner with `generate(prompts, new_tokens) -> Timing` and `max_batch` (None: any)."""
        raise NotImplementedError


def synchronize(device: str) -> None:
    """Wait for the GPU, so that a timestamp means the work is done (torch only; the others block)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# -- llama-ort --------------------------------------------------------------------------------------------------


class LlamaOrt(Peer):
    name = "llama-ort"

    def variants(self, precisions, workload):
        if workload.device != "cuda":
            return [(Variant(self.name, p, target=workload.device), None) for p in precisions]
        from ..runtime.providers import PROVIDERS

        # On a GPU, also the portable path: the webgpu model (the seed's merged layout) on the same card.
        webgpu, webgpu_missing = PROVIDERS["webgpu"], None
        if importlib.util.find_spec(webgpu.plugin) is None:
            webgpu_missing = f"the WebGPU plugin is not installed ({webgpu.install})"
        found = []
        for p in precisions:
            found += [(Variant(self.name, p, "", "cuda"), None), (Variant(self.name, p, CUDA_GRAPH, "cuda"), None),
                      (Variant(self.name, p, "webgpu", "webgpu"), webgpu_missing)]
        return found

    def custom_variants(self, spec: str, workload: Workload) -> list[Variant]:
        """`"int4 --block-size 128"`: a precision, then more `llama-ort optimize` arguments; on a GPU, run with and
        without CUDA graphs, like the built-in variants."""
        precision, *args = spec.split()
        flavor = " ".join(args)
        found = [Variant(self.name, precision, flavor, workload.device, tuple(args))]
        if workload.device == "cuda":
            graphed = ", ".join(part for part in (flavor, CUDA_GRAPH) if part)
            found.append(Variant(self.name, precision, graphed, "cuda", tuple(args)))
        return found

    def inputs(self, variant, sources):
        return Inputs(checkpoint=None if sources.checkpoint is None else str(sources.checkpoint))

    def build_command(self, variant, inputs, out, scratch):
        source = [inputs.checkpoint] if inputs.checkpoint else []
        return [PYTHON, "-m", "llama_ort", "optimize", *source, "--output", str(out),
                "--target", variant.target, "--precision", variant.precision, "--no-verify",
                "--cache-dir", str(scratch), *variant.build_args]

    def open(self, variant, inputs, workload):
        # A target's model runs on the provider of the same name (cpu, cuda, webgpu).
        return LlamaOrtRunner(Path(inputs.built), workload, variant.target, graph=variant.graphed)


class LlamaOrtRunner:
    """Our runtime's greedy generation (llama_ort.runtime): a static cache of the workload's length, updated in
    place; one token id per row reaches the host each step."""

    max_batch = None

    def __init__(self, folder: Path, workload: Workload, provider: str, graph: bool = False):
        from ..runtime import load_model

        self.model = load_model(folder, provider, max_seq_len=workload.max_seq_len(), graph=graph,
                                threads=workload.threads)

    def generate(self, prompts, new_tokens):
        from ..runtime.binding import DecoderBinding
        from ..runtime.generate import generate_step, prefill
        from ..runtime.sampling import Sampler, SamplingParams

        binding = DecoderBinding(self.model, len(prompts), self.model.max_seq_len)
        start = time.perf_counter()
        prefill(binding, prompts)
        binding.take_argmax()
        prefill_s = time.perf_counter() - start
        del binding

        first = None
        start = time.perf_counter()
        for _ in generate_step(self.model, prompts, new_tokens, Sampler(SamplingParams())):
            first = first or time.perf_counter() - start
        return Timing(prefill_s, first, time.perf_counter() - start)


# -- onnxruntime-genai ------------------------------------------------------------------------------------------


class OrtGenai(Peer):
    name = "onnxruntime-genai"
    package = "onnxruntime_genai"
    install = "pip install onnxruntime-genai (onnxruntime-genai-cuda for CUDA)"

    def missing(self, workload):
        reason = super().missing(workload)
        if reason or workload.device != "cuda":
            return reason
        import onnxruntime_genai as og

        if og.is_cuda_available():
            return None
        return "this onnxruntime-genai has no CUDA (pip install onnxruntime-genai-cuda)"

    def variants(self, precisions, workload):
        found = []
        for p in precisions:
            why = None if p in ("fp32", "fp16", "int4") else f"its builder has no {p}"
            found.append((Variant(self.name, p, target=workload.device), why))
            if workload.device == "cuda":
                found.append((Variant(self.name, p, CUDA_GRAPH, workload.device), why))
        return found

    def build_command(self, variant, inputs, out, scratch):
        command = [PYTHON, "-m", "onnxruntime_genai.models.builder", "-i", inputs.hf_folder or "", "-o", str(out),
                   "-p", variant.precision, "-e", variant.target, "-c", str(scratch)]
        if variant.precision == "int4":  # its defaults, written out so the report says what was built
            command += ["--extra_options", "block_size=32", "accuracy_level=4" if variant.target == "cpu" else
                        "accuracy_level=0"]
        return command

    def open(self, variant, inputs, workload):
        return GenaiRunner(Path(inputs.built), variant, workload)


class GenaiRunner:
    max_batch = None

    def __init__(self, folder: Path, variant: Variant, workload: Workload):
        import onnxruntime_genai as og

        self.og = og
        config = og.Config(str(folder))
        if variant.target == "cuda":
            config.clear_providers()
            config.append_provider("cuda")
            config.set_provider_option("cuda", "enable_cuda_graph", "1" if variant.graphed else "0")
        if workload.threads:
            options = {"intra_op_num_threads": workload.threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.model = og.Model(config)

    def _generator(self, batch: int, length: int, new_tokens: int):
        params = self.og.GeneratorParams(self.model)
        # min_length keeps it from stopping at EOS; max_length sizes its KV cache
        params.set_search_options(do_sample=False, batch_size=batch, max_length=length + new_tokens,
                                  min_length=length + new_tokens)
        return self.og.Generator(self.model, params)

    def generate(self, prompts, new_tokens):
        ids = np.asarray(prompts, np.int32)
        generator = self._generator(len(prompts), ids.shape[1], new_tokens)
        start = time.perf_counter()
        generator.append_tokens(ids)  # runs the prompt
        prefill_s = time.perf_counter() - start
        del generator

        start = time.perf_counter()
        generator = self._generator(len(prompts), ids.shape[1], new_tokens)
        generator.append_tokens(ids)
        generator.generate_next_token()  # picks from the prompt's logits; each later call runs one step first
        generator.get_next_tokens()
        first = time.perf_counter() - start
        for _ in range(1, new_tokens):
            generator.generate_next_token()
            generator.get_next_tokens()
        return Timing(prefill_s, first, time.perf_counter() - start)


# -- Hugging Face transformers ----------------------------------------------------------------------------------

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class Transformers(Peer):
    name = "transformers"
    package = "transformers"
    install = "pip install -e '.[torch]'"

    def missing(self, workload):
        reason = super().missing(workload) or (None if importlib.util.find_spec("torch") else "torch is not installed")
        if reason or workload.device != "cuda":
            return reason
        import torch

        return None if torch.cuda.is_available() else "this torch has no CUDA device"

    def variants(self, precisions, workload):
        found = []
        for p in precisions:
            why = None if p in TORCH_DTYPES else f"no {p} path without extra quantization packages"
            found += [(Variant(self.name, p, "eager", workload.device), why),
                      (Variant(self.name, p, "compile", workload.device), why)]
        return found

    def open(self, variant, inputs, workload):
        return TransformersRunner(Path(inputs.hf_folder), variant, workload)


class TransformersRunner:
    """generate() with a stopping criterion that never stops but notes when each token is out."""

    max_batch = None

    def __init__(self, folder: Path, variant: Variant, workload: Workload):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        if workload.threads:
            torch.set_num_threads(workload.threads)
        self.device = workload.device
        dtype = getattr(torch, TORCH_DTYPES[variant.precision])
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(self.device).eval()
        self.generate_options = {}
        if variant.flavor == "compile":
            # A static cache gives the compiled forward fixed shapes; CUDA graphs only on the GPU.
            mode = "reduce-overhead" if self.device == "cuda" else "default"
            self.model.forward = torch.compile(self.model.forward, mode=mode, fullgraph=True)
            self.generate_options = {"cache_implementation": "static"}

    def generate(self, prompts, new_tokens):
        from transformers import StoppingCriteria, StoppingCriteriaList

        torch, device = self.torch, self.device
        ids = torch.tensor(prompts, device=device)
        with torch.inference_mode():
            start = time.perf_counter()
            self.model(ids)
            synchronize(device)
            prefill_s = time.perf_counter() - start

        stamps: list[float] = []

        class Stamp(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                synchronize(device)
                stamps.append(time.perf_counter())
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        start = time.perf_counter()
        self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new_tokens,
                            min_new_tokens=new_tokens, stopping_criteria=StoppingCriteriaList([Stamp()]),
                            pad_token_id=0, **self.generate_options)
        return Timing(prefill_s, stamps[0] - start, stamps[-1] - start)


# -- llama.cpp --------------------------------------------------------------------------------------------------

GGUF_TYPES = {"fp32": "F32", "fp16": "F16", "int4": "Q4_1"}


class LlamaCpp(Peer):
    name = "llama.cpp"
    package = "llama_cpp"
    install = 'CMAKE_ARGS="-DGGML_NATIVE=ON" pip install llama-cpp-python'

    def missing(self, workload):
        if workload.device != "cpu":
            return "runs on the CPU in this harness (llama-cpp-python's CPU build)"
        return super().missing(workload)

    def variants(self, precisions, workload):
        return [(Variant(self.name, GGUF_TYPES.get(p, p), target="cpu"),
                 None if p in GGUF_TYPES else f"no GGUF type for {p}") for p in precisions]

    def inputs(self, variant, sources):
        return Inputs(gguf=str(sources.gguf(variant.precision)))

    def open(self, variant, inputs, workload):
        return LlamaCppRunner(Path(inputs.gguf), workload)


def has_vocabulary(gguf: Path) -> bool:
    import gguf as gguf_package

    return "tokenizer.ggml.model" in gguf_package.GGUFReader(gguf).fields


class LlamaCppRunner:
    """llama-cpp-python's low-level loop: eval the prompt, then one token at a time, picking the argmax."""

    max_batch = 1  # one sequence per context in llama-cpp-python's API

    def __init__(self, gguf: Path, workload: Workload):
        from llama_cpp import Llama

        threads = workload.threads or None
        # A GGUF converted from another format has no vocabulary: llama.cpp then needs to be told there is none.
        overrides = None if has_vocabulary(gguf) else {"tokenizer.ggml.model": "none"}
        self.llm = Llama(model_path=str(gguf), n_ctx=workload.max_seq_len(), n_batch=max(workload.prompt_lengths),
                         n_threads=threads, n_threads_batch=threads, kv_overrides=overrides, verbose=False)

    def _last_argmax(self) -> int:
        """The argmax of the last evaluated token's logits, read in place (Llama.scores stays empty unless
        every position's logits are kept)."""
        import llama_cpp

        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.llm.n_vocab(),))
        return int(logits.argmax())

    def _prefill(self, prompt: list[int]) -> int:
        self.llm.reset()
        self.llm.eval(prompt)
        return self._last_argmax()

    def generate(self, prompts, new_tokens):
        start = time.perf_counter()
        self._prefill(prompts[0])
        prefill_s = time.perf_counter() - start

        start = time.perf_counter()
        token = self._prefill(prompts[0])
        first = time.perf_counter() - start
        for _ in range(1, new_tokens):
            self.llm.eval([token])
            token = self._last_argmax()
        return Timing(prefill_s, first, time.perf_counter() - start)


PEERS = {peer.name: peer for peer in (LlamaOrt(), OrtGenai(), Transformers(), LlamaCpp())}
