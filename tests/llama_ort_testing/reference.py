"""The oracle for correctness: transformers' LlamaForCausalLM on the same weights, and a plain
onnxruntime stepper (numpy feeds, no IO binding) to drive built models in graph tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort

from llama_ort import model_format as io
from llama_ort.checkpoint import names
from llama_ort.checkpoint.memory import MemoryCheckpoint
from llama_ort.checkpoint.spec import ModelSpec
from llama_ort.graph.rope import prompt_rotary_feeds


def random_checkpoint(spec: ModelSpec, seed: int = 0) -> MemoryCheckpoint:
    """Seeded random weights: projections N(0, 0.05), norms around 1."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name in names.canonical_names(spec.num_layers, spec.tie_word_embeddings):
        shape = names.expected_shape(name, spec)
        scale, center = (0.1, 1.0) if len(shape) == 1 else (0.05, 0.0)
        tensors[name] = (center + scale * rng.standard_normal(shape)).astype(np.float32)
    return MemoryCheckpoint(spec, tensors)


def hf_config(spec: ModelSpec):
    from transformers import LlamaConfig

    rope = {"rope_type": "default", "rope_theta": spec.rope_theta}
    if spec.rope_scaling:
        s = spec.rope_scaling
        rope = {"rope_type": s.kind, "rope_theta": spec.rope_theta, "factor": s.factor}
        if s.kind == "llama3":
            rope.update(low_freq_factor=s.low_freq_factor, high_freq_factor=s.high_freq_factor,
                        original_max_position_embeddings=s.original_max_position_embeddings)
    return LlamaConfig(
        vocab_size=spec.vocab_size, hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads, head_dim=spec.head_dim, rms_norm_eps=spec.rms_norm_eps,
        rope_parameters=rope, tie_word_embeddings=spec.tie_word_embeddings,
        max_position_embeddings=spec.context_length, bos_token_id=spec.bos_token_id,
        eos_token_id=list(spec.eos_token_ids))


def hf_model(checkpoint):
    """LlamaForCausalLM (fp32, eval) holding the checkpoint's weights."""
    import torch
    from transformers import LlamaForCausalLM

    spec = checkpoint.spec
    model = LlamaForCausalLM(hf_config(spec)).eval()
    state = {name: torch.from_numpy(np.array(checkpoint.read(name), np.float32))
             for name in names.canonical_names(spec.num_layers, spec.tie_word_embeddings)}
    if spec.tie_word_embeddings:
        state[names.LM_HEAD] = state[names.EMBED]
    model.load_state_dict(state, strict=True)
    return model


def hf_last_logits(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].float().numpy()


class Stepper:
    """Runs a built model folder step by step with numpy feeds, feeding outputs back as the next inputs."""

    def __init__(self, folder, max_seq_len: int, providers=("CPUExecutionProvider",), session=None):
        """session: one already made for the model with max_seq_len fixed (else one on `providers`)."""
        self.manifest = io.Manifest.load(folder)
        self.spec = ModelSpec.from_dict(self.manifest.spec)
        if session is None:
            options = ort.SessionOptions()
            options.add_free_dimension_override_by_name(io.MAX_SEQ_LEN, max_seq_len)
            session = ort.InferenceSession(str(folder / self.manifest.model_file), options, providers=list(providers))
        self.session = session
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.max_seq_len = max_seq_len

    def start(self, prompts: list[list[int]]) -> dict:
        """Run right-padded prompts; returns the outputs by name."""
        batch, longest = len(prompts), max(map(len, prompts))
        self.index_dtype = np.dtype(self.manifest.index_dtype)
        ids = np.zeros((batch, longest), self.index_dtype)
        self.mask = np.zeros((batch, self.max_seq_len), self.index_dtype)
        for row, prompt in enumerate(prompts):
            ids[row, : len(prompt)] = prompt
            self.mask[row, : len(prompt)] = 1
        dtype = np.dtype(self.manifest.kv_dtype)
        shape = (batch, self.spec.num_kv_heads, self.max_seq_len, self.spec.head_dim)
        self.cache = {}
        for i in range(self.spec.num_layers):
            self.cache[io.past_key(i)] = np.zeros(shape, dtype)
            self.cache[io.past_value(i)] = np.zeros(shape, dtype)
        if self.manifest.rotary_io:  # the prompt's are computed here; each step's come out of the one before
            lengths = [len(p) for p in prompts]
            self.cache.update(prompt_rotary_feeds(self.spec, lengths, lengths, dtype))
        return self._run(ids)

    def step(self, tokens: list[int]) -> dict:
        return self._run(np.array(tokens, self.index_dtype)[:, None])

    def _run(self, ids: np.ndarray) -> dict:
        out = dict(zip(self.output_names, self.session.run(None, {io.INPUT_IDS: ids, io.ATTENTION_MASK: self.mask,
                                                                   **self.cache})))
        self.mask = out[io.NEXT_ATTENTION_MASK]
        if self.manifest.rotary_io:
            self.cache.update({io.COS: out[io.NEXT_COS], io.SIN: out[io.NEXT_SIN]})
        for i in range(self.spec.num_layers):
            self.cache[io.past_key(i)] = out[io.present_key(i)]
            self.cache[io.past_value(i)] = out[io.present_value(i)]
        return out


def tiny_spec(**overrides) -> ModelSpec:
    base = dict(num_layers=2, hidden_size=64, num_heads=4, num_kv_heads=2, intermediate_size=96, vocab_size=128,
                context_length=256)
    base.update(overrides)
    return ModelSpec(**base)


def replace(spec: ModelSpec, **changes) -> ModelSpec:
    return dataclasses.replace(spec, **changes)
