"""The seed's llama_v2.py: optimize into models/optimized/llama_v2 (the seed's layout), rerun from the cache,
answer the prompt, and fail cleanly on bad input."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def llama_v2(cwd, *args):
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(ROOT / "llama_v2.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_optimize_then_rerun_from_the_cache_then_answer(tmp_path):
    first = llama_v2(tmp_path, "--model_type", "embedded", "--optimize")
    assert first.returncode == 0, first.stderr
    out = tmp_path / "models/optimized/llama_v2"
    for name in ("decoder_model_merged.onnx", "decoder_model_merged.onnx.data", "argmax_sampling/model.onnx",
                 "tokenizer.json", "llama-ort.json"):
        assert (out / name).exists(), name
    again = llama_v2(tmp_path, "--model_type", "embedded", "--optimize")
    assert again.returncode == 0, again.stderr
    assert "build: taken from the cache" in again.stderr.replace("\n", " ")
    answer = llama_v2(tmp_path, "--model_type", "embedded", "--max_gen_len", "8", "--prompt", "Say hello.")
    assert answer.returncode == 0, answer.stderr
    assert "Execution took" in answer.stdout and "tokens per second" in answer.stdout


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    result = llama_v2(tmp_path, "--model_type", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nowhere" in result.stderr and "Traceback" not in result.stderr
