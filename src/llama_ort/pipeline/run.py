"""`optimize`: run the passes through the cache, then lay out the output folder atomically."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, locations
from ..checkpoint import open_checkpoint
from ..checkpoint.base import Checkpoint
from ..errors import LlamaOrtError, fail
from ..graph.llama import BuildOptions
from ..graph.target import get_target
from ..quant.options import QuantOptions
from ..model_format import MANIFEST
from .cache import Cache, CorruptEntry, cache_key
from .passes import BUILD, LOAD, VERIFY, Pass, run_build, run_load, run_verify

log = logging.getLogger("llama_ort.pipeline")

# Verify by default only where the numpy reference and a CPU session are quick: up to ~2B parameters.
VERIFY_MAX_PARAMETERS = 2_000_000_000


@dataclass
class OptimizeResult:
    output: Path
    cached: dict[str, bool] = field(default_factory=dict)  # pass name -> taken from the cache
    seconds: float = 0.0
    verify_report: dict | None = None


def checkpoint_name(source: str | Path | None) -> str:
    """A checkpoint's name, lowercase, without a GGUF's type and extension: `smollm2-135m-instruct` for the
    embedded SmolLM2-135M-Instruct.Q4_1.gguf (source None)."""
    if source is None:
        return "smollm2-135m-instruct"
    return re.sub(r"(\.(q\w+|f16|f32|bf16))?(\.gguf)?$", "", Path(source).name.lower())


def default_output_name(source: str | Path | None, options: BuildOptions) -> str:
    """`smollm2-135m-instruct-cpu-fp32` for the embedded model built with the defaults. Options off their
    defaults lengthen it (`-2layers`, `-block128` ...), so that a debugging build never replaces the model the
    other commands find by default."""
    parts = [checkpoint_name(source), options.target, options.precision]
    layout = options.resolved().layout
    if layout != get_target(options.target).default_layout:
        parts.append(layout)
    if options.num_layers:
        parts.append(f"{options.num_layers}layers")
    if options.all_logits:
        parts.append("all-logits")
    if options.precision == "int4":
        quant, default = options.quant, QuantOptions()
        off_default = [(quant.block_size != default.block_size, f"block{quant.block_size}"),
                       (quant.symmetric != default.symmetric, "zero-points"),
                       (quant.accuracy_level != default.accuracy_level, f"accuracy{quant.accuracy_level}"),
                       (quant.quantize_lm_head != default.quantize_lm_head, "float-lm-head"),
                       (quant.embeddings != default.embeddings, f"embeddings-{quant.embeddings}")]
        parts += [label for differs, label in off_default if differs]
    return "-".join(parts)


def embedded_model_folder(target: str = "cpu", precision: str | None = None, models_dir: Path | None = None,
                          cache_dir: Path | None = None) -> Path:
    """The embedded model's folder where `llama-ort optimize` puts it with these options, built if missing.
    precision None is the target's default; models_dir None is locations.models_dir(), cache_dir None
    locations.cache_dir(): the same folders from any working directory."""
    options = BuildOptions(target=target, precision=precision or get_target(target).default_precision)
    folder = Path(models_dir or locations.models_dir()) / default_output_name(None, options)
    if not (folder / MANIFEST).exists():
        log.info("no model given: building the embedded default model into %s", folder)
        optimize(None, folder, options, cache_dir)
    return folder


def parameter_count(checkpoint: Checkpoint) -> int:
    s = checkpoint.spec
    per_layer = s.hidden_size * (s.q_size * 2 + s.kv_size * 2) + 3 * s.hidden_size * s.intermediate_size
    return s.num_layers * per_layer + s.vocab_size * s.hidden_size * (1 if s.tie_word_embeddings else 2)


def optimize(source: str | Path | None, output: Path, options: BuildOptions, cache_dir: Path | None = None,
             *, clean_cache: bool = False, verify: bool | None = None, show_progress: bool = True,
             checkpoint: Checkpoint | None = None) -> OptimizeResult:
    """Build `source` (None: the embedded model) into the model folder `output`, replacing it. The pass cache is
    `cache_dir` (None: locations.cache_dir())."""
    started = time.perf_counter()
    output = Path(output)
    check_writable(output)
    cache_dir = Path(cache_dir or locations.cache_dir())
    options = options.resolved()
    checkpoint = checkpoint or open_checkpoint(source)
    check_replaceable(output, checkpoint)
    if Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise fail("--cache-dir", f"{cache_dir} is a file: give a folder")
    cache = Cache(cache_dir)
    if clean_cache:
        log.info("clean cache: removing %s", cache.root)
        cache.clear()
    result = OptimizeResult(output=output)

    def cached(step: Pass, key: str, produce: Callable[[Path], object]) -> Path:
        found = cache.lookup(step.name, key)
        result.cached[step.name] = found is not None
        if found:
            log.info("%s: taken from the cache (%s)", step.name, found)
            return found
        log.info("%s: running", step.name)
        return cache.store(step.name, key, produce)

    def taken(step: Pass, key: str, produce: Callable[[Path], object], entry: Path, take: Callable[[Path], object]):
        """`take(entry)`, which checks the entry's bytes against their hashes as it reads them; an entry found
        corrupt is built again (one that this run has just written and that changed already is an error)."""
        try:
            return take(entry)
        except CorruptEntry as e:
            if not result.cached[step.name]:
                raise LlamaOrtError(f"{step.name}: {e}, just after it was written: check the disk that holds "
                                    f"{cache.root}") from None
            log.warning("%s: %s; rebuilding it", step.name, e)
            cache.drop(entry)
            return take(cached(step, key, produce))

    load_key = cache_key(LOAD.name, LOAD.version, __version__, checkpoint.fingerprint())
    build_key = cache_key(BUILD.name, BUILD.version, __version__, load_key, options.to_dict())
    steps = [(LOAD, load_key, lambda out: run_load(checkpoint, out, show_progress)),
             (BUILD, build_key, lambda out: run_build(checkpoint, out, options, show_progress))]
    entries = [cached(*step) for step in steps]
    with staged(output) as folder:
        for step, entry in zip(steps, entries):
            taken(*step, entry, lambda found: cache.copy_out(found, folder))
        if verify if verify is not None else parameter_count(checkpoint) <= VERIFY_MAX_PARAMETERS:
            # on the model folder's own files, as they will be used
            step = (VERIFY, cache_key(VERIFY.name, VERIFY.version, __version__, build_key),
                    lambda out: run_verify(checkpoint, folder, out, show_progress))
            result.verify_report = taken(*step, cached(*step),
                                         lambda found: json.loads(cache.read_bytes(found, "verify.json")))
            log.info("verify: cosine %.6f, max |Δlogit| %.3g against the numpy reference",
                     result.verify_report["cosine"], result.verify_report["max_abs_diff"])
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def staged(output: Path) -> Iterator[Path]:
    """A folder beside `output` to lay the model out in, renamed to `output` (replacing it) once complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = output.parent / f".{output.name}.tmp-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    try:
        yield scratch
        remove_output(output)
        os.replace(scratch, output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_writable(output: Path) -> None:
    """Fail before any pass runs where `output` could not be written: the model is laid out beside it and renamed,
    so the nearest existing folder above it must be a folder this process may write in."""
    existing = next(p for p in output.absolute().parents if os.path.lexists(p))
    if not existing.is_dir():
        raise fail("--output", f"{output} cannot be written: {existing} is not a folder; give another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise fail("--output", f"{output} cannot be written: {existing} is not writable (permissions, or a read-only "
                               "filesystem); give another path")


def check_replaceable(output: Path, checkpoint: Checkpoint) -> None:
    """The output folder is replaced whole: refuse anything but a model folder, an empty folder or a new path,
    and a folder that holds the checkpoint being read."""
    source = checkpoint.path.resolve()
    if output.resolve() == source or output.resolve() in source.parents:
        raise fail("--output", f"{output} holds the checkpoint being built ({checkpoint.path}): give another path")
    if output.is_dir() and any(output.iterdir()) and not (output / MANIFEST).is_file():
        raise fail("--output", f"{output} exists and is not a llama-ort model folder (it has no {MANIFEST}), so it "
                               "will not be replaced: give a new path, or remove it first")
    if output.exists() and not output.is_dir():
        raise fail("--output", f"{output} is a file: give a folder path")


def remove_output(output: Path) -> None:
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
