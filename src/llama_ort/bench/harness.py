"""`bench`: every peer's variants on the same weights and workload, each built once and run in a worker process.

For each variant: prepare its inputs (a Hugging Face folder or GGUF file of the same weights), build it while
sampling the build's memory, then run the workload in a worker (python -m llama_ort.bench.worker) under a
time limit. A peer that cannot run, and a variant that does not apply or fails, still gets its row, with why.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from ..errors import LlamaOrtError, fail
from .memory import TreeSampler
from .peers import PEERS, Inputs, Peer, Variant
from .results import FAILED, MISSING, NOT_APPLICABLE, OK, BuildStats, Cell, Row
from .sources import Sources, resolve
from .workload import Workload

log = logging.getLogger("llama_ort.bench")

DEFAULT_PRECISIONS = {"cpu": ("fp32", "int4"), "cuda": ("fp16", "int4")}
LOG_TAIL_LINES = 5  # of a failed build's or worker's output, into the row's reason


class StepFailed(Exception):
    """A build or worker that did not finish: the message says why, for the row."""


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
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
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
    key = Variant(**job["variant"]).label.replace(" ", "-").replace(".", "")
    job_file, result_file, log_file = (folder / f"{key}.{ext}" for ext in ("job.json", "result.json", "log"))
    job_file.write_text(json.dumps(job, indent=1))
    result_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "llama_ort.bench.worker", str(job_file), str(result_file)]
    with open(log_file, "w") as output:
        try:
            returncode = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            raise StepFailed(f"timed out after {timeout_s:.0f} s ({log_file})") from None
    if returncode != 0 or not result_file.exists():
        raise StepFailed(f"worker exited with {returncode} ({log_file}): {tail(log_file)}")
    return [Cell(**c) for c in json.loads(result_file.read_text())]


def variant_row(peer: Peer, variant: Variant, sources: Sources, workload: Workload, workdir: Path,
                rebuild: bool, timeout_s: float) -> Row:
    row = Row(peer.name, variant.label, variant.precision, OK, variant=variant.to_dict())
    builds = workdir / "builds" / sources.name
    builds.mkdir(parents=True, exist_ok=True)
    try:
        if sources.model_folder is not None and peer.name == "llama-ort":
            inputs = Inputs(built=str(sources.model_folder))
        else:
            inputs = peer.inputs(variant, sources)
            row.build = build(peer, variant, inputs, builds, rebuild)
            if row.build is not None:
                inputs.built = str(builds / variant.build_key)
        job = {"variant": variant.to_dict(), "inputs": asdict(inputs), "workload": workload.to_dict(),
               "vocab_size": sources.spec.vocab_size}
        row.cells = run_worker(job, builds, timeout_s)
    except (StepFailed, LlamaOrtError) as e:
        row.status, row.reason = FAILED, str(e)
    return row


def run_bench(source: str | Path | None = None, shape: str | None = None, workload: Workload = Workload(),
              peers: tuple[str, ...] | None = None, precisions: tuple[str, ...] | None = None,
              workdir: Path = Path("bench-work"), rebuild: bool = False, timeout_s: float = 3600,
              on_row: Callable[[Row], None] = lambda row: None) -> tuple[Sources, list[Row]]:
    """Benchmark `source` (a checkpoint or built llama-ort folder; None: the embedded model) or a random
    checkpoint of `shape`, with every peer in `peers` (default: all) at `precisions`."""
    unknown = set(peers or ()) - set(PEERS)
    if unknown:
        raise fail("--peers", f"unknown peer(s) {', '.join(sorted(unknown))}; choose from {', '.join(PEERS)}")
    workdir = Path(workdir)
    sources = resolve(source, shape, workdir, workload.device)
    if sources.model_folder is not None:
        precisions = (sources.built_precision,)
    precisions = precisions or DEFAULT_PRECISIONS[workload.device]
    rows = []
    for peer in (PEERS[name] for name in (peers or PEERS)):
        reason = peer.missing(workload)
        if reason is None and sources.model_folder is not None and peer.name != "llama-ort":
            reason = "a built model folder holds no checkpoint to give it: benchmark the checkpoint instead"
        if reason is not None:
            rows.append(Row(peer.name, peer.name, "", MISSING, reason))
            on_row(rows[-1])
            continue
        for variant, why in peer.variants(precisions, workload):
            if why is not None:
                rows.append(Row(peer.name, variant.label, variant.precision, NOT_APPLICABLE, why, variant.to_dict()))
            else:
                log.info("%s: running", variant.label)
                rows.append(variant_row(peer, variant, sources, workload, workdir, rebuild, timeout_s))
            on_row(rows[-1])
    return sources, rows
