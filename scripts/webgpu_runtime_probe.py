"""On the GPU machine: step llama-ort's runtime (IO binding, buffers on the device) on WebGPU and on the CPU
side by side, with the same tokens fed to both, and report each step's largest logit difference and the first
step whose argmax differs; once with the KV cache appended in place and once in two copies that take turns.
Usage (after `source .gpu-webgpu/setup-webgpu.sh`): python3 scripts/webgpu_runtime_probe.py --out DIR"""

import argparse
import dataclasses
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
from reference import random_checkpoint, tiny_spec  # noqa: E402

SPECS = {"head_dim16": tiny_spec(hidden_size=64, num_heads=4, num_kv_heads=2),
         "head_dim64": tiny_spec(hidden_size=256, num_heads=4, num_kv_heads=2, intermediate_size=512)}
PROMPTS = [[1, 17, 42, 8, 9], [1, 99, 12, 7, 64, 31, 20, 88, 45]]
STEPS = 24
CAPACITY = 64


def with_kv_in_place(model, in_place: bool):
    return dataclasses.replace(model, provider=dataclasses.replace(model.provider, updates_kv_in_place=in_place))


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    for name, spec in SPECS.items():
        folder = Path(tempfile.mkdtemp())
        build_model(random_checkpoint(spec, seed=1), folder, BuildOptions(target="webgpu", precision="fp32"))
        cpu_model = load_model(folder, max_seq_len=CAPACITY)
        for in_place in (True, False):
            for prompts in (PROMPTS[:1], PROMPTS):
                row = {"spec": name, "kv_in_place": in_place, "batch": len(prompts)}
                try:
                    gpu_model = with_kv_in_place(load_model(folder, "webgpu", max_seq_len=CAPACITY), in_place)
                    row.update(step_side_by_side(with_kv_in_place(cpu_model, in_place), gpu_model, prompts))
                except Exception as e:  # report, don't hide
                    row["error"] = f"{type(e).__name__}: {str(e)[:1500]}"
                print(json.dumps(row), flush=True)
                rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webgpu-runtime.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
