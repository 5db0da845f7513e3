"""The passes of `llama-ort optimize`. Each writes its result into a folder that the cache keeps.

- load: the checkpoint's description and tokenizer files (small).
- build: the ONNX model. Fusion into the target's contrib ops, the precision cast and int4 quantization
  happen here, tensor by tensor as the weights stream from the checkpoint to the external-data file:
  as separate passes over a serialized model, each would rewrite (and hold) the whole model again.
- verify: the built model against a numpy forward pass on the checkpoint's weights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..checkpoint import names
from ..errors import LlamaOrtError
from ..checkpoint.base import Checkpoint
from ..graph.argmax import write_argmax_model
from ..graph.llama import BuildOptions, build_model
from ..verify.check import verify_model

TOKENIZER_FORMATS = ("hf", "meta", "gguf")
log = logging.getLogger("llama_ort.pipeline")


@dataclass(frozen=True)
class Pass:
    name: str
    version: int  # bump when the pass's output changes for the same input and options


LOAD = Pass("load", 2)
BUILD = Pass("build", 3)
VERIFY = Pass("verify", 1)


def run_load(checkpoint: Checkpoint, out: Path) -> None:
    checkpoint.spec.save(out / "spec.json")
    if checkpoint.format in TOKENIZER_FORMATS:
        from ..tokenizer import export_tokenizer

        try:
            export_tokenizer(checkpoint, out)
        except LlamaOrtError as e:
            # A random-weight checkpoint (make-random) has no tokenizer and is still worth building: the model
            # then takes token ids only (bench), and commands that need text say so when they load it.
            log.warning("no tokenizer: %s", e)


def run_build(checkpoint: Checkpoint, out: Path, options: BuildOptions, show_progress: bool) -> None:
    spec = checkpoint.spec
    total = len(names.canonical_names(options.num_layers or spec.num_layers, spec.tie_word_embeddings))
    columns = (TextColumn("build [bold]{task.fields[tensor]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[mb]:,.0f} MB read"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not show_progress) as progress:
        task = progress.add_task("build", total=total, tensor="", mb=0.0)
        read = {"bytes": 0}
        seen = set()  # a tied float table may be read twice (embeddings, then the lm_head to quantize)

        def on_read(name: str, nbytes: int) -> None:
            read["bytes"] += nbytes
            progress.update(task, advance=name not in seen, tensor=name, mb=read["bytes"] / 1e6)
            seen.add(name)

        manifest = build_model(checkpoint, out, options, on_read=on_read)
        progress.update(task, tensor="done")
    if manifest.quantization.get("weights_kept_as_stored"):
        log.info("build: %d weights kept as the checkpoint's own 4-bit blocks (lossless)",
                 manifest.quantization["weights_kept_as_stored"])
    write_argmax_model(out)


def run_verify(checkpoint: Checkpoint, built: Path, out: Path) -> dict:
    report = verify_model(checkpoint, built)
    (out / "verify.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
