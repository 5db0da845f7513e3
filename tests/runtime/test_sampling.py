"""Sampling on the host: the filters against transformers' logits processors, and seeded reproducibility."""

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TopKLogitsWarper,
                                                    TopPLogitsWarper)

from llama_ort_testing.tiny_models import PROMPTS
from llama_ort.errors import LlamaOrtError
from llama_ort.runtime.generate import GenerateOptions, generate_ids
from llama_ort.runtime.sampling import Sampler, SamplingParams, keep_top_k, keep_top_p, penalize_repeats
from llama_ort.runtime.session import load_model

# Seeded random logits: 4 rows over a vocabulary of 50.
LOGITS = np.random.default_rng(0).normal(0, 3, (4, 50))


def kept(logits) -> list[set[int]]:
    return [set(np.flatnonzero(np.isfinite(row))) for row in np.asarray(logits)]


@pytest.mark.parametrize("k", [1, 5, 49, 50, 80])
def test_top_k_keeps_what_transformers_keeps(k):
    theirs = TopKLogitsWarper(top_k=k)(None, torch.from_numpy(LOGITS.copy()))
    assert kept(keep_top_k(LOGITS.copy(), k)) == kept(theirs.numpy())


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 0.99])
def test_top_p_keeps_what_transformers_keeps(top_p):
    theirs = TopPLogitsWarper(top_p=top_p)(None, torch.from_numpy(LOGITS.copy()))
    assert kept(keep_top_p(LOGITS.copy(), top_p)) == kept(theirs.numpy())


def test_repetition_penalty_matches_transformers():
    history = [[1, 2, 2, 7], [0], [49, 3], [5, 6, 7, 8, 9]]
    theirs = RepetitionPenaltyLogitsProcessor(penalty=1.3)(torch.tensor(history[0])[None],
                                                           torch.from_numpy(LOGITS[:1].copy()))
    np.testing.assert_allclose(penalize_repeats(LOGITS[:1].copy(), history[:1], 1.3), theirs.numpy())


def test_the_same_seed_gives_the_same_tokens_and_another_seed_others(tiny):
    model = load_model(tiny.folder, max_seq_len=96)

    def sample(seed):
        params = SamplingParams(temperature=1.0, top_k=40, top_p=0.95, repetition_penalty=1.1, seed=seed)
        return generate_ids(model, PROMPTS[:3], GenerateOptions(max_new_tokens=40, sampling=params, ignore_eos=True))

    first = sample(seed=7)
    assert sample(seed=7) == first
    assert sample(seed=8) != first


def test_greedy_with_a_repetition_penalty_matches_transformers(tiny):
    """Not the device's argmax: the penalty changes the logits, so they come to the host."""
    model = load_model(tiny.folder, max_seq_len=96)
    params = SamplingParams(repetition_penalty=1.5)
    ours = generate_ids(model, PROMPTS[:2], GenerateOptions(max_new_tokens=30, ignore_eos=True, sampling=params))
    for prompt, row in zip(PROMPTS, ours):
        with torch.no_grad():
            theirs = tiny.hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                      max_new_tokens=30, do_sample=False, repetition_penalty=1.5, eos_token_id=None,
                                      pad_token_id=0)
        assert row == theirs[0, len(prompt):].tolist()
    assert ours[0] != generate_ids(model, PROMPTS[:1], GenerateOptions(max_new_tokens=30, ignore_eos=True))[0]


def test_a_penalty_on_the_answer_only_matches_transformers_on_the_new_tokens(tiny):
    """penalty_counts_prompt=False: transformers' penalty applied to the generated tokens alone."""
    model = load_model(tiny.folder, max_seq_len=96)
    params = SamplingParams(repetition_penalty=1.5, penalty_counts_prompt=False)
    ours = generate_ids(model, PROMPTS[:2], GenerateOptions(max_new_tokens=30, ignore_eos=True, sampling=params))
    for prompt, row in zip(PROMPTS, ours):
        answer_only = RepetitionPenaltyLogitsProcessor(penalty=1.5)
        processor = lambda ids, scores: answer_only(ids[:, len(prompt):], scores)  # noqa: E731
        with torch.no_grad():
            theirs = tiny.hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                                      dtype=torch.long), max_new_tokens=30, do_sample=False,
                                      logits_processor=[processor], eos_token_id=None, pad_token_id=0)
        assert row == theirs[0, len(prompt):].tolist()
    counting_prompt = SamplingParams(repetition_penalty=1.5)
    assert ours != generate_ids(model, PROMPTS[:2], GenerateOptions(max_new_tokens=30, ignore_eos=True,
                                                                     sampling=counting_prompt))


def test_a_penalty_on_the_answer_only_leaves_the_prompts_tokens_alone():
    logits = np.zeros((1, 5))
    logits[0, 3], logits[0, 1] = 2.0, 1.9  # token 3 is likeliest, and it is in the prompt
    assert Sampler(SamplingParams(repetition_penalty=1.1))(logits, [[0, 3]])[0] == 1
    sampler = Sampler(SamplingParams(repetition_penalty=1.1, penalty_counts_prompt=False))
    assert sampler(logits, [[0, 3]])[0] == 3  # the first call: the history is the prompt
    assert sampler(logits, [[0, 3, 3]])[0] == 1  # once the answer holds it


@pytest.mark.parametrize("field, value, message", [
    ("temperature", -1, "--temperature: must be 0"), ("top_k", -2, "--top-k: must be 0"),
    ("top_p", 0, r"--top-p: must be in \(0, 1\]"), ("repetition_penalty", 0, "--repetition-penalty: must be positive")])
def test_bad_parameters_are_refused(field, value, message):
    with pytest.raises(LlamaOrtError, match=message):
        SamplingParams(**{field: value})
