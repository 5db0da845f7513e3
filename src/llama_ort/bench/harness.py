"""`bench`: every peer's variants on the same weights and workload, each built once and run in a worker process.

For each variant: prepare its inputs (a Hugging Face folder or GGUF file of the same weights), build it while
sampling the build's memory, then run the workload in a worker (python -m llama_ort.bench.worker) under a
time limit. A peer that cannot run, and a variant that does not apply or fails, still gets its row, with why.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from .. import locations
from ..checkpoint.spec import ModelSpec
from ..errors import LlamaOrtError, fail
from .shapes import get_shape
from .memory import TreeSampler
from .peers import PEERS, Inputs, LlamaOrt, Peer, Variant, slug
from .results import FAILED, MISSING, NOT_APPLICABLE, OK, SKIPPED, BuildStats, Cell, Row, merge_rounds
from .sources import Sources, resolve
from .workload import Workload

log = logging.getLogger("llama_ort.bench")

DEFAULT_PRECISIONS = {"cpu": ("fp32", "int4"), "cuda": ("fp16", "int4")}
PRECISIONS = ("fp32", "fp16", "bf16", "int4")  # what --precisions may name; each peer runs those it has
LOG_TAIL_LINES = 5  # of a failed build's or worker's output, into the row's reason


class StepFailed(Exception):
    """A build or worker that did not finish: the message says why, for the row."""


def child_env() -> dict[str, str]:
    """The environment for builds and workers: they import this same llama_ort, installed or not."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(line.strip() for line in text[-lines:])


def folder_mb(path: Path) -> float:
    files = [path] if path.is_file() else path.rglob("*")
    return sum(p.stat().st_size for p in files if p.is_file()) / 1e6


def build(peer: Peer, variant: Variant, inputs: Inputs, builds: Path, rebuild: bool) -> BuildStats | None:
    """Build the variant into builds/<build_key> unless an earlier build is there; None: nothing to build."""
    out = builds / variant.build_key
    stats_file = builds / f"{variant.build_key}.build.json"
    if out.exists() and stats_file.exists() and not rebuild:
        return BuildStats(**{**json.loads(stats_file.read_text()), "reused": True})
    with tempfile.TemporaryDirectory(dir=builds, prefix=".scratch-") as scratch:
        command = peer.build_command(variant, inputs, out, Path(scratch))
        if command is None:
            return None
        shutil.rmtree(out, ignore_errors=True)
        stats_file.unlink(missing_ok=True)
        log_file = builds / f"{variant.build_key}.build.log"
        log.info("%s: building (%s)", variant.label, " ".join(command))
        started = time.perf_counter()
        with open(log_file, "w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=child_env())
            with TreeSampler(process.pid) as sampler:
                returncode = process.wait()
        seconds = time.perf_counter() - started
    if returncode != 0 or not out.exists():
        raise StepFailed(f"build failed (exit {returncode}; {log_file}): {tail(log_file)}")
    stats = BuildStats(seconds, sampler.peak_rss_kb / 1024, sampler.peak_anon_kb / 1024, folder_mb(out), command)
    stats_file.write_text(json.dumps(asdict(stats), indent=1))
    return stats


def run_worker(job: dict, folder: Path, timeout_s: float) -> list[Cell]:
    """The workload in a worker process; its output goes to folder/<key>.log."""
    key = slug(Variant.from_dict(job["variant"]).label)
    job_file, result_file, log_file = (folder / f"{key}.{ext}" for ext in ("job.json", "result.json", "log"))
    job_file.write_text(json.dumps(job, indent=1))
    result_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "llama_ort.bench.worker", str(job_file), str(result_file)]
    with open(log_file, "w") as output:
        try:
            returncode = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=timeout_s,
                                        env=child_env()).returncode
        except subprocess.TimeoutExpired:
            raise StepFailed(f"timed out after {timeout_s:.0f} s ({log_file})") from None
    if returncode != 0 or not result_file.exists():
        raise StepFailed(f"worker exited with {returncode} ({log_file}): {tail(log_file)}")
    return [Cell(**c) for c in json.loads(result_file.read_text())]


def prepare(peer: Peer, variant: Variant, sources: Sources, workload: Workload, builds: Path,
            rebuild: bool) -> tuple[Row, dict | None]:
    """The variant's row with its build done, and the job its workers run (None when the build failed)."""
    row = Row(peer.name, variant.label, variant.precision, OK, variant=variant.to_dict())
    try:
        if sources.model_folder is not None and peer.name == "llama-ort":
            inputs = Inputs(built=str(sources.model_folder))
        else:
            inputs = peer.inputs(variant, sources)
            row.build = build(peer, variant, inputs, builds, rebuild)
            if row.build is not None:
                inputs.built = str(builds / variant.build_key)
    except (StepFailed, LlamaOrtError) as e:
        row.status, row.reason = FAILED, str(e)
        return row, None
    return row, {"variant": variant.to_dict(), "inputs": asdict(inputs), "workload": workload.to_dict(),
                 "vocab_size": sources.spec.vocab_size}


