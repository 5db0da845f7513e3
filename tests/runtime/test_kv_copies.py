"""The cache in two copies that take turns (for providers whose attention cannot append in place) generates the
same tokens as transformers, in static mode and in dynamic mode, where the cache grows several times, and batched.
"""

import dataclasses

import pytest

from llama_ort import model_format as io
from llama_ort.runtime.binding import DecoderBinding
from llama_ort.runtime.generate import GenerateOptions, generate_ids
from llama_ort.runtime.session import load_model
from tiny_models import PROMPTS, hf_greedy

NEW_TOKENS = 40


def two_copy_model(folder, max_seq_len):
    model = load_model(folder, max_seq_len=max_seq_len)
    return dataclasses.replace(model, provider=dataclasses.replace(model.provider, updates_kv_in_place=False))


@pytest.mark.parametrize("mode", ["static", "dynamic"])
@pytest.mark.parametrize("layout", ["single", "merged"])
def test_two_copy_cache_matches_transformers(tiny, tiny_merged, mode, layout):
    built = tiny if layout == "single" else tiny_merged
    model = two_copy_model(built.folder, 96 if mode == "static" else None)
    options = GenerateOptions(max_new_tokens=NEW_TOKENS, ignore_eos=True, padding=8)  # dynamic: grows ~6 times
    expected = [hf_greedy(built, p, NEW_TOKENS, stop_at_eos=False) for p in PROMPTS[:3]]
    assert [generate_ids(model, [p], options)[0] for p in PROMPTS[:3]] == expected
    assert generate_ids(model, PROMPTS[:3], options) == expected


class RecordingBinding:
    """Stands in for an IOBinding: which buffer each name is bound to."""

    def __init__(self):
        self.bound = {}

    def bind_ortvalue_input(self, name, value):
        self.bound[name] = value.data_ptr()

    bind_ortvalue_output = bind_ortvalue_input


@pytest.mark.parametrize("in_place", [True, False])
def test_past_and_present_buffers_by_turn(tiny, in_place):
    model = load_model(tiny.folder, max_seq_len=32)
    model = dataclasses.replace(model, provider=dataclasses.replace(model.provider, updates_kv_in_place=in_place))
    cache = DecoderBinding(model, 1, 32).cache
    turns = [RecordingBinding(), RecordingBinding()]
    for turn, recording in enumerate(turns):
        cache.bind(recording, turn)
    past, present = io.past_key(0), io.present_key(0)
    if in_place:
        assert turns[0].bound[past] == turns[0].bound[present] == turns[1].bound[past] == turns[1].bound[present]
    else:  # each turn writes where the other reads
        assert turns[0].bound[past] != turns[0].bound[present]
        assert turns[0].bound[present] == turns[1].bound[past] and turns[1].bound[present] == turns[0].bound[past]
