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


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e)[:1500]}"


def _fed_pair(cpu_model, gpu_model, prompts):
    """Fresh cpu and gpu bindings with the same prompts fed: the state step 1 starts from."""
    cpu, gpu = (DecoderBinding(m, len(prompts), CAPACITY) for m in (cpu_model, gpu_model))
    lengths = [len(p) for p in prompts]
    cpu.feed(prompts, lengths)
    gpu.feed(prompts, lengths)
    return cpu, gpu, lengths


def _next_cache(binding: DecoderBinding) -> dict:
    """The cache copy the next step reads, as {"keys": [per layer], "values": [...]}."""
    copy = binding.cache.copies[binding.turn % len(binding.cache.copies)]
    return {"keys": copy.keys, "values": copy.values}


def _upload(buffer, array: np.ndarray) -> None:
    # update_inplace wants a contiguous array of the buffer's own dtype and shape
    target = buffer.numpy()
    buffer.update_inplace(np.ascontiguousarray(np.asarray(array).reshape(target.shape), dtype=target.dtype))


def state_after_prompt(cpu, gpu, lengths) -> dict:
    """What step 1 reads, GPU vs CPU: the mask, the cache's valid rows, and what lies beyond them on the GPU."""
    cpu_mask, gpu_mask = cpu.masks[cpu.turn].numpy().copy(), gpu.masks[gpu.turn].numpy().copy()
    out = {"mask_max_abs_diff": float(np.abs(cpu_mask.astype(np.float64) - gpu_mask).max())}
    if out["mask_max_abs_diff"]:
        out.update(cpu_mask=cpu_mask.tolist(), gpu_mask=gpu_mask.tolist())
    cpu_cache, gpu_cache = _next_cache(cpu), _next_cache(gpu)
    for kind in ("keys", "values"):
        valid_diff, tail_max, tail_nonfinite = 0.0, 0.0, 0
        for cpu_buf, gpu_buf in zip(cpu_cache[kind], gpu_cache[kind]):
            c, g = cpu_buf.numpy().astype(np.float64), gpu_buf.numpy().astype(np.float64)
            for b, n in enumerate(lengths):
                valid_diff = max(valid_diff, float(np.abs(c[b, :, :n] - g[b, :, :n]).max()))
                tail = g[b, :, n:]  # never written: garbage here is harmless only if the mask hides it
                finite = np.isfinite(tail)
                tail_nonfinite += int((~finite).sum())
                tail_max = max(tail_max, float(np.abs(np.where(finite, tail, 0)).max(initial=0)))
        out[kind] = {"valid_max_abs_diff": valid_diff, "gpu_tail_max_abs": tail_max,
                     "gpu_tail_nonfinite": tail_nonfinite}
    return out


def _mask_from_cpu(cpu, gpu, lengths):
    _upload(gpu.masks[gpu.turn], cpu.masks[cpu.turn].numpy())


def _cache_from_cpu(cpu, gpu, lengths):
    cpu_cache, gpu_cache = _next_cache(cpu), _next_cache(gpu)
    for kind in ("keys", "values"):
        for cpu_buf, gpu_buf in zip(cpu_cache[kind], gpu_cache[kind]):
            _upload(gpu_buf, cpu_buf.numpy())


def _cache_zeroed_tail(cpu, gpu, lengths):
    for buffers in _next_cache(gpu).values():
        for buf in buffers:
            array = buf.numpy().copy()
            for b, n in enumerate(lengths):
                array[b, :, n:] = 0
            _upload(buf, array)


def _both_from_cpu(cpu, gpu, lengths):
    _mask_from_cpu(cpu, gpu, lengths)
    _cache_from_cpu(cpu, gpu, lengths)


# Each replaces one piece of the GPU's state with a known-good one before step 1: the piece whose replacement
# brings the logits back in line is the one the prompt step left wrong.
FIRST_STEP_VARIANTS = {"plain": lambda cpu, gpu, lengths: None, "mask_from_cpu": _mask_from_cpu,
                       "cache_from_cpu": _cache_from_cpu, "cache_zeroed_tail": _cache_zeroed_tail,
                       "both_from_cpu": _both_from_cpu}


def _mask_bound_from_host(cpu, gpu, lengths):
    """The step reads its mask from host memory (as session.run does), not from the device buffer."""
    from llama_ort import model_format as io

    gpu.bindings[gpu.turn].bind_cpu_input(io.ATTENTION_MASK, cpu.masks[cpu.turn].numpy().copy())


FIRST_STEP_VARIANTS["mask_bound_from_host"] = _mask_bound_from_host


