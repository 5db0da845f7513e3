"""`llama-ort download`: weights from Meta's presigned URL (Llama 2), or from the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint.download import LLAMA2_SHARDS, download_hf, download_llama2
from ..errors import fail
from ..locations import checkpoints_dir

DEFAULT_MODEL = "7b-chat"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "download", help="download model weights",
        description="Download Llama 2 with the URL from Meta's e-mail (asked for when no source is given), "
                    "or a model from the Hugging Face Hub.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--meta-url", metavar="URL", help="the URL from Meta's e-mail, valid 24 hours")
    source.add_argument("--hf", metavar="REPO_ID",
                        help="a Hugging Face model, e.g. meta-llama/Llama-2-7b-chat-hf (token from HF_TOKEN)")
    parser.add_argument("--model", choices=list(LLAMA2_SHARDS),
                        help=f"the Llama 2 model to get from Meta (default {DEFAULT_MODEL})")
    parser.add_argument("--revision", help="with --hf: a branch, tag or commit (default: main)")
    parser.add_argument("--dest", type=Path,
                        help=f"folder to download into (default: {checkpoints_dir()}/llama-2, or "
                             f"{checkpoints_dir()}/<name> with --hf)")
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.hf is not None and not args.hf.strip():
        raise fail("--hf", "is empty: give a repo id such as meta-llama/Llama-2-7b-chat-hf")
    if args.hf:
        if args.model:
            raise fail("--model", "picks a Llama 2 model from Meta; with --hf the repo id names the model")
        folder = download_hf(args.hf, args.dest or checkpoints_dir() / args.hf.split("/")[-1], args.revision)
    else:
        if args.revision:
            raise fail("--revision", "goes with --hf; Meta's URL names one release")
        url = args.meta_url or ask_for_url()
        folder = download_llama2(url, args.model or DEFAULT_MODEL, args.dest or checkpoints_dir() / "llama-2")
    print(f"downloaded to {folder}")
    return 0


def ask_for_url() -> str:
    try:
        return input("Paste the URL from Meta's e-mail (valid 24 hours): ").strip()
    except EOFError:
        raise fail("--meta-url", "not given, and there is no input to ask for it; pass --meta-url URL") from None
