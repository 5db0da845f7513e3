"""Arguments shared by the commands that run a model (generate, chat), and loading what they name."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import fail
from ..locations import models_dir
from ..runtime.providers import PROVIDERS
from .arg_types import non_negative_float, non_negative_int, positive_float, positive_int, probability


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", type=Path, default=None,
                       help="model folder written by `llama-ort optimize` (default: the embedded model's, in "
                            f"{models_dir()}, built there on first use)")
    group.add_argument("--provider", default="cpu", choices=list(PROVIDERS),
                       help="execution provider (default: cpu; cuda and dml where onnxruntime has them, "
                            "webgpu through onnxruntime-ep-webgpu)")
    group.add_argument("--device-id", type=non_negative_int, default=0,
                       help="the provider's device number (default: 0)")
    group.add_argument("--max-seq-len", type=positive_int, default=None,
                       help="static mode: the KV cache holds this many positions, fixed when the model is loaded "
                            "(default: dynamic mode, the cache grows as needed)")
    group.add_argument("--padding", type=positive_int, default=512,
                       help="dynamic mode: the cache grows by this many positions when full (default: 512)")
    group.add_argument("--disable-metacommands", action="store_true", help="dml: turn DirectML metacommands off")
    group.add_argument("--cuda-graph", action="store_true",
                       help="cuda: capture each decode step once and replay it as a CUDA graph (needs --max-seq-len)")


SAMPLING_FLAGS = ("temperature", "top_k", "top_p", "repetition_penalty")


def add_generation_arguments(parser: argparse.ArgumentParser, max_new_tokens: int = 256) -> None:
    group = parser.add_argument_group(
        "generation", "Sampling starts from the model folder's generation_config.json where it sets any; else it is "
                      "greedy with --repetition-penalty 1.1 on the answer's tokens. A flag overrides its value.")
    group.add_argument("--max-new-tokens", type=positive_int, default=max_new_tokens,
                       help=f"most tokens to generate per answer (default: {max_new_tokens})")
    group.add_argument("--greedy", action="store_true",
                       help="always the likeliest token, with no repetition penalty: the model's on-device argmax")
    group.add_argument("--temperature", type=non_negative_float, default=None, help="0 is greedy (default: the model's, else 0)")
    group.add_argument("--top-k", type=non_negative_int, default=None,
                       help="sample among the k likeliest tokens, 0 for all (default: the model's, else 0)")
    group.add_argument("--top-p", type=probability, default=None,
                       help="nucleus sampling mass, 1 for all (default: the model's, else 1)")
    group.add_argument("--repetition-penalty", type=positive_float, default=None,
                       help="above 1 makes tokens already generated less likely, 1 is off "
                            "(default: the model's, else 1.1)")
    group.add_argument("--seed", type=int, default=None, help="sampling seed, for the same text each time")
    group.add_argument("--stop", action="append", default=[], metavar="TEXT",
                       help="end the answer at this text (repeatable)")
    group.add_argument("--ignore-eos", action="store_true", help="go on past the end-of-sequence token")


def sampling_flags(args: argparse.Namespace) -> dict:
    """The sampling values given on the command line, checked before any model is loaded."""
    from ..runtime import SamplingParams

    given = {name: getattr(args, name) for name in SAMPLING_FLAGS if getattr(args, name) is not None}
    if args.greedy:
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise fail("--greedy", f"turns sampling and the repetition penalty off: drop it or {flags}")
        given = {"temperature": 0.0, "repetition_penalty": 1.0}
    SamplingParams(**given)  # a bad value is refused with its flag's name
    return {**given, "seed": args.seed}


def generate_options(args: argparse.Namespace, folder: Path, flags: dict):
    """The model folder's sampling defaults with `flags` (from sampling_flags) over them, and the other options."""
    from ..runtime import GenerateOptions
    from ..runtime.generation_config import sampling_defaults

    sampling = replace(sampling_defaults(folder), **flags)
    return GenerateOptions(max_new_tokens=args.max_new_tokens, sampling=sampling, stop_strings=tuple(args.stop),
                           ignore_eos=args.ignore_eos, padding=args.padding)


def load(args: argparse.Namespace, every_position: bool = False):
    """The model and its tokenizer, from --model (or the default folder) on --provider; every_position loads it
    for scoring (load_model's every_position)."""
    from ..pipeline import embedded_model_folder
    from ..runtime import load_model
    from ..runtime.providers import check_available, get_provider
    from ..tokenizer import Tokenizer

    check_available(get_provider(args.provider))  # before building a default model for it
    folder = args.model or embedded_model_folder(args.provider)
    model = load_model(folder, args.provider, max_seq_len=args.max_seq_len, device_id=args.device_id,
                       disable_metacommands=args.disable_metacommands, graph=getattr(args, "cuda_graph", False),
                       every_position=every_position)
    return model, Tokenizer.from_folder(folder)


def read_stdin_lines():
    """Lines of standard input as UTF-8 text, whatever the locale says."""
    sys.stdin.reconfigure(encoding="utf-8", errors="strict")
    try:
        yield from sys.stdin
    except UnicodeDecodeError as e:
        raise fail("standard input", f"is not valid UTF-8 text (byte {e.start} of a read)") from None
