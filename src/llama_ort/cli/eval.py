"""`llama-ort eval`: a built model's perplexity on a text file."""

from __future__ import annotations

import argparse
from pathlib import Path

from .arg_types import positive_int
from .runtime_args import add_model_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="perplexity of a model on a text file",
        description="Tokenize a UTF-8 text file with the model's tokenizer and report the model's perplexity on "
                    "it: each next token's probability given all the text before it (teacher-forced).")
    parser.add_argument("text", type=Path, help="a UTF-8 text file")
    parser.add_argument("--max-tokens", type=positive_int, default=None,
                        help="score only the text's first N tokens (default: all, up to the context length)")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from ..errors import fail
    from ..verify.perplexity import teacher_forced_perplexity
    from .runtime_args import load

    if not args.text.is_file():
        raise fail(args.text, "no such text file")
    try:
        text = args.text.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise fail(args.text, f"is not UTF-8 text (byte {e.start})") from None
    model, tokenizer = load(args)
    ids = tokenizer.encode(text)
    limit = min(args.max_tokens or len(ids), model.spec.context_length, model.max_seq_len or len(ids))
    scored = ids[:limit]
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("scoring", total=len(scored) - 2)
        value = teacher_forced_perplexity(model, scored, on_step=lambda: progress.advance(task))
    of_all = f" (the first of {len(ids)}: --max-tokens, --max-seq-len or the context length)" if limit < len(ids) else ""
    print(f"perplexity {value:.3f} over {len(scored)} tokens{of_all} of {args.text} "
          f"({model.manifest.precision}, {model.manifest.target})")
    return 0
