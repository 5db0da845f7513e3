"""The sampling a model folder asks for: its generation_config.json, read as transformers reads it, or else
llama-ort's default, greedy with a light repetition penalty on the answer.

`llama-ort generate` and `chat` start from these and apply their flags on top (`--greedy` for plain greedy).
The Python API's `SamplingParams()` stays plain greedy: the on-device argmax, the tokens the parity tests
compare with transformers.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LlamaOrtError, fail
from ..tokenizer.config import GENERATION_CONFIG_FILE, read_json
from .sampling import SamplingParams

# A small model's greedy answer may say one sentence over and over until max_new_tokens: SmolLM2-135M-Instruct
# did for 9 of 23 prompts (docs/runtime.md). Dividing the logits of the tokens its answer already holds by 1.1
# ended every such loop and kept its right answers right; counting the prompt's tokens too turned "What is
# 2 + 2?" away from 4.
DEFAULT_SAMPLING = SamplingParams(repetition_penalty=1.1, penalty_counts_prompt=False)

# transformers' GenerationConfig defaults, for the keys a file leaves out.
HF_DEFAULTS = {"do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.0}
KINDS = {"do_sample": ("boolean", bool), "top_k": ("whole number", int)}  # the others: ("number", (int, float))


def sampling_defaults(folder: str | Path) -> SamplingParams:
    """The model folder's sampling: its generation_config.json where that names any of HF_DEFAULTS' keys, else
    DEFAULT_SAMPLING."""
    path = Path(folder) / GENERATION_CONFIG_FILE
    given = {key: value for key, value in read_json(path).items() if key in HF_DEFAULTS and value is not None}
    if not given:
        return DEFAULT_SAMPLING
    config = {**HF_DEFAULTS, **given}
    for key, value in given.items():
        kind, expected = KINDS.get(key, ("number", (int, float)))
        if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
            raise fail(path, f"{key} is {value!r}, not a {kind}: fix or remove it")
    try:
        # As transformers: without do_sample, temperature, top_k and top_p are ignored, and decoding is greedy.
        if config["do_sample"]:
            return SamplingParams(temperature=config["temperature"], top_k=config["top_k"], top_p=config["top_p"],
                                  repetition_penalty=config["repetition_penalty"])
        return SamplingParams(repetition_penalty=config["repetition_penalty"])
    except LlamaOrtError as e:  # the message names the flag (--top-p); the value came from the file (top_p)
        flag, what = str(e).split(": ", 1)
        raise fail(path, f"{flag.lstrip('-').replace('-', '_')}: {what}: fix or remove it") from None
