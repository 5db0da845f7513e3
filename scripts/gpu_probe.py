"""Probe: build Llama-2-7B-shaped random models for the cuda target and time prompt and decode with IO
binding and CUDA graphs. Usage: python scripts/gpu_probe.py --out DIR [--shape 7b|tiny] [--provider cuda|cpu]"""

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import onnxruntime as ort  # noqa: E402

from llama_ort import model_format as io  # noqa: E402
from llama_ort.checkpoint import names  # noqa: E402
from llama_ort.checkpoint.base import Checkpoint  # noqa: E402
from llama_ort.checkpoint.spec import ModelSpec  # noqa: E402
from llama_ort.graph.llama import BuildOptions, build_model  # noqa: E402
from llama_ort.graph.weights import QuantOptions  # noqa: E402

SHAPES = {
    "7b": ModelSpec(num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=32, intermediate_size=11008,
                    vocab_size=32000, context_length=4096, name="llama2-7b"),
    "tiny": ModelSpec(num_layers=2, hidden_size=256, num_heads=4, num_kv_heads=2, intermediate_size=512,
                      vocab_size=1000, context_length=4096, name="tiny"),
}


class PoolCheckpoint(Checkpoint):
    """Random weights cut from one shared pool: instant to make, realistic for speed."""
    format = "memory"

    def __init__(self, spec):
        self.spec, self.path = spec, Path("<random>")
        self.pool = (np.random.default_rng(0).standard_normal(1 << 24) * 0.02).astype(np.float16)

    def tensor_names(self):
        return names.canonical_names(self.spec.num_layers, self.spec.tie_word_embeddings)

    def read(self, name):
        shape = names.expected_shape(name, self.spec)
        if len(shape) == 1:
            return np.ones(shape, np.float16)
        n = int(np.prod(shape))
        start = int(hashlib.md5(name.encode()).hexdigest(), 16) % (len(self.pool) // 2)
        reps = -(-(n + start) // len(self.pool))
        return np.tile(self.pool, reps)[start:start + n].reshape(shape)

    def fingerprint(self):
        return self.spec.name


def device_value(shape, dtype, device):
    return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, device, 0)


class Runner:
    def __init__(self, folder, max_seq_len, batch, provider, cuda_graph):
        self.manifest = io.Manifest.load(folder)
        self.spec = ModelSpec.from_dict(self.manifest.spec)
        so = ort.SessionOptions()
        so.add_free_dimension_override_by_name(io.MAX_SEQ_LEN, max_seq_len)
        so.add_free_dimension_override_by_name(io.BATCH, batch)
        if provider == "cuda":
            providers = [("CUDAExecutionProvider", {"enable_cuda_graph": "1" if cuda_graph else "0"})]
            self.device = "cuda"
        else:
            providers, self.device = ["CPUExecutionProvider"], "cpu"
        t = time.perf_counter()
        try:
            self.session = ort.InferenceSession(str(folder / self.manifest.model_file), so, providers=providers)
        except Exception:
            so.log_severity_level = 1  # show node placements and memcpy details
            ort.InferenceSession(str(folder / self.manifest.model_file), so,
                                 providers=[("CUDAExecutionProvider", {})])
            raise
        self.load_s = time.perf_counter() - t
        self.batch, self.max_seq_len, self.cuda_graph = batch, max_seq_len, cuda_graph
        kv = np.dtype(self.manifest.kv_dtype)
        s = self.spec
        self.cache = [(device_value((batch, s.num_kv_heads, max_seq_len, s.head_dim), kv, self.device),
                       device_value((batch, s.num_kv_heads, max_seq_len, s.head_dim), kv, self.device))
                      for _ in range(s.num_layers)]
        self.masks = [device_value((batch, max_seq_len), np.int64, self.device) for _ in range(2)]
        self.token = device_value((batch, 1), np.int64, self.device)
        self.logits = device_value((batch, s.vocab_size), np.float32, self.device)
        self.bindings = [self._binding(self.token, self.masks[k], self.masks[1 - k]) for k in range(2)]
        self.step_count = 0

    def _binding(self, ids, mask_in, mask_out, token_out=None):
        b = self.session.io_binding()
        b.bind_ortvalue_input(io.INPUT_IDS, ids)
        b.bind_ortvalue_input(io.ATTENTION_MASK, mask_in)
        b.bind_ortvalue_output(io.NEXT_ATTENTION_MASK, mask_out)
        for i, (k, v) in enumerate(self.cache):
            b.bind_ortvalue_input(io.past_key(i), k)
            b.bind_ortvalue_output(io.present_key(i), k)
            b.bind_ortvalue_input(io.past_value(i), v)
            b.bind_ortvalue_output(io.present_value(i), v)
        b.bind_ortvalue_output(io.LOGITS, self.logits)
        # next_token [B] written straight into the next step's input_ids [B, 1]: same bytes.
        tok = token_out or self.token
        b.bind_output(io.NEXT_TOKEN, self.device, 0, np.int64, [self.batch], tok.data_ptr())
        return b

    def prompt(self, prompt_ids):
        ids = np.asarray(prompt_ids, np.int64)
        mask = np.zeros((self.batch, self.max_seq_len), np.int64)
        mask[:, : ids.shape[1]] = 1
        self.masks[0].update_inplace(mask)
        ids_value = ort.OrtValue.ortvalue_from_numpy(ids, self.device, 0)
        b = self._binding(ids_value, self.masks[0], self.masks[1])
        options = ort.RunOptions()
        if self.cuda_graph:
            options.add_run_config_entry("gpu_graph_id", "-1")
        self.session.run_with_iobinding(b, options)
        self.step_count = 1  # the next input mask is masks[1]

    def decode(self):
        k = self.step_count % 2
        options = ort.RunOptions()
        if self.cuda_graph:
            options.add_run_config_entry("gpu_graph_id", str(1 + k))
        self.session.run_with_iobinding(self.bindings[k], options)
        self.step_count += 1
        return self.token.numpy()  # the one host copy per step: [B, 1] token ids


def time_decode(runner, prompt_len, new_tokens, rng):
    ids = rng.integers(0, runner.spec.vocab_size, (runner.batch, prompt_len))
    runner.prompt(ids)
    tokens = [runner.token.numpy().copy()]
    t0 = time.perf_counter()
    for _ in range(new_tokens):
        tokens.append(runner.decode().copy())
    dt = time.perf_counter() - t0
    return runner.batch * new_tokens / dt, np.concatenate(tokens, axis=1)


def time_prefill(runner, prompt_len, rng, repeats=5):
    times = []
    for _ in range(repeats):
        ids = rng.integers(0, runner.spec.vocab_size, (runner.batch, prompt_len))
        t0 = time.perf_counter()
        runner.prompt(ids)
        runner.token.numpy()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="7b")
    ap.add_argument("--provider", default="cuda")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--precisions", default="fp16,int4")
    ap.add_argument("--work", type=Path, default=Path("/tmp/probe"))
    ap.add_argument("--fpa", action="store_true", help="also run int4 with ORT_FPA_INTB_GEMM=1 (fpA_intB kernels)")
    ap.add_argument("--block-size", type=int, default=32)
    args = ap.parse_args()
    spec = SHAPES[args.shape]
    checkpoint = PoolCheckpoint(spec)
    results = {"shape": args.shape, "provider": args.provider, "ort": ort.__version__, "rows": []}
    rng = np.random.default_rng(0)
    for precision in args.precisions.split(","):
        folder = args.work / precision
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        build_model(checkpoint, folder, BuildOptions(target="cuda" if args.provider == "cuda" else "cpu",
                                                     precision=precision,
                                                     quant=QuantOptions(block_size=args.block_size, symmetric=True)))
        build_s = time.perf_counter() - t
        print(f"{precision}: built in {build_s:.1f} s", flush=True)
        variants = [(g, False) for g in ([False, True] if args.provider == "cuda" else [False])]
        if args.fpa and precision == "int4":
            variants += [(False, True), (True, True)]
        for cuda_graph, fpa in variants:
            os.environ["ORT_FPA_INTB_GEMM"] = "1" if fpa else "0"
            for batch in (1, 16):
                r = Runner(folder, 512, batch, args.provider, cuda_graph)
                time_decode(r, 128, 16, rng)  # warm-up (captures the graphs)
                tps, toks = time_decode(r, 128, 256, rng)
                row = dict(precision=precision, cuda_graph=cuda_graph, fpa_intb=fpa, batch=batch, decode_tps=tps,
                           load_s=r.load_s, build_s=build_s)
                if batch == 1:
                    row["prefill128_ms"] = time_prefill(r, 128, rng)
                print(json.dumps(row), flush=True)
                results["rows"].append(row)
                del r
        r = Runner(folder, 2304, 1, args.provider, False)
        results["rows"].append(dict(precision=precision, fpa_intb=os.environ.get("ORT_FPA_INTB_GEMM") == "1",
                                    prefill2048_ms=time_prefill(r, 2048, rng)))
        print(json.dumps(results["rows"][-1]), flush=True)
        del r
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
