"""The model description's dictionary form, as manifests store it."""

from llama_ort.checkpoint.spec import ModelSpec, RopeScaling
from llama_ort.checkpoint.random import tiny_spec


def test_a_spec_survives_its_dictionary_form():
    spec = tiny_spec(rope_scaling=RopeScaling("llama3", 8.0), eos_token_ids=(2, 7))
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_a_manifest_written_with_the_old_empty_extra_field_still_reads():
    assert ModelSpec.from_dict({**tiny_spec().to_dict(), "extra": {}}) == tiny_spec()
