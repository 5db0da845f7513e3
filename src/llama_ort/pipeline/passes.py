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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import model_format as io
from ..checkpoint import names
from ..checkpoint.base import Checkpoint
from ..errors import LlamaOrtError
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


@contextmanager
def progress_bar(pass_name: str, total: int, show: bool, counts_bytes: bool = True) -> Iterator[Callable]:
    """A pass's progress on stderr, silent unless `show`. Yields `done(item, nbytes=0)`: one more of `total` items
    (tensors, files) done, shown by name; an item done again (a tied table read twice) is not counted twice."""
    columns = [TextColumn(f"{pass_name} [bold]{{task.fields[item]}}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[mb]:,.0f} MB read"), TimeElapsedColumn()]
    if not counts_bytes:
        del columns[3]
    with Progress(*columns, console=Console(stderr=True), disable=not show) as progress:
        task = progress.add_task(pass_name, total=total, item="", mb=0.0)
        read = {"bytes": 0}
        seen = set()

        def done(item: str, nbytes: int = 0) -> None:
            read["bytes"] += nbytes
            progress.update(task, advance=item not in seen, item=item, mb=read["bytes"] / 1e6)
            seen.add(item)

        yield done
        progress.update(task, item="done")


def run_load(checkpoint: Checkpoint, out: Path, show_progress: bool) -> None:
    exports_tokenizer = checkpoint.format in TOKENIZER_FORMATS
    with progress_bar("load", 1 + exports_tokenizer, show_progress, counts_bytes=False) as done:
        checkpoint.spec.save(out / "spec.json")
        done("spec.json")
        if exports_tokenizer:
            from ..tokenizer import export_tokenizer

            try:
                export_tokenizer(checkpoint, out)
            except LlamaOrtError as e:
                # A random-weight checkpoint (make-random) has no tokenizer and is still worth building: the model
                # then takes token ids only (bench), and commands that need text say so when they load it.
                log.warning("no tokenizer: %s", e)
            done("tokenizer")


def run_build(checkpoint: Checkpoint, out: Path, options: BuildOptions, show_progress: bool) -> None:
    spec = checkpoint.spec
    total = len(names.canonical_names(options.num_layers or spec.num_layers, spec.tie_word_embeddings))
    with progress_bar("build", total, show_progress) as done:
        manifest = build_model(checkpoint, out, options, on_read=done)
    if manifest.quantization.get("weights_kept_as_stored"):
        log.info("build: %d weights kept as the checkpoint's own 4-bit blocks (lossless)",
                 manifest.quantization["weights_kept_as_stored"])
    write_argmax_model(out)


def run_verify(checkpoint: Checkpoint, built: Path, out: Path, show_progress: bool) -> dict:
    """The built model's run, then the reference's reading of each tensor, as progress."""
    num_layers = io.Manifest.load(built).spec["num_layers"]
    total = 1 + len(names.canonical_names(num_layers, checkpoint.spec.tie_word_embeddings))
    with progress_bar("verify", total, show_progress) as done:
        report = verify_model(checkpoint, built, on_read=done)
    (out / "verify.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
