"""`llama-ort bench`: llama-ort's models against their peers on the same weights; a table, JSON and a chart."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..bench.shapes import SHAPES
from ..bench.workload import DEVICES, Workload
from ..errors import LlamaOrtError, fail
from ..locations import bench_dir
from .arg_types import non_negative_int, positive_float, positive_int


def integers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def register(subparsers) -> None:
    defaults = Workload()
    parser = subparsers.add_parser(
        "bench", help="benchmark llama-ort against onnxruntime-genai, transformers and llama.cpp",
        description="Build and run llama-ort's model and its peers' on the same weights: prefill latency, time to "
                    "first token, decode tokens/s and peak memory per batch size and prompt length, and each "
                    "build's time and peak memory. Writes a table, a JSON file and a PNG chart.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("model", nargs="?", default=None,
                        help="checkpoint (folder or .gguf) or built llama-ort model folder "
                             "(default: the embedded SmolLM2-135M-Instruct)")
    source.add_argument("--shape", choices=list(SHAPES), help="a random-weight checkpoint of this model's shape")
    parser.add_argument("--device", default=defaults.device, choices=DEVICES, help="default: cpu")
    parser.add_argument("--peers", type=names, default=None,
                        help="comma-separated: llama-ort,onnxruntime-genai,transformers,llama.cpp (default: all)")
    parser.add_argument("--precisions", type=names, default=None,
                        help="comma-separated (default: fp32,int4 on cpu; fp16,int4 on cuda)")
    parser.add_argument("--skip", type=names, default=(),
                        help="comma-separated words: leave out the variants whose label holds one (e.g. compile)")
    parser.add_argument("--llama-ort-variant", action="append", default=[], metavar="'PRECISION ARGS'",
                        help="another llama-ort row: a precision and more `llama-ort optimize` arguments, e.g. "
                             "'int4 --block-size 128' (repeatable)")
    parser.add_argument("--batch-sizes", type=integers, default=defaults.batch_sizes, help="default: 1,4,16")
    parser.add_argument("--prompt-lengths", type=integers, default=defaults.prompt_lengths, help="default: 128,2048")
    parser.add_argument("--new-tokens", type=positive_int, default=defaults.new_tokens, help="default: 256")
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats,
                        help="timed runs per cell (default: 3)")
    parser.add_argument("--rounds", type=positive_int, default=defaults.rounds,
                        help="run every variant this many times in turn, medians over all (default: 1); more "
                             "rounds spread a shared machine's noise over every variant alike")
    parser.add_argument("--warmup", type=non_negative_int, default=defaults.warmup,
                        help="untimed runs per cell (default: 1)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for every peer (default: each one's)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help=f"builds and converted checkpoints, reused by later runs (default: {bench_dir()})")
    parser.add_argument("--rebuild", action="store_true", help="build every variant again")
    parser.add_argument("--timeout", type=positive_float, default=3600,
                        help="seconds per variant's runs (default: 3600)")
    parser.add_argument("--output", type=Path, default=Path("bench-results"),
                        help="folder for bench.json and bench.png (default: ./bench-results)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from ..bench.harness import run_bench
    from ..bench.report import build_report, print_report, write_chart, write_json
    from .common import setup_logging

    setup_logging()
    for spec in args.llama_ort_variant:
        check_variant(spec)
    workload = Workload(batch_sizes=args.batch_sizes, prompt_lengths=args.prompt_lengths, new_tokens=args.new_tokens,
                        repeats=args.repeats, rounds=args.rounds, warmup=args.warmup, threads=args.threads,
                        device=args.device)
    console = Console()
    sources, rows = run_bench(args.model, args.shape, workload, args.peers, args.precisions, args.workdir,
                              args.rebuild, args.timeout, args.skip, tuple(args.llama_ort_variant),
                              on_row=lambda row: console.print(escape(f"{row.label}: {row.status}"
                                                                      + (f" ({row.reason})" if row.reason else ""))))
    report = build_report(sources, rows, workload, ["llama-ort", *sys.argv[1:]])
    print_report(report, console)
    write_json(report, args.output / "bench.json")
    if importlib.util.find_spec("matplotlib") is None:
        console.print(escape(f"results: {args.output / 'bench.json'} (no chart: matplotlib is not installed; "
                             "pip install -e '.[bench]')"))
        return 0
    write_chart(report, args.output / "bench.png")
    console.print(f"results: {args.output / 'bench.json'}, {args.output / 'bench.png'}")
    return 0


class _VariantParser(argparse.ArgumentParser):
    """optimize's build arguments, whose errors name the --llama-ort-variant they came from."""

    def __init__(self, spec: str):
        super().__init__(prog="--llama-ort-variant", add_help=False)
        self.spec = spec

    def error(self, message: str):
        raise fail("--llama-ort-variant", f"{self.spec!r}: {message}")


def check_variant(spec: str) -> None:
    """A --llama-ort-variant is a precision and more `llama-ort optimize` build arguments: check them before any
    work, with optimize's own parser and option checks."""
    from ..graph.target import PRECISIONS
    from .common import add_build_arguments, build_options

    precision, *rest = spec.split() or [""]
    if precision not in PRECISIONS:
        raise fail("--llama-ort-variant", f"{spec!r} must start with a precision: {', '.join(PRECISIONS)}")
    if not rest:
        raise fail("--llama-ort-variant", f"{spec!r} has no build arguments, so it is the {precision} row the bench "
                   f"already runs: add `llama-ort optimize` arguments, e.g. '{precision} --block-size 128'")
    parser = _VariantParser(spec)
    add_build_arguments(parser)
    try:
        build_options(parser.parse_args(["--precision", precision, *rest])).resolved()
    except LlamaOrtError as e:
        raise fail("--llama-ort-variant", f"{spec!r}: {e}") from None
