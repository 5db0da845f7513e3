"""Peak memory of `llama-ort optimize` on a Llama-2-7B-shaped random checkpoint (the figures in docs/build-memory.md).

    python scripts/measure_build_memory.py --work /data/llama-mem [--shape llama2-7b] [--precisions fp16,int4]

Writes the checkpoint once (about 13.5 GB of fp16 safetensors for llama2-7b), then builds each precision in a
child process while a thread samples its RssAnon (anonymous memory: file-backed pages of memory maps do not
count) and VmRSS from /proc every 20 ms (llama_ort.bench.memory.TreeSampler). Prints one JSON line per build.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llama_ort.bench.memory import TreeSampler  # noqa: E402
from llama_ort.checkpoint.random import random_tensors, write_hf  # noqa: E402
from llama_ort.checkpoint.spec import ModelSpec  # noqa: E402

SHAPES = {
    "llama2-7b": ModelSpec(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=32, intermediate_size=11008,
                           vocab_size=32000, context_length=4096, name="llama2-7b-random"),
    # ~490 MB of fp16: enough layers that holding the model would show against holding a few layers
    "small": ModelSpec(num_layers=12, hidden_size=1024, num_heads=16, num_kv_heads=4, intermediate_size=4096,
                       vocab_size=32000, context_length=2048, name="small-random"),
}


def measure(command: list[str]) -> dict:
    """Run `command`, sampling its process tree's memory until it exits."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    with TreeSampler(child.pid, interval_s=0.02) as sampler:
        failed = child.wait()
    if failed:
        raise SystemExit(f"build failed: {' '.join(command)}")
    return {"seconds": round(time.perf_counter() - start, 1), "peak_rss_anon_mb": round(sampler.peak_anon_kb / 1024),
            "peak_rss_mb": round(sampler.peak_rss_kb / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for the checkpoint, cache and outputs")
    parser.add_argument("--shape", default="llama2-7b", choices=list(SHAPES))
    parser.add_argument("--precisions", default="fp16,int4")
    parser.add_argument("--target", default="cuda")
    args = parser.parse_args()
    spec = SHAPES[args.shape]
    checkpoint = args.work / spec.name
    if not checkpoint.exists():
        started = time.perf_counter()
        write_hf(spec, checkpoint, random_tensors(spec), dtype="float16", shard_bytes=2 << 30)
        print(json.dumps({"checkpoint": str(checkpoint), "write_seconds": round(time.perf_counter() - started, 1)}))
    for precision in args.precisions.split(","):
        command = [sys.executable, "-m", "llama_ort", "optimize", str(checkpoint), "--no-verify", "--target",
                   args.target, "--precision", precision, "--output", str(args.work / f"out-{precision}"),
                   "--cache-dir", str(args.work / "cache"), "--clean-cache"]
        result = measure(command)
        print(json.dumps({"shape": args.shape, "target": args.target, "precision": precision, **result}), flush=True)


if __name__ == "__main__":
    main()
