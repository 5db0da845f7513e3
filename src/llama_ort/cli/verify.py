"""`llama-ort verify`: a built model beside the float64 reference forward pass on its checkpoint's weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..locations import models_dir
from .arg_types import positive_int

PROMPTS = 4


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="compare a built model's logits with the checkpoint's reference forward pass",
        description="Run a model folder (on the CPU provider) and a float64 numpy forward pass of the "
                    "checkpoint it was built from over the same random prompts, and report the largest "
                    "logit difference, the cosine similarity and how often the top token agrees.")
    parser.add_argument("checkpoint", nargs="?", default=None,
                        help="the checkpoint the model was built from (default: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--model", type=Path, default=None,
                        help=f"model folder (default: the embedded model's, in {models_dir()}, built there on "
                             "first use)")
    parser.add_argument("--prompts", type=positive_int, default=PROMPTS,
                        help=f"random prompts to compare (default: {PROMPTS})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import open_checkpoint
    from ..pipeline import embedded_model_folder
    from ..verify.check import MIN_COSINE, compare

    folder = args.model or embedded_model_folder("cpu")
    checkpoint = open_checkpoint(args.checkpoint)
    reports = [compare(checkpoint, folder, seed) for seed in range(args.prompts)]
    precision = reports[0]["precision"]
    worst = min(r["cosine"] for r in reports)
    agree = sum(r["same_argmax"] for r in reports)
    print(f"{folder} ({precision}) against {checkpoint.path}, {args.prompts} random prompts of "
          f"{len(reports[0]['prompt_ids'])} tokens:")
    print(f"  max |dlogit| {max(r['max_abs_diff'] for r in reports):.3g}, top-1 agreement {agree}/{len(reports)}, "
          f"lowest cosine {worst:.6f} (bound for {precision}: {MIN_COSINE[precision]})")
    if worst >= MIN_COSINE[precision]:
        print("PASS")
        return 0
    print(f"FAIL: the model's logits are not the checkpoint's; if {folder} was built from another checkpoint, "
          "give that one")
    return 1
