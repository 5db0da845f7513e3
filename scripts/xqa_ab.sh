#!/usr/bin/env bash
# On the GPU machine (after h100_bench.sh's install): onnxruntime's decoding attention for GroupQueryAttention,
# the XQA kernel (its default for fp16 here) against its flash-decoding path (ORT_ENABLE_XQA=0), on the cuda fp16
# model of the Llama-2-7B shape, whose 32 query heads have 32 KV heads (XQA's groups of one). Benched in turn,
# twice each; results under $OUT/xqa-{on,off}-N. docs/BENCHMARKS.md has the 2026-11-26 run (made before the
# runtime's own setting, so its "on" arm left the variable unset).
set -uo pipefail
[ -f /tmp/site/onnxruntime/__init__.py ] || bash .gpu-whl-extra/install-ort-gpu.sh >/dev/null || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
W=/tmp/xqa-ab OUT=${OUT:-/tmp/out}
mkdir -p $W
[ -d $W/ckpt ] || python3 -m llama_ort make-random --shape llama2-7b --output $W/ckpt
[ -d $W/fp16 ] || python3 -m llama_ort optimize $W/ckpt --output $W/fp16 --target cuda --precision fp16 --no-verify \
  2>&1 | tail -1
i=0
for xqa in on off on off; do
  # Explicit both ways: the runtime itself now turns XQA off for such models unless the variable is set.
  ORT_ENABLE_XQA=$([ $xqa = on ] && echo 1 || echo 0) python3 -m llama_ort bench $W/fp16 --device cuda --peers llama-ort \
    --skip webgpu --batch-sizes 1,16 --prompt-lengths 128 --new-tokens 256 --repeats 2 --output "$OUT/xqa-$xqa-$i" \
    2>&1 | grep -E "^│ llama|^│ [0-9 ]" | head -8
  i=$((i + 1))
done
python3 - "$OUT" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(f"{sys.argv[1]}/xqa-*/bench.json")):
    for row in json.load(open(f))["rows"]:
        for c in row.get("cells") or []:
            print(f.split("/")[-2], row["label"], "b%d" % c["batch"], "decode %.1f tok/s" % (c["decode_tok_s"] or 0))
PY
