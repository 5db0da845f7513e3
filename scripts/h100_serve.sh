#!/usr/bin/env bash
# The serving engine on the H100, in one device call (after the four calls that carry .gpu-whl-p0..p3 into
# /tmp/ortw; this one carries .gpu-whl-extra, which holds the server's wheels too):
#   bash scripts/h100_serve.sh          results under $OUT
# 1. the GPU tests of the runtime (CUDA graphs at two slot counts in the engine among them);
# 2. a Llama-2-7B-shaped random checkpoint built for cuda in fp16;
# 3. bench-serve: 16 streaming clients, all at once and one every 50 ms, 256 tokens each, with and without
#    CUDA graphs.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
bash .gpu-whl-extra/install-ort-gpu.sh > "$OUT/install.log" 2>&1 || { tail -5 "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/src HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export LLAMA_ORT_HOME=/tmp/llama-ort-home
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
python3 -c "import fastapi, uvicorn, httpx, gguf, rich; print('server packages: ok')" || exit 1
timeout 300 python3 -m pytest -m gpu tests/runtime/test_gpu_providers.py -q -p no:cacheprovider -o addopts="" \
  2>&1 | tail -12 | tee "$OUT/gpu-tests.txt"
start=$SECONDS
python3 -m llama_ort make-random --shape llama2-7b --output /tmp/l7 > "$OUT/make-random.log" 2>&1 || { tail -5 "$OUT/make-random.log"; exit 1; }
python3 -m llama_ort optimize /tmp/l7 --target cuda --precision fp16 --output /tmp/l7-cuda-fp16 \
  --cache-dir /tmp/cache > "$OUT/optimize.log" 2>&1 || { tail -5 "$OUT/optimize.log"; exit 1; }
echo "7B checkpoint and build: $((SECONDS - start)) s"
for graph in graph plain; do
  extra=(--server-arg=--provider=cuda)
  [ $graph = graph ] && extra+=(--server-arg=--cuda-graph)
  timeout 200 python3 -m llama_ort bench-serve --model /tmp/l7-cuda-fp16 --no-chat-template --clients 16 \
    --interval 0.05 --max-tokens 256 --max-seq-len 512 "${extra[@]}" --output "$OUT/serve-$graph" 2>&1 \
    | grep -v "^WARNING" | tail -6
done
