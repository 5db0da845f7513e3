"""The KV cache is appended in place: both bindings bind past and present of a layer to one buffer."""

from llama_ort import model_format as io
from llama_ort.runtime.binding import DecoderBinding
from llama_ort.runtime.session import load_model


class RecordingBinding:
    """Stands in for an IOBinding: which buffer each name is bound to."""

    def __init__(self):
        self.bound = {}

    def bind_ortvalue_input(self, name, value):
        self.bound[name] = value.data_ptr()

    bind_ortvalue_output = bind_ortvalue_input


def test_past_and_present_are_one_buffer_in_both_bindings(tiny):
    cache = DecoderBinding(load_model(tiny.folder, max_seq_len=32), 1, 32).cache
    turns = [RecordingBinding(), RecordingBinding()]
    for recording in turns:
        cache.bind(recording)
    past, present = io.past_key(0), io.present_key(0)
    assert turns[0].bound[past] == turns[0].bound[present] == turns[1].bound[past] == turns[1].bound[present]
