"""`llama-ort generate`: stream the model's continuation of a prompt, then its speed."""

from __future__ import annotations

import argparse

from .runtime_args import add_generation_arguments, add_model_arguments, generate_options, load, read_stdin_lines


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="generate text from a prompt",
        description="Generate a continuation of --prompt with a model folder, printing the text as it comes "
                    "and then the prompt and generation speed in tokens per second.")
    parser.add_argument("--prompt", required=True, help="the prompt text; - reads it from standard input")
    parser.add_argument("--chat-template", action="store_true",
                        help="send the prompt as a user message in the model's chat template")
    add_model_arguments(parser)
    add_generation_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime.stream import check_text, stream_generate

    prompt = check_text("".join(read_stdin_lines()) if args.prompt == "-" else args.prompt)
    options = generate_options(args)
    model, tokenizer = load(args)
    if args.chat_template:
        prompt = tokenizer.encode_chat([{"role": "user", "content": prompt}])
    last = None
    for last in stream_generate(model, tokenizer, prompt, options):
        print(last.text, end="", flush=True)
    print()
    print(f"\nprompt: {last.prompt_tokens} tokens, {last.prompt_tps:.1f} tokens/s | "
          f"generation: {last.generation_tokens} tokens, {last.generation_tps:.1f} tokens/s "
          f"({last.finish_reason})")
    return 0
