#!/usr/bin/env bash
# On the GPU machine (after h100_bench.sh's install): the cuda fp16 model of the Llama-2-7B shape with the MLP's
# gate and up packed into one GEMM (and a Split) against two GEMMs, built from one checkpoint and benched in turn,
# twice each. Results under $OUT/ab-{packed,unpacked}-N. docs/BENCHMARKS.md has the 2026-11-26 run, made with
# an earlier form of this script (the same builds and bench commands, other scratch paths).
set -uo pipefail
[ -f /tmp/site/onnxruntime/__init__.py ] || bash .gpu-whl-extra/install-ort-gpu.sh >/dev/null || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
W=/tmp/gate-up-ab OUT=${OUT:-/tmp/out}
mkdir -p $W
[ -d $W/ckpt ] || python3 -m llama_ort make-random --shape llama2-7b --output $W/ckpt
build() {  # build FORM PRECISIONS_THAT_PACK: the cuda target patched to pack gate and up at those precisions
  [ -d $W/$1 ] || python3 - "$W" "$1" "$2" <<'PY'
import dataclasses, sys
import llama_ort.graph.target as target
work, form, packs = sys.argv[1:]
target.TARGETS["cuda"] = dataclasses.replace(target.TARGETS["cuda"], packs_gate_up_at=tuple(packs.split(",")))
from llama_ort.cli import main
sys.exit(main(["optimize", f"{work}/ckpt", "--output", f"{work}/{form}", "--target", "cuda", "--precision", "fp16",
               # a cache of its own: the cache key names the target, not the patched field
               "--no-verify", "--cache-dir", f"{work}/cache-{form}"]))
PY
}
build packed fp16,int4 && build unpacked int4 || exit 1
i=0
for form in packed unpacked packed unpacked; do
  python3 -m llama_ort bench $W/$form --device cuda --peers llama-ort --batch-sizes 1,16 --prompt-lengths 128,2048 \
    --new-tokens 128 --repeats 3 --skip webgpu --output "$OUT/ab-$form-$i" 2>&1 | tail -22
  i=$((i + 1))
done
