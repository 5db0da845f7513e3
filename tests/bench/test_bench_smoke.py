"""`llama-ort bench` end to end on a tiny random model, every peer: each row and each peer accounted for.

The model (2 layers, hidden 64, seeded random weights from checkpoint.random) runs in milliseconds: what is
tested is the harness, not anyone's speed. The compile variant is left out (--skip): compiling takes minutes.
"""

import json

import pytest

from llama_ort.bench.peers import PEERS
from llama_ort.bench.random_checkpoint import make_random
from llama_ort.checkpoint.random import tiny_spec
from llama_ort.cli import main

STATUSES = {"ok", "missing", "not applicable", "failed", "skipped"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    checkpoint = make_random(tiny_spec(), tmp / "tiny", dtype="fp32", show_progress=False)
    argv = ["bench", str(checkpoint), "--batch-sizes", "1,2", "--prompt-lengths", "8", "--new-tokens", "4",
            "--repeats", "1", "--warmup", "0", "--threads", "1", "--skip", "compile",
            "--llama-ort-variant", "int4 --block-size 16",
            "--workdir", str(tmp / "work"), "--output", str(tmp / "out")]
    assert main(argv) == 0
    assert (tmp / "out" / "bench.png").stat().st_size > 0
    return json.loads((tmp / "out" / "bench.json").read_text())


def test_every_peer_is_present_or_missing_with_a_reason(report):
    assert set(report["peers"]) == set(PEERS)
    for name, peer in report["peers"].items():
        assert peer["status"] in ("present", "missing"), name
        if peer["status"] == "missing":
            assert peer["reason"], name


def test_every_variant_has_a_row(report):
    labels = {row["label"] for row in report["rows"]}
    present = [name for name, peer in report["peers"].items() if peer["status"] == "present"]
    expected = {"llama-ort fp32", "llama-ort int4", "llama-ort int4 --block-size 16",
                "onnxruntime-genai fp32", "onnxruntime-genai int4",
                "transformers fp32 eager", "transformers fp32 compile", "transformers int4 eager",
                "transformers int4 compile", "llama.cpp F32", "llama.cpp Q4_1"}
    assert {label for label in expected if label.split()[0] in present} <= labels
    for row in report["rows"]:
        assert row["status"] in STATUSES
        assert row["status"] == "ok" or row["reason"], row["label"]


def test_llama_ort_rows_are_measured_and_compared(report):
    for row in (r for r in report["rows"] if r["peer"] == "llama-ort"):
        assert row["status"] == "ok", row["reason"]
        assert row["build"]["seconds"] > 0 and row["build"]["peak_anon_mb"] > 0
        assert [(c["batch"], c["prompt_len"]) for c in row["cells"]] == [(1, 8), (2, 8)]
        for cell in row["cells"]:
            assert cell["prefill_ms"] > 0 and cell["ttft_ms"] > 0 and cell["decode_tok_s"] > 0
            assert cell["peak_memory_mb"] > 0
            if report["peers"]["onnxruntime-genai"]["status"] == "present":
                assert cell["vs_best_peer"]["decode"]["peer"].startswith("onnxruntime-genai")


def test_report_says_what_ran_where(report):
    assert report["versions"]["onnxruntime"]
    assert report["hardware"]["cpu_count"] >= 1
    assert report["workload"]["new_tokens"] == 4
    assert report["model"]["spec"]["num_layers"] == 2
