"""Where a step's GPU time goes: CUDA kernels of a llama-ort model's prompt and decode steps, recorded with
torch's profiler (CUPTI sees every kernel in the process, ONNX Runtime's included; ORT's own profiler only
times kernel launches on release builds).

Usage (on the GPU machine): python3 scripts/profile_gpu.py MODEL_FOLDER --out DIR [--batch 1] [--prompt 128]
[--steps 32]. Prints the busiest kernels of each phase, with their share of its GPU time, and writes the
same as JSON.
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from llama_ort.runtime import load_model  # noqa: E402
from llama_ort.runtime.binding import DecoderBinding  # noqa: E402

TOP = 15


def kernel_table(prof, runs: int) -> dict:
    """Kernels by name: GPU microseconds per run and share of the phase's kernel time."""
    per_name = defaultdict(float)
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            per_name[event.name] += event.device_time
    total = sum(per_name.values())
    top = sorted(per_name.items(), key=lambda kv: -kv[1])[:TOP]
    return {"gpu_us_per_run": total / runs,
            "kernels": [{"name": name[:120], "us_per_run": us / runs, "share": us / total} for name, us in top]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    model = load_model(args.model, "cuda", max_seq_len=args.prompt + args.steps + 8)
    rng = np.random.default_rng(0)
    prompts = [list(rng.integers(100, model.spec.vocab_size, args.prompt)) for _ in range(args.batch)]
    lengths = [args.prompt] * args.batch

    binding = DecoderBinding(model, args.batch, model.max_seq_len)
    binding.feed(prompts, lengths)  # warm-up: kernel selection, allocations
    for _ in range(4):
        binding.decode()
        binding.take_argmax()
    report = {"model": str(args.model), "manifest": model.manifest.__dict__ | {"spec": None},
              "batch": args.batch, "prompt": args.prompt, "steps": args.steps}

    binding = DecoderBinding(model, args.batch, model.max_seq_len)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        binding.feed(prompts, lengths)
        torch.cuda.synchronize()
    report["prompt_phase"] = kernel_table(prof, 1)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            binding.decode()
            binding.take_argmax()
        torch.cuda.synchronize()
    report["decode_phase"] = kernel_table(prof, args.steps)

    args.out.mkdir(parents=True, exist_ok=True)
    name = f"profile-{model.manifest.precision}-b{args.batch}-p{args.prompt}.json"
    (args.out / name).write_text(json.dumps(report, indent=1))
    for phase in ("prompt_phase", "decode_phase"):
        table = report[phase]
        print(f"{model.manifest.precision} batch {args.batch} {phase}: {table['gpu_us_per_run'] / 1000:.2f} ms of "
              f"kernels per run")
        for k in table["kernels"][:8]:
            print(f"  {k['share'] * 100:5.1f}%  {k['us_per_run']:9.1f} us  {k['name']}")


if __name__ == "__main__":
    main()
