"""Arguments and set-up shared by several commands."""

from __future__ import annotations

import argparse
import logging

from rich.console import Console
from rich.logging import RichHandler

from ..graph.target import LAYOUTS, PRECISIONS, TARGETS, get_target
from ..quant.int4 import BLOCK_SIZES
from ..quant.options import EMBEDDING_FORMS, QuantOptions
from .arg_types import positive_int


def default_precisions() -> str:
    """The targets' default precisions, for help texts: "fp32 on cpu; fp16 on cuda, dml, webgpu"."""
    targets_of: dict[str, list[str]] = {}
    for target in TARGETS.values():
        targets_of.setdefault(target.default_precision, []).append(target.name)
    return "; ".join(f"{precision} on {', '.join(names)}" for precision, names in targets_of.items())


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=Console(stderr=True), show_path=False, show_time=False)],
                        force=True)


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """--target, --precision and the quantization options, used by optimize and llama_v2.py."""
    group = parser.add_argument_group("model build")
    group.add_argument("--target", default="cpu", choices=list(TARGETS),
                       help="execution provider the model is built for (default: cpu)")
    group.add_argument("--precision", default=None, choices=list(PRECISIONS),
                       help=f"weights: fp32, fp16 or int4 (default: {default_precisions()})")
    group.add_argument("--layout", default=None, choices=list(LAYOUTS),
                       help="merged: the seed's If(decoder | decoder_with_past); single: one graph "
                            "(default: single on cpu and cuda, merged on dml and webgpu)")
    defaults = QuantOptions()
    group.add_argument("--block-size", type=int, default=defaults.block_size,
                       help=f"int4: weights per quantization block, {', '.join(map(str, BLOCK_SIZES))} "
                            f"(default: {defaults.block_size})")
    group.add_argument("--zero-points", action="store_true",
                       help="int4: min/max blocks with float zero points: more accurate (lossless on GGUF Q4_1), "
                            "but about 20x slower on the CPU provider (default: symmetric blocks)")
    group.add_argument("--accuracy-level", type=int, default=defaults.accuracy_level, choices=range(5),
                       help="int4: MatMulNBits accuracy_level, 4 = int8 activations on the CPU "
                            f"(default: {defaults.accuracy_level})")
    group.add_argument("--float-lm-head", action="store_true", help="int4: keep lm_head in float")
    group.add_argument("--embeddings", default=defaults.embeddings, choices=list(EMBEDDING_FORMS),
                       help="int4 on the cpu target: the embedding table as 8-bit blocks (near float, a quarter of "
                            "fp32's size), 4-bit blocks (shared with a tied lm_head: smallest) or float "
                            f"(default: {defaults.embeddings})")
    group.add_argument("--all-logits", action="store_true",
                       help="output logits for every position, not only each row's last (a scoring model: "
                            "`llama-ort eval` needs none, it turns any model's head to every position as it loads)")
    group.add_argument("--num-layers", type=positive_int, default=None,
                       help="build only the first N layers (debugging)")


def build_options(args: argparse.Namespace):
    from ..graph.llama import BuildOptions

    precision = args.precision or get_target(args.target).default_precision
    quant = QuantOptions(block_size=args.block_size, symmetric=not args.zero_points,
                         accuracy_level=args.accuracy_level, quantize_lm_head=not args.float_lm_head,
                         embeddings=args.embeddings)
    return BuildOptions(target=args.target, precision=precision, layout=args.layout, quant=quant,
                        all_logits=args.all_logits, num_layers=args.num_layers)
