"""One variant's runs in a process of its own: its memory is its alone, its threads meet no other library's, and
a crash (a failed compile, out of memory) costs one row, not the benchmark.

    python -m llama_ort.bench.worker JOB.json RESULT.json

JOB holds the variant, its inputs, the workload and the vocabulary size; RESULT gets the cells.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from .memory import CudaMemorySampler, own_peak_rss_mb, reset_own_peak_rss
from .peers import PEERS, Inputs, Variant
from .results import Cell
from .workload import Workload


def measure_cell(runner, workload: Workload, batch: int, prompt_len: int, vocab_size: int) -> Cell:
    """Warm-up runs, then timed ones, on the same prompts; with the peak memory over all of them."""
    prompts = workload.prompts(batch, prompt_len, vocab_size)
    on_gpu = workload.device == "cuda"
    reset_own_peak_rss()
    with CudaMemorySampler(os.getpid()) if on_gpu else contextlib.nullcontext() as device_memory:
        for _ in range(workload.warmup):
            runner.generate(prompts, workload.new_tokens)
        timings = [runner.generate(prompts, workload.new_tokens) for _ in range(workload.repeats)]
    peak_mb, kind = (device_memory.peak_mb, "cuda") if on_gpu else (own_peak_rss_mb(), "rss")
    return Cell.from_timings(batch, prompt_len, workload.new_tokens, timings, peak_mb, kind)


def run_job(job: dict) -> list[Cell]:
    workload = Workload.from_dict(job["workload"])
    variant = Variant.from_dict(job["variant"])
    runner = PEERS[variant.peer].open(variant, Inputs(**job["inputs"]), workload)
    cells = []
    for batch, prompt_len in workload.cells():
        if runner.max_batch is not None and batch > runner.max_batch:
            cells.append(Cell(batch, prompt_len, workload.new_tokens,
                              skipped=f"runs at most {runner.max_batch} sequence(s) at a time"))
            continue
        try:
            cells.append(measure_cell(runner, workload, batch, prompt_len, job["vocab_size"]))
        except Exception as e:  # noqa: BLE001 - one cell's failure (e.g. out of memory) is reported, not fatal
            traceback.print_exc()
            cells.append(Cell(batch, prompt_len, workload.new_tokens, skipped=f"failed: {type(e).__name__}: {e}"))
        print(f"{variant.label}: batch {batch}, prompt {prompt_len} done", file=sys.stderr, flush=True)
    return cells


def main(argv: list[str]) -> int:
    job_path, result_path = map(Path, argv)
    cells = run_job(json.loads(job_path.read_text()))
    result_path.write_text(json.dumps([asdict(c) for c in cells], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
