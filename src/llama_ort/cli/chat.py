"""`llama-ort chat`: talk with a model, turn by turn, in its chat template."""

from __future__ import annotations

import argparse
import sys

from .runtime_args import (add_generation_arguments, add_model_arguments, generate_options, load, read_stdin_lines,
                           sampling_flags)

COMMANDS_HELP = "/reset forgets the conversation, /exit (or end of input) quits"
# Chat runs in static mode, where the conversation keeps its cache between turns and a turn runs only its new
# tokens; the cache holds this many positions unless --max-seq-len says otherwise (capped at the context length).
CHAT_MAX_SEQ_LEN = 4096


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "chat", help="chat with a model",
        description=f"Chat with a model folder: each line of input is a message; {COMMANDS_HELP}. "
                    "Reads piped input too, one message per line. The conversation keeps its KV cache between turns "
                    f"(static mode, --max-seq-len positions, {CHAT_MAX_SEQ_LEN} by default), so a turn runs only "
                    "its new tokens.")
    parser.add_argument("--system", default=None, help="a system message that starts the conversation")
    add_model_arguments(parser)
    add_generation_arguments(parser, max_new_tokens=512)
    parser.set_defaults(run=run)


def messages():
    """Lines typed at a prompt when a person is there, else the lines of the piped input."""
    if not sys.stdin.isatty():
        yield from read_stdin_lines()
        return
    print(f"({COMMANDS_HELP})")
    while True:
        try:
            yield input(">>> ")
        except EOFError:
            return


def run(args: argparse.Namespace) -> int:
    from ..runtime.chat import Chat

    flags = sampling_flags(args)
    if args.max_seq_len is None:
        args.max_seq_len = CHAT_MAX_SEQ_LEN
    model, tokenizer = load(args)
    options = generate_options(args, model.folder, flags)
    chat = Chat(model, tokenizer, options, system=args.system)
    for line in messages():
        message = line.strip()
        if message == "/exit":
            break
        if message == "/reset":
            chat.reset()
            print("(conversation reset)", flush=True)
            continue
        if not message:
            continue
        last = None
        for last in chat.send(message):
            print(last.text, end="", flush=True)
        print(flush=True)
        print(f"[{last.generation_tokens} tokens, {last.generation_tps:.1f} tokens/s; {last.cached_tokens} of the "
              f"prompt's {last.prompt_tokens} tokens were already in the cache]", file=sys.stderr)
    return 0
