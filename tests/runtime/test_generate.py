"""Greedy generation against transformers' generate(do_sample=False) on the same weights (fp32, CPU).

Static mode (max_seq_len fixed in the session), dynamic mode (the cache grows on the device as it fills),
and batches of prompts of different lengths, each row stopping at its own EOS.
"""


import logging

import numpy as np
import pytest

from llama_ort_testing.tiny_models import PROMPTS, SPEC, build, hf_greedy
from llama_ort.errors import LlamaOrtError
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.runtime.generate import GenerateOptions, generate_ids
from llama_ort.runtime.session import Model, load_model
from llama_ort_testing.reference import hf_last_logits, replace

NEW_TOKENS = 64


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_greedy_matches_transformers(tiny, mode):
    model = load_model(tiny.folder, max_seq_len=128 if mode == "static" else None)
    options = GenerateOptions(max_new_tokens=NEW_TOKENS, padding=16)
    for prompt in PROMPTS:
        [ours] = generate_ids(model, [prompt], options, tiny.spec.eos_token_ids)
        assert ours == hf_greedy(tiny, prompt, NEW_TOKENS), f"prompt {prompt}"


def test_some_rows_stop_at_eos_and_others_run_to_the_limit(tiny):
    lengths = {len(hf_greedy(tiny, prompt, NEW_TOKENS)) for prompt in PROMPTS}
    assert NEW_TOKENS in lengths and min(lengths) < NEW_TOKENS  # the test data covers both ways to stop


def test_ignore_eos_runs_to_max_new_tokens(tiny):
    model = load_model(tiny.folder)
    options = GenerateOptions(max_new_tokens=NEW_TOKENS, ignore_eos=True, padding=16)
    for prompt in PROMPTS:
        [ours] = generate_ids(model, [prompt], options, tiny.spec.eos_token_ids)
        assert ours == hf_greedy(tiny, prompt, NEW_TOKENS, stop_at_eos=False)


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_batched_rows_equal_each_prompt_alone(tiny, mode):
    model = load_model(tiny.folder, max_seq_len=128 if mode == "static" else None)
    options = GenerateOptions(max_new_tokens=NEW_TOKENS, padding=16)
    batched = generate_ids(model, PROMPTS, options, tiny.spec.eos_token_ids)
    for prompt, row in zip(PROMPTS, batched):
        assert row == hf_greedy(tiny, prompt, NEW_TOKENS)


def test_merged_layout_matches_too(tiny_merged):
    model = load_model(tiny_merged.folder, max_seq_len=96)
    options = GenerateOptions(max_new_tokens=NEW_TOKENS)
    batched = generate_ids(model, PROMPTS[:3], options, tiny_merged.spec.eos_token_ids)
    for prompt, row in zip(PROMPTS, batched):
        assert row == hf_greedy(tiny_merged, prompt, NEW_TOKENS)


def test_dynamic_cache_grows_several_times_past_its_first_size(tiny, monkeypatch):
    from llama_ort.runtime import binding

    sizes = []
    grow = binding.DecoderBinding.grow
    monkeypatch.setattr(binding.DecoderBinding, "grow", lambda self, n: (sizes.append((self.capacity, n)),
                                                                         grow(self, n)))
    model = load_model(tiny.folder)
    prompt = PROMPTS[0]
    [ours] = generate_ids(model, [prompt], GenerateOptions(max_new_tokens=100, ignore_eos=True, padding=8))
    assert ours == hf_greedy(tiny, prompt, 100, stop_at_eos=False)
    assert sizes[0] == (8, 16) and sizes[-1][1] >= 100 and len(sizes) >= 10


def test_static_mode_refuses_a_prompt_that_cannot_fit_before_any_work(tiny):
    model = load_model(tiny.folder, max_seq_len=32)
    with pytest.raises(LlamaOrtError, match=r"the prompt \(13 tokens\) plus max_new_tokens \(20\) needs 33 "
                                            r"positions, but the model was loaded with max_seq_len 32"):
        generate_ids(model, [PROMPTS[3]], GenerateOptions(max_new_tokens=20))
    assert generate_ids(model, [PROMPTS[3]], GenerateOptions(max_new_tokens=19, ignore_eos=True))[0] == \
        hf_greedy(tiny, PROMPTS[3], 19, stop_at_eos=False)


def test_static_max_seq_len_is_capped_at_the_context_length(tiny):
    assert load_model(tiny.folder, max_seq_len=100_000).max_seq_len == tiny.spec.context_length


def test_empty_prompt_is_refused(tiny):
    with pytest.raises(LlamaOrtError, match="prompt: is empty"):
        generate_ids(load_model(tiny.folder), [[1, 2], []], GenerateOptions())


def test_cache_positions_past_each_row_are_never_read(tiny, monkeypatch):
    """The cache starts uninitialized; fill it with NaN to show attention reads only what the mask marks."""
    allocate = Model.allocate

    def nan_filled(self, shape, dtype, on_host=False):
        value = allocate(self, shape, dtype, on_host)
        if np.dtype(dtype) == np.float32:
            value.numpy()[...] = np.nan  # on the CPU, numpy() is a view of the buffer
        return value

    monkeypatch.setattr(Model, "allocate", nan_filled)
    model = load_model(tiny.folder, max_seq_len=96)
    batched = generate_ids(model, PROMPTS[:3], GenerateOptions(max_new_tokens=24), tiny.spec.eos_token_ids)
    for prompt, row in zip(PROMPTS, batched):
        assert row == hf_greedy(tiny, prompt, NEW_TOKENS)[:24]


def test_past_the_context_length_the_oldest_tokens_slide_out_with_a_notice(tmp_path_factory, caplog):
    short = build(tmp_path_factory, replace(SPEC, context_length=40), "single")
    model = load_model(short.folder)
    prompt, new_tokens, keep = PROMPTS[1], 80, 20  # keep: SLIDE_KEEP of the context

    expected, history, context = [], list(prompt), list(prompt)  # the policy, run on transformers without a cache
    for _ in range(new_tokens):
        token = int(hf_last_logits(short.hf, context).argmax())
        expected.append(token)
        history.append(token)
        context.append(token)
        if len(context) >= short.spec.context_length:
            context = history[-keep:]

    with caplog.at_level(logging.WARNING, logger="llama_ort.runtime"):
        [ours] = generate_ids(model, [prompt], GenerateOptions(max_new_tokens=new_tokens, ignore_eos=True, padding=16))
    assert ours == expected
    assert caplog.text.count("oldest tokens slide out") == 3  # at 40 positions, then every 20 more


@pytest.mark.parametrize("mode", ["static", "dynamic"])
@pytest.mark.parametrize("target", ["cuda", "dml", "webgpu"])
def test_models_built_for_other_targets_match_too(tmp_path_factory, tiny, target, mode):
    """Each target's graph in fp32, run here on the CPU: cuda takes total_sequence_length from shapes (the
    whole cache when decoding), dml rotates outside attention, webgpu is the merged (If) layout."""
    folder = tmp_path_factory.mktemp(f"{target}-target")
    build_model(tiny.checkpoint, folder, BuildOptions(target=target, precision="fp32"))
    model = load_model(folder, max_seq_len=96 if mode == "static" else None)
    batched = generate_ids(model, PROMPTS[:3], GenerateOptions(max_new_tokens=40, padding=16), tiny.spec.eos_token_ids)
    for prompt, row in zip(PROMPTS, batched):
        assert row == hf_greedy(tiny, prompt, NEW_TOKENS)[:40]
