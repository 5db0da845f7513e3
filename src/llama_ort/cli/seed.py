"""The seed's scripts, run_llama_v2_io_binding.py (static) and run_llama_v2_dynamic_io_binding.py (dynamic):
their flags, and the one library call behind both."""

from __future__ import annotations

from pathlib import Path

from ..runtime.providers import PROVIDERS
from . import Parser, report_errors
from .arg_types import non_negative_int, positive_int

DEFAULT_PROMPT = "What is the lightest element?"


def seed_parser(description: str, dynamic: bool) -> Parser:
    """The seed's flags (underscores and all); static mode takes --max_seq_len, dynamic mode --padding."""
    parser = Parser(description=description)
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"(default: {DEFAULT_PROMPT!r})")
    if dynamic:
        parser.add_argument("--padding", type=positive_int, default=512,
                            help="the KV cache grows in steps of this many positions (default: 512)")
    else:
        parser.add_argument("--max_seq_len", type=positive_int, default=2048,
                            help="positions in the KV cache, fixed at load: prompt plus answer (default: 2048)")
    parser.add_argument("--max_gen_len", type=positive_int, default=256, help="most tokens to generate (default: 256)")
    parser.add_argument("--ignore_eos", action="store_true", help="go on past the end-of-sequence token")
    parser.add_argument("--device_id", type=non_negative_int, default=0,
                        help="the provider's device number (default: 0)")
    parser.add_argument("--disable_metacommands", action="store_true", help="passed to DirectML")
    parser.add_argument("--model_dir", type=Path, default=Path("models/optimized/llama_v2"),
                        help="model folder written by `llama-ort optimize` (default: models/optimized/llama_v2)")
    parser.add_argument("--provider", default="cpu", choices=list(PROVIDERS), help="(default: cpu)")
    return parser


def run_seed_generation(prompt: str, model_dir: Path, *, max_gen_len: int, ignore_eos: bool = False,
                        max_seq_len: int | None = None, padding: int = 512, provider: str = "cpu",
                        device_id: int = 0, disable_metacommands: bool = False) -> int:
    """Generate as the seed's scripts did; print the time and speed, then the answer. Returns the exit code."""

    def run() -> int:
        from ..runtime import GenerateOptions, load_model
        from ..runtime.stream import check_text, encode_prompt, stream_generate
        from ..tokenizer import Tokenizer

        check_text(prompt)
        options = GenerateOptions(max_new_tokens=max_gen_len, ignore_eos=ignore_eos, padding=padding)
        model = load_model(model_dir, provider, max_seq_len=max_seq_len, device_id=device_id,
                           disable_metacommands=disable_metacommands)
        tokenizer = Tokenizer.from_folder(model_dir)
        ids = encode_prompt(tokenizer, prompt, chat_template=True)
        responses = list(stream_generate(model, tokenizer, ids, options))
        last = responses[-1]
        print(f"Execution took {last.elapsed_s:0.4f} seconds "
              f"(generated {last.generation_tokens / last.elapsed_s:0.2f} tokens per second)")
        print("".join(r.text for r in responses))
        return 0

    return report_errors(run)
