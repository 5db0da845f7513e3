"""`llama-ort make-random`: a random-weight checkpoint of a real model's shape, for benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bench.random_checkpoint import DTYPES, FORMATS
from ..bench.shapes import SHAPES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-random", help="write a random-weight checkpoint of a named model shape",
        description="Write a checkpoint of a real model's shape with seeded random weights (speed does not "
                    "depend on the values), tensor by tensor, with a placeholder tokenizer. The folder appears "
                    "only once complete.")
    parser.add_argument("--shape", required=True, choices=list(SHAPES), help="the model whose shape to copy")
    parser.add_argument("--output", type=Path, required=True, help="checkpoint folder to write (must not exist)")
    parser.add_argument("--dtype", default="fp16", choices=list(DTYPES), help="weight dtype (default: fp16)")
    parser.add_argument("--format", default="hf", choices=list(FORMATS),
                        help="hf: config.json + safetensors; meta: params.json + consolidated.00.pth (default: hf)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.random_checkpoint import make_random

    output = make_random(args.shape, args.output, args.dtype, args.format, args.seed)
    print(f"random checkpoint: {output}")
    return 0
