"""`llama-ort generate`: stream the model's continuation of a prompt, then its speed."""

from __future__ import annotations

import argparse

from .runtime_args import (add_generation_arguments, add_model_arguments, generate_options, load, read_stdin_lines,
                           sampling_flags)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="generate text from a prompt",
        description="Generate a continuation of --prompt with a model folder, printing the text as it comes "
                    "and then the prompt and generation speed in tokens per second.")
    parser.add_argument("--prompt", required=True, help="the prompt text; - reads it from standard input")
    parser.add_argument("--raw-prompt", action="store_true",
                        help="give the model the prompt text as it is (default: as a user message in its chat "
                             "template, where the tokenizer has one)")
    add_model_arguments(parser)
    add_generation_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime.stream import check_text, encode_prompt, stream_generate

    prompt = check_text("".join(read_stdin_lines()) if args.prompt == "-" else args.prompt)
    flags = sampling_flags(args)
    model, tokenizer = load(args)
    options = generate_options(args, model.folder, flags)
    ids = encode_prompt(tokenizer, prompt, chat_template=not args.raw_prompt)
    last = None
    for last in stream_generate(model, tokenizer, ids, options):
        print(last.text, end="", flush=True)
    print()
    print(f"\nprompt: {last.prompt_tokens} tokens, {last.prompt_tps:.1f} tokens/s | "
          f"generation: {last.generation_tokens} tokens, {last.generation_tps:.1f} tokens/s "
          f"({last.finish_reason})")
    return 0