def stale_reads(cpu_model, gpu_model, prompts) -> dict:
    """Read the GPU's step-1 logits at once, again after a pause, and after another session run: a race shows as
    reads that differ."""
    import time

    cpu, gpu, lengths = _fed_pair(cpu_model, gpu_model, prompts)
    expected = cpu.take_argmax()
    gpu.take_argmax()
    gpu.write_tokens(expected)
    cpu.decode()
    gpu.decode()
    want = cpu.read_logits().copy()
    first = gpu.read_logits().copy()
    time.sleep(0.5)
    second = gpu.read_logits().copy()
    gpu.bindings[gpu.turn].synchronize_outputs()
    third = gpu.read_logits().copy()
    diff = lambda a, b: round(float(np.abs(a - b).max()), 6)  # noqa: E731
    return {"first": diff(want, first), "after_pause": diff(want, second), "after_sync": diff(want, third),
            "first_vs_second": diff(first, second)}


def isolate_first_step(cpu_model, gpu_model, prompts) -> dict:
    """Which state carried from the prompt step to step 1 is wrong on the GPU; each experiment on fresh bindings."""
    out = {}
    try:
        out["state_after_prompt"] = state_after_prompt(*_fed_pair(cpu_model, gpu_model, prompts))
    except Exception as e:  # report, don't hide
        out["state_after_prompt"] = {"error": _error(e)}
    for name, prepare in FIRST_STEP_VARIANTS.items():
        try:
            cpu, gpu, lengths = _fed_pair(cpu_model, gpu_model, prompts)
            expected = cpu.take_argmax()
            gpu.take_argmax()
            gpu.write_tokens(expected)  # both go on from the same tokens, as in step_side_by_side
            prepare(cpu, gpu, lengths)
            cpu.decode()
            gpu.decode()
            out[name] = {"max_abs_logit_diff": round(float(np.abs(cpu.read_logits() - gpu.read_logits()).max()), 6)}
        except Exception as e:
            out[name] = {"error": _error(e)}
    return out


def plain_runs(cpu_model, gpu_model, prompts) -> dict:
    """Step 1 through session.run with numpy feeds (the CPU binding's state after the prompt), on both sessions:
    whether the WebGPU session computes the step right when no IO binding is involved."""
    from llama_ort import model_format as io

    cpu, _, lengths = _fed_pair(cpu_model, cpu_model, prompts)
    tokens = cpu.take_argmax()
    copy = cpu.cache.copies[cpu.turn % len(cpu.cache.copies)]
    feeds = {io.INPUT_IDS: np.asarray(tokens, cpu.index_dtype).reshape(-1, 1),
             io.ATTENTION_MASK: cpu.masks[cpu.turn].numpy().copy()}
    for i in range(cpu_model.spec.num_layers):
        feeds[io.past_key(i)] = copy.keys[i].numpy().copy()
        feeds[io.past_value(i)] = copy.values[i].numpy().copy()
    cpu.decode()
    expected = cpu.read_logits().copy()
    out = {}
    for name, model in (("cpu_session", cpu_model), ("gpu_session", gpu_model)):
        try:
            names = [o.name for o in model.session.get_outputs()]
            logits = model.session.run([io.LOGITS], {k: v for k, v in feeds.items()
                                                     if k in {i.name for i in model.session.get_inputs()}})[0]
            out[name] = {"max_abs_logit_diff": round(float(np.abs(expected - logits).max()), 6), "outputs": len(names)}
        except Exception as e:
            out[name] = {"error": _error(e)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    for name, spec in SPECS.items():
        # The single layout (one graph, no If) beside the webgpu target's merged one: does the If matter?
        single = Path(tempfile.mkdtemp())
        build_model(random_checkpoint(spec, seed=1), single, BuildOptions(target="webgpu", precision="fp32",
                                                                          layout="single"))
        for prompts in (PROMPTS[:1], PROMPTS):
            row = {"probe": "steps-single-layout", "spec": name, "batch": len(prompts)}
            try:
                row.update(step_side_by_side(load_model(single, max_seq_len=CAPACITY),
                                             load_model(single, "webgpu", max_seq_len=CAPACITY), prompts))
            except Exception as e:  # report, don't hide
                row["error"] = _error(e)
            print(json.dumps(row), flush=True)
            rows.append(row)
        folder = Path(tempfile.mkdtemp())
        build_model(random_checkpoint(spec, seed=1), folder, BuildOptions(target="webgpu", precision="fp32"))
        cpu_model = load_model(folder, max_seq_len=CAPACITY)
        runs = [("steps", step_side_by_side, in_place) for in_place in (True, False)]
        runs += [("isolate", isolate_first_step, True), ("plain", plain_runs, True), ("stale", stale_reads, True)]
        for probe, run, in_place in runs:
            for prompts in (PROMPTS[:1], PROMPTS):
                row = {"probe": probe, "spec": name, "kv_in_place": in_place, "batch": len(prompts)}
                try:
                    gpu_model = with_kv_in_place(load_model(folder, "webgpu", max_seq_len=CAPACITY), in_place)
                    row.update(run(with_kv_in_place(cpu_model, in_place), gpu_model, prompts))
                except Exception as e:  # report, don't hide
                    row["error"] = _error(e)
                print(json.dumps(row), flush=True)
                rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webgpu-runtime.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
