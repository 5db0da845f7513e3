"""On the GPU machine: step llama-ort's runtime (IO binding, buffers on the device) on WebGPU and on the CPU
side by side, with the same tokens fed to both, and report each step's largest logit difference and the first
step whose argmax differs: for the webgpu target's merged layout and for the single layout. It found the
runtime's stale input_ids on WebGPU (its diagnostic experiments, and the comparison of an in-place KV cache with
one kept in two copies, since removed, are in commit 0494ce0; docs/BENCHMARKS.md tells the story).
Usage (after `source .gpu-webgpu/setup-webgpu.sh`): python3 scripts/webgpu_runtime_probe.py --out DIR"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from llama_ort.graph.llama import BuildOptions, build_model  # noqa: E402
from llama_ort.runtime.binding import DecoderBinding  # noqa: E402
from llama_ort.runtime.session import load_model  # noqa: E402
from llama_ort_testing.reference import random_checkpoint, tiny_spec  # noqa: E402

SPECS = {"head_dim16": tiny_spec(hidden_size=64, num_heads=4, num_kv_heads=2),
         "head_dim64": tiny_spec(hidden_size=256, num_heads=4, num_kv_heads=2, intermediate_size=512)}
PROMPTS = [[1, 17, 42, 8, 9], [1, 99, 12, 7, 64, 31, 20, 88, 45]]
STEPS = 24
CAPACITY = 64


def step_side_by_side(cpu_model, gpu_model, prompts) -> dict:
    cpu, gpu = (DecoderBinding(m, len(prompts), CAPACITY) for m in (cpu_model, gpu_model))
    lengths = [len(p) for p in prompts]
    diffs, first_other_token = [], None
    for step in range(STEPS):
        if step == 0:
            cpu.feed(prompts, lengths)
            gpu.feed(prompts, lengths)
        else:
            cpu.decode()
            gpu.decode()
        diffs.append(float(np.abs(cpu.read_logits() - gpu.read_logits()).max()))
        expected, got = cpu.take_argmax(), gpu.take_argmax()
        if first_other_token is None and not (expected == got).all():
            first_other_token = step
        gpu.write_tokens(expected)  # both go on from the same tokens
    return {"max_abs_logit_diff_by_step": [round(d, 6) for d in diffs], "first_other_argmax": first_other_token}


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e)[:1500]}"


def reported(row: dict, compare) -> dict:
    """The row with compare()'s results, or its error (report, don't hide), printed as it comes."""
    try:
        row.update(compare())
    except Exception as e:
        row["error"] = _error(e)
    print(json.dumps(row), flush=True)
    return row


def built(spec, layout: str) -> Path:
    folder = Path(tempfile.mkdtemp())
    options = BuildOptions(target="webgpu", precision="fp32", layout=layout)
    build_model(random_checkpoint(spec, seed=1), folder, options)
    return folder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    for name, spec in SPECS.items():
        for layout in ("merged", "single"):  # the webgpu target's own layout, and one graph without an If
            folder = built(spec, layout)
            for prompts in (PROMPTS[:1], PROMPTS):
                row = {"probe": "steps", "spec": name, "layout": layout, "batch": len(prompts)}
                rows.append(reported(row, lambda: step_side_by_side(load_model(folder, max_seq_len=CAPACITY),
                                                                    load_model(folder, "webgpu", max_seq_len=CAPACITY),
                                                                    prompts)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webgpu-runtime.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
