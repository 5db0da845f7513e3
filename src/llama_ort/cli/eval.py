"""`llama-ort eval`: a built model's perplexity on a text file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .arg_types import positive_int
from .runtime_args import add_model_arguments

PLAIN_PROGRESS_EVERY_S = 5.0  # where stderr is no terminal (a log, CI), a line this often instead of a bar


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="perplexity of a model on a text file",
        description="Tokenize a UTF-8 text file with the model's tokenizer and report the model's perplexity on "
                    "it: each next token's probability given the text before it (teacher-forced). The text runs "
                    "through the model in windows, a chunk of positions at a time; a text longer than one window "
                    "is scored with a sliding window, and the result says so.")
    parser.add_argument("text", type=Path, help="a UTF-8 text file")
    parser.add_argument("--max-tokens", type=positive_int, default=None,
                        help="score only the text's first N tokens (default: all)")
    parser.add_argument("--window", type=positive_int, default=None,
                        help="tokens of context one window holds (default: the model's context length, or "
                             "--max-seq-len); a longer text is scored with a sliding window")
    parser.add_argument("--stride", type=positive_int, default=None,
                        help="sliding window: tokens from one window's start to the next (default: half the "
                             "window); each token is scored with at least window - stride tokens before it")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import fail
    from ..verify.perplexity import perplexity
    from .runtime_args import load

    if not args.text.is_file():
        raise fail(args.text, "no such text file")
    try:
        text = args.text.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise fail(args.text, f"is not UTF-8 text (byte {e.start})") from None
    if args.cuda_graph:
        raise fail("--cuda-graph", "eval runs every chunk as a prompt, which is never captured: leave it out")
    model, tokenizer = load(args, every_position=True)
    ids = tokenizer.encode(text)
    scored = ids[:args.max_tokens]
    with progress(len(scored) - 1) as on_scored:
        result = perplexity(model, scored, args.window, args.stride, on_scored=on_scored)
    of_all = f" (the first of {len(ids)}: --max-tokens)" if len(scored) < len(ids) else ""
    how = (f"; a sliding window of {result.window} tokens, stride {result.stride}: each token given at least "
           f"{result.window - result.stride} before it" if result.is_strided else "")
    print(f"perplexity {result.value:.3f} over {result.tokens} tokens{of_all} of {args.text} "
          f"({model.manifest.precision}, {model.manifest.target}{how})")
    return 0


@contextmanager
def progress(total: int) -> Iterator[Callable[[int], None]]:
    """advance(count) as tokens are scored: a bar on stderr where it is a terminal, else a plain line on stderr
    every PLAIN_PROGRESS_EVERY_S seconds."""
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    if console.is_terminal:
        with Progress(*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("scoring", total=total)
            yield lambda count: bar.advance(task, count)
        return
    started = last_line = time.monotonic()
    done = 0

    def advance(count: int) -> None:
        nonlocal done, last_line
        done += count
        now = time.monotonic()
        if now - last_line >= PLAIN_PROGRESS_EVERY_S and done < total:
            print(f"eval: {done}/{total} tokens scored, {done / (now - started):.0f} tokens/s", file=sys.stderr,
                  flush=True)
            last_line = now

    yield advance