def plan(peer: Peer, sources: Sources, workload: Workload, precisions: tuple[str, ...], skip: tuple[str, ...],
         llama_ort_variants: tuple[str, ...]) -> list[tuple[Row | None, Variant]]:
    """Each variant of `peer`, with its final row already when it will not run (missing, not applicable, skipped)."""
    reason = peer.missing(workload)
    if reason is None and sources.model_folder is not None and peer.name != "llama-ort":
        reason = "a built model folder holds no checkpoint to give it: benchmark the checkpoint instead"
    if reason is not None:
        return [(Row(peer.name, peer.name, "", MISSING, reason), None)]
    variants = peer.variants(precisions, workload)
    if isinstance(peer, LlamaOrt):
        variants += [(v, None) for spec in llama_ort_variants for v in peer.custom_variants(spec, workload)]
    planned = []
    for variant, why in variants:
        left_out = next((word for word in skip if word in variant.label), None)
        row = None
        if why is not None:
            row = Row(peer.name, variant.label, variant.precision, NOT_APPLICABLE, why, variant.to_dict())
        elif left_out is not None:
            row = Row(peer.name, variant.label, variant.precision, SKIPPED, f"left out by --skip {left_out}",
                      variant.to_dict())
        planned.append((row, variant))
    return planned


def check_context(spec: ModelSpec, workload: Workload) -> None:
    if workload.max_seq_len() > spec.context_length:
        raise fail("--prompt-lengths", f"the longest prompt and --new-tokens take {workload.max_seq_len()} positions, "
                                       f"more than the model's context length, {spec.context_length}")


def run_bench(source: str | Path | None = None, shape: str | None = None, workload: Workload = Workload(),
              peers: tuple[str, ...] | None = None, precisions: tuple[str, ...] | None = None,
              workdir: Path | None = None, rebuild: bool = False, timeout_s: float = 3600,
              skip: tuple[str, ...] = (), llama_ort_variants: tuple[str, ...] = (),
              on_row: Callable[[Row], None] = lambda row: None) -> tuple[Sources, list[Row]]:
    """Benchmark `source` (a checkpoint or built llama-ort folder; None: the embedded model) or a random
    checkpoint of `shape`, with every peer in `peers` (default: all) at `precisions`, building under `workdir`
    (None: locations.bench_dir()). Variants whose label contains one of `skip` get a row that says so, and no
    run. Each of `llama_ort_variants` ("int4 --block-size 128": a precision and more `llama-ort optimize`
    arguments) adds a llama-ort row.

    Every variant is built first; then each of `workload.rounds` rounds runs every variant's worker once, in turn, so
    that on a shared machine a burst of someone else's work slows all of them, not one: the medians are over
    every round's runs.
    """
    unknown = set(peers or ()) - set(PEERS)
    if unknown:
        raise fail("--peers", f"unknown peer(s) {', '.join(sorted(unknown))}; choose from {', '.join(PEERS)}")
    for precision in precisions or ():
        if precision not in PRECISIONS:
            raise fail("--precisions", f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    workdir = Path(workdir or locations.bench_dir())
    if shape:  # before its random checkpoint is written
        check_context(get_shape(shape), workload)
    sources = resolve(source, shape, workdir, workload.device)
    check_context(sources.spec, workload)
    if sources.model_folder is not None:
        precisions = (sources.built_precision,)
    precisions = precisions or DEFAULT_PRECISIONS[workload.device]
    builds = workdir / "builds" / sources.name
    builds.mkdir(parents=True, exist_ok=True)

    rows: list[Row] = []
    jobs: dict[int, dict] = {}  # row index -> the job its workers run
    for peer in (PEERS[name] for name in (peers or PEERS)):
        for row, variant in plan(peer, sources, workload, precisions, skip, llama_ort_variants):
            if row is None:
                log.info("%s: preparing", variant.label)
                row, job = prepare(peer, variant, sources, workload, builds, rebuild)
                if job is not None:
                    jobs[len(rows)] = job
            rows.append(row)

    measured: dict[int, list[list[Cell]]] = {index: [] for index in jobs}
    rounds = workload.rounds
    for round_number in range(rounds):
        for index, job in jobs.items():
            if rows[index].status != OK:
                continue
            log.info("%s: running (round %d of %d)", rows[index].label, round_number + 1, rounds)
            try:
                measured[index].append(run_worker(job, builds, timeout_s))
            except StepFailed as e:
                rows[index].status, rows[index].reason = FAILED, str(e)
    for index, row in enumerate(rows):
        if row.status == OK and measured.get(index):
            row.cells = merge_rounds(measured[index])
        on_row(row)
    return sources, rows
