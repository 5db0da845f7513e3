"""Reading every tensor of a checkpoint once costs little anonymous memory: the peak RssAnon of a process that
does only that stays under twice the largest tensor plus 300 MB, for every format.

Checkpoints are generated with random_tensors (seed 0) in a temporary folder; the reading happens in a fresh
subprocess, whose RssAnon (from /proc/self/status) is sampled after each tensor and by a thread every ms.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import llama_ort
from llama_ort.checkpoint.random import random_tensors, write_gguf, write_hf, write_meta
from llama_ort.checkpoint.spec import ModelSpec

MB = 1 << 20
SLACK_BYTES = 300 * MB

# ~100M parameters: ~200 MB in 16-bit (embedding and LM head 65 MB each)
SPEC_200MB = ModelSpec(num_layers=3, hidden_size=1024, num_heads=16, num_kv_heads=4, intermediate_size=2816,
                       vocab_size=32000, name="random-200mb")
# ~490M parameters: ~1 GB in float16
SPEC_1GB = ModelSpec(num_layers=8, hidden_size=2048, num_heads=32, num_kv_heads=8, intermediate_size=5632,
                     vocab_size=32000, name="random-1gb")

READ_EVERY_TENSOR = r"""
import json, sys, threading, time
import llama_ort.checkpoint.gguf_reader, llama_ort.checkpoint.hf, llama_ort.checkpoint.meta
from llama_ort.checkpoint import open_checkpoint
if sys.argv[2] == "meta":
    import torch  # the reader imports it lazily; count it in the baseline, not against the reader

def rss_anon():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))

baseline = rss_anon()
sampled_peak = [baseline]  # updated in place by the sampler, read after it is joined
reading = True

def sample():
    while reading:
        sampled_peak[0] = max(sampled_peak[0], rss_anon())
        time.sleep(0.001)

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
peak, largest = baseline, 0
with open_checkpoint(sys.argv[1]) as checkpoint:
    for name in checkpoint.tensor_names():
        w = checkpoint.read(name)
        w.max()  # touch every element
        largest = max(largest, w.nbytes)
        peak = max(peak, rss_anon())
        del w
reading = False
sampler.join()
print(json.dumps({"baseline": baseline, "peak": max(peak, sampled_peak[0]), "largest": largest}))
"""


def peak_reading_memory(path: Path, format: str) -> dict:
    src = Path(llama_ort.__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", READ_EVERY_TENSOR, str(path), format], capture_output=True,
                          text=True, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def check_reading_memory(path: Path, format: str) -> None:
    m = peak_reading_memory(path, format)
    used = m["peak"] - m["baseline"]
    bound = 2 * m["largest"] + SLACK_BYTES
    print(f"{path.name}: peak RssAnon +{used / MB:.0f} MB, largest tensor {m['largest'] / MB:.0f} MB, "
          f"bound {bound / MB:.0f} MB")
    assert used < bound, f"reading {path} took {used / MB:.0f} MB of anonymous memory, over {bound / MB:.0f} MB"


WRITERS = {
    "hf-float16-sharded": lambda spec, path: write_hf(spec, path, random_tensors(spec), "float16", 100 * MB),
    "hf-bfloat16": lambda spec, path: write_hf(spec, path, random_tensors(spec), "bfloat16"),
    "meta-bfloat16-2-shards": lambda spec, path: write_meta(spec, path, random_tensors(spec), 2, "bfloat16"),
    "gguf-Q8_0": lambda spec, path: write_gguf(spec, path, random_tensors(spec), "Q8_0"),
}


@pytest.mark.parametrize("kind", WRITERS)
def test_reading_200mb_checkpoint(tmp_path, kind):
    format = kind.split("-")[0]
    path = tmp_path / ("model.gguf" if format == "gguf" else kind)
    WRITERS[kind](SPEC_200MB, path)
    check_reading_memory(path, format)


@pytest.mark.slow
def test_reading_1gb_checkpoint(tmp_path):
    """The issue's case: a 1 GB float16 checkpoint. Writing it takes ~15 s and reading ~5 s on 2 cores."""
    started = time.monotonic()
    write_hf(SPEC_1GB, tmp_path / "hf", random_tensors(SPEC_1GB), "float16", 500 * MB)
    print(f"wrote 1 GB in {time.monotonic() - started:.0f} s")
    check_reading_memory(tmp_path / "hf", "hf")
