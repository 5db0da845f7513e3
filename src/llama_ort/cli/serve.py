"""`llama-ort serve`: the OpenAI API and a chat page for a model folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import fail
from ..graph.target import PRECISIONS
from ..locations import models_dir
from ..runtime.providers import PROVIDERS
from .arg_types import non_negative_int, port_number, positive_int
from .common import default_precisions, setup_logging

SERVER_PACKAGES = ("fastapi", "uvicorn", "pydantic", "starlette")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve a model: OpenAI-compatible API and a chat page",
        description="Serve a model folder built by `llama-ort optimize`: /v1/chat/completions, /v1/completions "
                    "and /v1/models (OpenAI-compatible, streamed or not), and a chat page at /. Requests from "
                    "many clients are decoded together.")
    model = parser.add_argument_group("model")
    model.add_argument("--model", type=Path, default=None,
                       help="model folder (default: the embedded SmolLM2-135M-Instruct's, in "
                            f"{models_dir()}, built there on first use)")
    model.add_argument("--precision", default=None, choices=list(PRECISIONS),
                       help=f"without --model: the default model's weights (default: {default_precisions()})")
    model.add_argument("--provider", default="cpu", choices=list(PROVIDERS), help="execution provider (default: cpu)")
    model.add_argument("--device-id", type=non_negative_int, default=0,
                       help="the provider's device number (default: 0)")
    model.add_argument("--cuda-graph", action="store_true",
                       help="cuda: capture each decode batch size once and replay it as a CUDA graph")
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to listen on: 127.0.0.1 (default) is this machine only, 0.0.0.0 the network")
    server.add_argument("--port", type=port_number, default=8000, help="port (default: 8000)")
    server.add_argument("--open", action="store_true", help="open the chat page in a browser")
    limits = parser.add_argument_group("limits")
    # The library's defaults, written out: importing llama_ort.serve here would need fastapi for every command.
    limits.add_argument("--max-seq-len", type=positive_int, default=2048,
                        help="tokens one request may hold, prompt and answer together; longer prompts get HTTP 400 "
                             "(default: 2048)")
    limits.add_argument("--max-batch-size", type=positive_int, default=16,
                        help="requests decoded together: the KV cache's slots, allocated at start (default: 16)")
    limits.add_argument("--prefill-chunk", type=positive_int, default=256,
                        help="prompt tokens run between two decode steps, so a long prompt never stalls the "
                             "streams already running (default: 256)")
    limits.add_argument("--no-batch-invariance", dest="batch_invariant", action="store_false",
                        help="let a lone int4 request on the CPU decode one row a step: about 1.4x faster for it, but "
                             "a greedy answer may then change with the load (docs/serve.md)")
    limits.add_argument("--max-waiting", type=non_negative_int, default=64,
                        help="requests that may wait for room in a full batch; more get HTTP 429 (default: 64)")
    limits.add_argument("--max-body-bytes", type=positive_int, default=None,
                        help="largest request body; larger ones get HTTP 413 before they are read (default: room "
                             "for a prompt of --max-seq-len tokens, 64 bytes a token plus 16 KiB: 144 KiB at 2048)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..serve import serve
    except ModuleNotFoundError as e:
        if e.name not in SERVER_PACKAGES:
            raise
        raise fail("serve", f"needs {e.name}, which is not installed: pip install -e '.[serve]' (from the "
                            "repository), or pip install fastapi uvicorn") from None

    setup_logging()
    serve(args.model, args.host, args.port, open_browser=args.open, provider=args.provider, device_id=args.device_id,
          precision=args.precision, max_seq_len=args.max_seq_len, max_batch_size=args.max_batch_size,
          max_waiting=args.max_waiting, max_body_bytes=args.max_body_bytes, prefill_chunk=args.prefill_chunk,
          cuda_graph=args.cuda_graph, batch_invariant=args.batch_invariant)
    return 0
