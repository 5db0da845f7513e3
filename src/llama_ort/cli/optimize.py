"""`llama-ort optimize`: a checkpoint in, an optimized model folder out (the seed's llama_v2.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..locations import cache_dir, models_dir
from .common import add_build_arguments, build_options, setup_logging


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "optimize", help="convert and optimize a checkpoint into an ONNX model folder",
        description="Convert a Llama-family checkpoint (Hugging Face folder, Meta folder or GGUF file) into an "
                    "ONNX model optimized for ONNX Runtime. Pass results are cached: a rerun with the same "
                    "inputs only lays out the cached files again.")
    parser.add_argument("model", nargs="?", default=None,
                        help="checkpoint folder or .gguf file (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"model folder to write (default: {models_dir()}/<model>-<target>-<precision>)")
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"pass cache (default: {cache_dir()})")
    parser.add_argument("--clean-cache", action="store_true", help="empty the cache first: rebuild from scratch")
    verify = parser.add_mutually_exclusive_group()
    verify.add_argument("--verify", dest="verify", action="store_true", default=None,
                        help="check the model against a numpy forward pass (default: for models up to 2B parameters)")
    verify.add_argument("--no-verify", dest="verify", action="store_false")
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline import default_output_name, optimize

    setup_logging()
    options = build_options(args)
    output = args.output or models_dir() / default_output_name(args.model, options)
    result = optimize(args.model, output, options, args.cache_dir, clean_cache=args.clean_cache, verify=args.verify)
    print(f"optimized model: {result.output} ({result.seconds:.1f} s)")
    return 0
