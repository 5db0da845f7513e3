#!/usr/bin/env bash
# The H100 benchmark, in stages that each fit one device call (10 minutes), run back to back so that
# /tmp (the installed wheels and the bench's workdir with its builds) survives from one to the next.
# Before the first stage, made here: `bash ../shared/gpu/make-ort-gpu-parts.sh` and make-webgpu-parts.sh, with
# the gguf and pytest wheels added to .gpu-whl-extra (`pip download --no-deps gguf pytest pluggy iniconfig -d
# .gpu-whl-extra`); then four calls that each carry one .gpu-whl-pN and copy it into /tmp/ortw. Every stage
# carries .gpu-whl-extra and .gpu-webgpu:  bash scripts/h100_bench.sh STAGE   (results under $OUT)
#   check      install; the GPU tests; the WebGPU check; the WebGPU runtime probe
#   build      every CUDA variant's build, timed one after the other (a tiny workload, so that nothing else runs)
#   build-ours llama-ort's CUDA builds only (same workload), int4 at block 128 too
#   graphed    llama-ort's rows (int4 block 128 too), with and without CUDA graphs, at batch 1 and 16; the
#              batch-16 fp16 profile
#   table      every peer in one run: batch 1, prompts of 128 and 2048 tokens, 256 new tokens
#   batched    llama-ort and onnxruntime-genai at batch 4 and 16
#   profile    the GPU kernels of llama-ort's fp16 and int4 steps
#   tinyllama  every peer in one run, llama-ort's webgpu rows included, on the TinyLlama-1.1B shape
# (The 7B stages leave out the webgpu rows: building them did not fit one session's GPU time.)
set -uo pipefail
stage=$1
OUT=${OUT:-/tmp/out}
WORK=/tmp/bench-work
[ -f /tmp/site/onnxruntime/__init__.py ] || bash .gpu-whl-extra/install-ort-gpu.sh >/dev/null || exit 1
source .gpu-webgpu/setup-webgpu.sh >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD/src HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
INT4_128="int4 --block-size 128"  # fewer scales to read per weight than the default block of 32
bench() { python3 -m llama_ort bench --shape llama2-7b --device cuda --workdir "$WORK" "$@"; }
nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv,noheader
case $stage in
  check)
    python3 -m pytest -m gpu tests/runtime -q -p no:cacheprovider -o addopts="" 2>&1 | tail -25
    python3 scripts/webgpu_check.py --out "$OUT/webgpu" 2>&1 | tail -5
    python3 scripts/webgpu_runtime_probe.py --out "$OUT/webgpu" 2>&1 | tail -10 ;;
  build)
    bench --peers llama-ort,onnxruntime-genai --skip "cuda graph,webgpu" --batch-sizes 1 --prompt-lengths 16 \
      --new-tokens 4 --repeats 1 --warmup 0 --output "$OUT/prebuild" 2>&1 | tail -30
    cp "$WORK"/builds/*/*.build.json "$OUT/prebuild/" 2>/dev/null ;;
  build-ours)
    bench --peers llama-ort --skip "cuda graph,webgpu" --batch-sizes 1 --prompt-lengths 16 --llama-ort-variant \
      "$INT4_128" --new-tokens 4 --repeats 1 --warmup 0 --output "$OUT/prebuild" 2>&1 | tail -30 ;;
  graphed)
    bench --peers llama-ort --skip webgpu --batch-sizes 1,16 --prompt-lengths 128 --new-tokens 256 --repeats 2 \
      --llama-ort-variant "$INT4_128" --timeout 150 --output "$OUT/h100-graphed" 2>&1 | tail -30
    python3 scripts/profile_gpu.py "$WORK"/builds/*/llama-ort-cuda-fp16 --out "$OUT/profile" --batch 16 \
      --prompt 128 2>&1 | tail -20 ;;
  table)
    bench --skip "webgpu,compile" --batch-sizes 1 --prompt-lengths 128,2048 --new-tokens 256 --repeats 2 \
      --timeout 200 --output "$OUT/h100-batch1" 2>&1 | tail -40 ;;
  batched)
    bench --peers llama-ort,onnxruntime-genai --skip webgpu --batch-sizes 4,16 --prompt-lengths 128 \
      --new-tokens 256 --repeats 2 --timeout 150 --output "$OUT/h100-batched" 2>&1 | tail -30 ;;
  tinyllama)
    python3 -m llama_ort bench --shape tinyllama-1.1b --device cuda --workdir /tmp/bench-work-tinyllama \
      --skip compile --batch-sizes 1,16 --prompt-lengths 128 --new-tokens 256 --repeats 2 --timeout 150 \
      --output "$OUT/h100-tinyllama" 2>&1 | tail -30 ;;
  profile)
    for build in "$WORK"/builds/*/llama-ort-cuda-fp16 "$WORK"/builds/*/llama-ort-cuda-int4; do
      python3 scripts/profile_gpu.py "$build" --out "$OUT/profile" --prompt 128 2>&1 | tail -20
    done
    python3 scripts/profile_gpu.py "$WORK"/builds/*/llama-ort-cuda-fp16 --out "$OUT/profile" --prompt 2048 --steps 4 \
      2>&1 | tail -10 ;;
esac
ls -R "$OUT" | head -40
