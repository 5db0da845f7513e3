"""The sampling a model folder asks for: its generation_config.json (copied by the build), else llama-ort's
default; the commands start from it and their flags override it."""

import json

import pytest

from llama_ort.checkpoint.random import write_hf
from llama_ort.cli import main
from llama_ort.errors import LlamaOrtError
from llama_ort.graph.llama import BuildOptions
from llama_ort.pipeline import optimize
from llama_ort.runtime import GenerateOptions, SamplingParams, load_model
from llama_ort.runtime.generation_config import DEFAULT_SAMPLING, sampling_defaults
from llama_ort.runtime.stream import encode_prompt, generate
from llama_ort.tokenizer import Tokenizer
from llama_ort_testing.reference import random_checkpoint
from llama_ort_testing.tiny_models import SPEC, write_char_tokenizer

# A checkpoint's own sampling: Llama 3's file sets do_sample, temperature and top_p; top_k and a penalty added.
SAMPLING = {"do_sample": True, "temperature": 0.8, "top_k": 5, "top_p": 0.9, "repetition_penalty": 1.2}


def write_generation_config(folder, **config):
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": [95], **config}))
    return folder


@pytest.mark.parametrize("config, expected", [
    ({}, DEFAULT_SAMPLING),  # no sampling keys: eos and bos only, as SmolLM2's file
    (SAMPLING, SamplingParams(temperature=0.8, top_k=5, top_p=0.9, repetition_penalty=1.2)),
    ({"do_sample": True, "temperature": 0.6, "top_p": 0.9}, SamplingParams(temperature=0.6, top_k=50, top_p=0.9)),
    ({"temperature": 0.6, "top_p": 0.9}, SamplingParams()),  # as transformers: no do_sample, greedy
    ({"do_sample": False}, SamplingParams()),
    ({"repetition_penalty": 1.3, "temperature": None}, SamplingParams(repetition_penalty=1.3)),
])
def test_the_defaults_follow_generation_config_as_transformers_reads_it(tmp_path, config, expected):
    assert sampling_defaults(write_generation_config(tmp_path, **config)) == expected


def test_a_folder_without_generation_config_gets_the_documented_default(tmp_path):
    assert sampling_defaults(tmp_path) == DEFAULT_SAMPLING
    assert DEFAULT_SAMPLING == SamplingParams(repetition_penalty=1.1, penalty_counts_prompt=False)


@pytest.mark.parametrize("config, message", [
    ({"temperature": "hot", "do_sample": True}, "temperature is 'hot', not a number"),
    ({"do_sample": "yes"}, "do_sample is 'yes', not a boolean"),
    ({"top_k": 2.5}, "top_k is 2.5, not a whole number"),
    ({"do_sample": True, "top_p": 0}, r"top_p: must be in \(0, 1\], got 0: fix or remove it"),
])
def test_values_the_sampler_cannot_use_are_one_line_that_names_the_file(tmp_path, config, message):
    with pytest.raises(LlamaOrtError, match=message) as error:
        sampling_defaults(write_generation_config(tmp_path, **config))
    assert str(error.value).startswith(str(tmp_path / "generation_config.json"))


@pytest.fixture(scope="module")
def sampling_model(tmp_path_factory):
    """The tiny model as a Hugging Face folder whose generation_config.json samples, built by optimize."""
    checkpoint = tmp_path_factory.mktemp("checkpoint") / "hf"
    write_hf(SPEC, checkpoint, random_checkpoint(SPEC, seed=1).tensors())
    write_char_tokenizer(checkpoint, SPEC.vocab_size, SPEC.eos_token_ids[0])
    write_generation_config(checkpoint, **SAMPLING)
    out = tmp_path_factory.mktemp("built") / "model"
    optimize(checkpoint, out, BuildOptions(target="cpu", precision="fp32"), tmp_path_factory.mktemp("cache"),
             verify=False, show_progress=False)
    return out


def test_the_build_copies_generation_config_into_the_model_folder(sampling_model):
    assert {k: v for k, v in json.loads((sampling_model / "generation_config.json").read_text()).items()
            if k in SAMPLING} == SAMPLING
    assert sampling_defaults(sampling_model) == SamplingParams(temperature=0.8, top_k=5, top_p=0.9,
                                                               repetition_penalty=1.2)


def generated_text(capsys, folder, *flags) -> str:
    assert main(["generate", "--model", str(folder), "--prompt", "Hello", "--max-new-tokens", "24", "--ignore-eos",
                 *flags]) == 0
    return capsys.readouterr().out.rsplit("\n\nprompt: ", 1)[0].removesuffix("\n")


def library_text(folder, **sampling) -> str:
    model, tokenizer = load_model(folder), Tokenizer.from_folder(folder)
    ids = encode_prompt(tokenizer, "Hello", chat_template=True)
    return generate(model, tokenizer, ids, GenerateOptions(max_new_tokens=24, ignore_eos=True,
                                                          sampling=SamplingParams(**sampling)))


def test_generate_samples_as_the_models_generation_config_says(sampling_model, capsys):
    text = generated_text(capsys, sampling_model, "--seed", "3")
    assert text == library_text(sampling_model, temperature=0.8, top_k=5, top_p=0.9, repetition_penalty=1.2, seed=3)
    assert text != library_text(sampling_model)  # not greedy


def test_a_flag_overrides_the_models_value_and_greedy_is_one_flag_away(sampling_model, capsys):
    assert generated_text(capsys, sampling_model, "--temperature", "0") == library_text(sampling_model,
                                                                                         repetition_penalty=1.2)
    assert generated_text(capsys, sampling_model, "--greedy") == library_text(sampling_model)


def test_greedy_with_a_sampling_flag_is_one_line_and_exit_code_2(sampling_model, capsys):
    assert main(["generate", "--model", str(sampling_model), "--prompt", "Hi", "--greedy", "--top-k", "3"]) == 2
    assert capsys.readouterr().err == ("llama-ort: error: --greedy: turns sampling and the repetition penalty off: "
                                       "drop it or --top-k\n")
