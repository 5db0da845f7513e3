"""Ratios to the best peer, and cells merged over rounds: pure functions on made-up numbers."""

from dataclasses import asdict

import pytest

from llama_ort.bench.report import compare_to_best_peer
from llama_ort.bench.results import Cell, Row, Timing, merge_rounds


def row(peer, label, precision, decode, prefill_ms, skipped=None):
    cell = Cell(1, 97, 128, prefill_ms=prefill_ms, ttft_ms=prefill_ms, decode_tok_s=decode, skipped=skipped)
    return asdict(Row(peer, label, precision, "ok", cells=[cell]))


def test_ratios_are_against_the_best_other_system_at_the_same_precision_class():
    rows = [row("llama-ort", "llama-ort int4", "int4", 180.0, 100.0),
            row("llama-ort", "llama-ort fp32", "fp32", 50.0, 200.0),
            row("onnxruntime-genai", "onnxruntime-genai int4", "int4", 150.0, 150.0),
            row("onnxruntime-genai", "onnxruntime-genai fp32", "fp32", 40.0, 250.0),
            row("llama.cpp", "llama.cpp Q4_1", "Q4_1", 160.0, 300.0),
            row("transformers", "transformers fp32 eager", "fp32", 0.0, 0.0, skipped="failed: out of memory")]
    compare_to_best_peer(rows)
    ours = rows[0]["cells"][0]["vs_best_peer"]
    assert ours["decode"] == {"ratio": pytest.approx(180 / 160, abs=1e-3), "peer": "llama.cpp Q4_1"}
    assert ours["prefill"] == {"ratio": pytest.approx(150 / 100, abs=1e-3), "peer": "onnxruntime-genai int4"}
    assert rows[1]["cells"][0]["vs_best_peer"]["decode"]["peer"] == "onnxruntime-genai fp32"
    assert rows[2]["cells"][0]["vs_best_peer"]["decode"]["ratio"] == pytest.approx(150 / 160, abs=1e-3)
    assert "vs_best_peer" not in rows[5]["cells"][0]


def test_rounds_merge_into_medians_over_every_run_and_the_highest_peak():
    def cell(seconds, peak):
        timings = [Timing(0.1, 0.1, 0.1 + s) for s in seconds]
        return Cell.from_timings(1, 8, 11, timings, peak, "rss")

    merged, = merge_rounds([[cell([1.0, 2.0], 100.0)], [cell([0.5], 120.0)]])
    assert merged.decode_tok_s == pytest.approx(10 / 1.0)
    assert merged.peak_memory_mb == 120.0
    assert len(merged.runs) == 3
