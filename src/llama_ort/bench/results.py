"""The numbers a benchmark gives: timings of one generation, the medians of a cell, a variant's row."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

# A row's status: measured, or why not
OK, MISSING, NOT_APPLICABLE, FAILED, SKIPPED = "ok", "missing", "not applicable", "failed", "skipped"


@dataclass
class Timing:
    """One generation, in seconds from the call that starts it."""

    prefill_s: float  # the prompt's forward pass alone, with the peer's buffers already set up
    first_token_s: float  # the first new token on the host (time to first token)
    last_token_s: float  # the last new token on the host


@dataclass
class Cell:
    """The medians of one (batch, prompt length) cell, and every timed run behind them."""

    batch: int
    prompt_len: int
    new_tokens: int
    prefill_ms: float | None = None
    ttft_ms: float | None = None
    decode_tok_s: float | None = None  # all rows together: batch * (new_tokens - 1) tokens after the first
    peak_memory_mb: float | None = None  # CUDA: the process's device memory; CPU: its resident memory
    memory_kind: str = "rss"  # "cuda" or "rss"
    skipped: str | None = None  # why this cell was not measured
    runs: list[dict] = field(default_factory=list)

    @classmethod
    def from_timings(cls, batch: int, prompt_len: int, new_tokens: int, timings: list[Timing],
                     peak_memory_mb: float | None, memory_kind: str) -> Cell:
        decode = [batch * (new_tokens - 1) / max(t.last_token_s - t.first_token_s, 1e-9) for t in timings]
        return cls(batch, prompt_len, new_tokens,
                   prefill_ms=statistics.median(t.prefill_s for t in timings) * 1e3,
                   ttft_ms=statistics.median(t.first_token_s for t in timings) * 1e3,
                   decode_tok_s=statistics.median(decode),
                   peak_memory_mb=peak_memory_mb, memory_kind=memory_kind,
                   runs=[asdict(t) for t in timings])


def merge_rounds(rounds: list[list[Cell]]) -> list[Cell]:
    """One variant's cells from several worker runs: medians over all their runs, the highest peak."""
    merged = []
    for cells in zip(*rounds):
        first = cells[0]
        measured = [c for c in cells if not c.skipped]
        if not measured:
            merged.append(first)
            continue
        timings = [Timing(**run) for c in measured for run in c.runs]
        peaks = [c.peak_memory_mb for c in measured if c.peak_memory_mb is not None]
        merged.append(Cell.from_timings(first.batch, first.prompt_len, first.new_tokens, timings,
                                        max(peaks) if peaks else None, first.memory_kind))
    return merged


@dataclass
class BuildStats:
    """One build, measured from outside its process tree."""

    seconds: float
    peak_rss_mb: float
    peak_anon_mb: float  # RssAnon: what the build allocated itself, memory-mapped files left out
    output_mb: float  # the built model on disk
    command: list[str]
    reused: bool = False  # taken from an earlier run's work folder (its numbers are that build's)


@dataclass
class Row:
    """One variant of one peer: its build, its cells, or why there are none."""

    peer: str
    label: str
    precision: str
    status: str
    reason: str | None = None
    variant: dict = field(default_factory=dict)
    build: BuildStats | None = None
    cells: list[Cell] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> Row:
        build = BuildStats(**d["build"]) if d.get("build") else None
        return cls(**{**d, "build": build, "cells": [Cell(**c) for c in d.get("cells", [])]})
