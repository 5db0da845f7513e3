"""On the GPU machine: run the webgpu model (If-merged layout, static cache) on ONNX Runtime's WebGPU plugin EP
over Vulkan, with every node on WebGPU (no CPU fallback), and compare it with the CPU provider step by step.
Usage (after `source .gpu-webgpu/setup-webgpu.sh`): python3 scripts/webgpu_check.py --out DIR"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import onnxruntime as ort  # noqa: E402
import onnxruntime_ep_webgpu  # noqa: E402

from llama_ort import model_format as io  # noqa: E402
from llama_ort.graph.llama import BuildOptions, build_model  # noqa: E402
from llama_ort.graph.weights import QuantOptions  # noqa: E402
from llama_ort_testing.reference import Stepper, random_checkpoint, tiny_spec  # noqa: E402


def webgpu_session(path, max_seq_len, verbose=False):
    devices = [d for d in ort.get_ep_devices() if d.ep_name == onnxruntime_ep_webgpu.get_ep_name()]
    so = ort.SessionOptions()
    so.add_free_dimension_override_by_name(io.MAX_SEQ_LEN, max_seq_len)
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.add_provider_for_devices(devices[:1], {})
    if verbose:
        so.log_severity_level = 0
    return ort.InferenceSession(str(path), so)


def cpu_session(path, max_seq_len):
    so = ort.SessionOptions()
    so.add_free_dimension_override_by_name(io.MAX_SEQ_LEN, max_seq_len)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_steps(folder, session, prompts, steps, max_seq_len, feed=None):
    """Logits [steps, batch, vocab] and greedy tokens [steps, batch]. Each step's own tokens are fed to the next,
    or those of `feed` [steps, batch] (the CPU's): with random weights two logits are often nearly equal, so a
    difference far under a precision's error can pick another token, and from there on the two sides would be
    running different sequences."""
    stepper = Stepper(folder, max_seq_len, session=session)
    out, logits, tokens = stepper.start(prompts), [], []
    for step in range(steps):
        logits.append(out[io.LOGITS])
        tokens.append(out[io.NEXT_TOKEN])
        nxt = out[io.NEXT_TOKEN] if feed is None else feed[step]
        out = stepper.step([int(t) for t in nxt])
    return np.stack(logits), np.stack(tokens)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    spec = tiny_spec(hidden_size=256, num_heads=4, num_kv_heads=2, intermediate_size=512, rope_theta=500000.0)
    checkpoint = random_checkpoint(spec, seed=5)
    report = {"onnxruntime": ort.__version__, "rows": []}
    ort.register_execution_provider_library("webgpu", onnxruntime_ep_webgpu.get_library_path())
    prompts = [[5, 17, 42, 8, 9], [3, 99, 12, 7, 64, 31, 2, 88, 45]]
    # int4 three ways: the default build, min/max blocks with zero points, and float activations (accuracy level 0,
    # where the default's 4 lets MatMulNBits quantize activations to int8)
    builds = [("fp32", "fp32", QuantOptions()), ("fp16", "fp16", QuantOptions()), ("int4", "int4", QuantOptions()),
              ("int4 zero points", "int4", QuantOptions(symmetric=False)),
              ("int4 accuracy 0", "int4", QuantOptions(accuracy_level=0))]
    for label, precision, quant in builds:
        folder = Path(tempfile.mkdtemp())
        manifest = build_model(checkpoint, folder, BuildOptions(target="webgpu", precision=precision, quant=quant))
        row = {"build": label, "precision": precision, "layout": manifest.layout, "rotary_io": manifest.rotary_io}
        try:
            cpu = run_steps(folder, cpu_session(folder / manifest.model_file, 64), prompts, 17, 64)
            gpu = run_steps(folder, webgpu_session(folder / manifest.model_file, 64), prompts, 17, 64, feed=cpu[1])
            row.update(max_abs_logit_diff=float(np.abs(gpu[0] - cpu[0]).max()),
                       same_argmax=float((gpu[1] == cpu[1]).mean()), steps=17, batch=len(prompts))
        except Exception as e:  # report, don't hide
            row["error"] = str(e)[:2000]
            if precision == "fp32":
                try:
                    webgpu_session(folder / manifest.model_file, 64, verbose=True)
                except Exception:
                    pass
        print(json.dumps(row), flush=True)
        report["rows"].append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webgpu.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
