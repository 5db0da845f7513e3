"""`llama-ort info`: what a checkpoint is, how a chat prompt tokenizes for it, and where llama-ort's folders are."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import locations
from ..errors import LlamaOrtError

DEFAULT_PROMPT = "What is the lightest element?"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a checkpoint, tokenize a chat prompt with it, and say where llama-ort's folders are",
        description="Print a checkpoint's model description and the token ids of a chat prompt in its template, "
                    f"then where built models, the pass cache and downloads go (under ${locations.HOME_VARIABLE}).")
    parser.add_argument("model", nargs="?", default=None,
                        help="checkpoint folder or .gguf file (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"user message (default: {DEFAULT_PROMPT!r})")
    parser.add_argument("--system", default=None, help="optional system message")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    describe(args, console)
    print(locations.describe())
    return 0


def describe(args: argparse.Namespace, console: Console) -> None:
    from ..checkpoint import open_checkpoint
    from ..tokenizer import Tokenizer, export_tokenizer

    with open_checkpoint(args.model) as checkpoint:
        table = Table(title=f"{checkpoint.path} ({checkpoint.format})", show_header=False)
        for key, value in checkpoint.spec.to_dict().items():
            table.add_row(key, str(value))
        console.print(table)
        with tempfile.TemporaryDirectory() as folder:
            try:
                export_tokenizer(checkpoint, Path(folder))
            except LlamaOrtError as e:  # a random-weight checkpoint (make-random) has none: still worth describing
                print(f"tokenizer: none ({e})")
                return
            tokenizer = Tokenizer.from_folder(Path(folder))
    if not tokenizer.chat_template:
        print("chat template: none; the prompt as plain text")
        print("token ids:", tokenizer.encode(args.prompt))
        return
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.prompt}]
    print("chat prompt:", repr(tokenizer.apply_chat_template(messages)))
    print("token ids:", tokenizer.encode_chat(messages))
